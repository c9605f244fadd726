import { type EntryBlock, isSignedDocumentShape, type Money, parseWith, type SignedDocument, type schema } from '@tally/core'
import {
  attestationBodySchema,
  attestationEntryBodySchema,
  certificateBodySchema,
  certificateEntryBodySchema,
  type ContractTerms,
  type DealBody,
  decodeBody,
  evidenceRequestBodySchema,
  evidenceRequestEntryBodySchema,
  isDealKind,
  observationBodySchema,
  observationEntryBodySchema,
  rulingBodySchema,
  rulingEntryBodySchema,
} from '@tally/deal'
import { parseCheckpointBody, parseProposalBody } from '@tally/lineage'

/** Summaries are one line; free text from the record is cut to this many characters. */
export const MAX_TEXT = 120

export function clip(text: string, max = MAX_TEXT): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`
}

export function shortId(id: string): string {
  return id.length <= 14 ? id : `${id.slice(0, 6)}…${id.slice(-6)}`
}

export function money(m: Money): string {
  return `${m.amount} ${m.asset}`
}

export function percent(bp: number): string {
  return `${(bp / 100).toFixed(2)}%`
}

function duration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`
  if (ms % 60_000 === 0) return `${ms / 60_000} min`
  if (ms % 1000 === 0) return `${ms / 1000} s`
  return `${ms} ms`
}

function terms(t: ContractTerms): string {
  const length = t.epochs === null ? `open-ended (max ${t.maxEpochs})` : `${t.epochs} epochs`
  return `${t.resources.class}×${t.resources.count} in ${t.jurisdiction}, ${money(t.price)} per ${duration(t.epochMs)} epoch, ${length}`
}

function dealSummary(d: DealBody): string {
  switch (d.kind) {
    case 'proposal':
      return `proposes ${terms(d.body.terms)}`
    case 'counter':
      return `counters with ${terms(d.body.terms)}`
    case 'acceptance':
      return `accepts offer ${shortId(d.body.offer.toString())}`
    case 'reject':
      return `rejects offer ${shortId(d.body.offer.toString())}: ${clip(d.body.reason)}`
    case 'collateral':
      return `bonds ${money(d.body.amount)} collateral`
    case 'attestation': {
      const f = d.body.attestation.body.facts
      return `attests ${f.hardwareClass} (${f.classSource}), ${f.gpus.length} GPU(s), ${f.cpu.logicalCores} cores`
    }
    case 'manifest':
      return `workload: ${clip(d.body.workload.command.join(' '), 60)} (wall ≤ ${duration(d.body.workload.limits.wallMs)})`
    case 'usage': {
      const m = d.body.metered
      return `epoch ${d.body.epoch}: claims ${percent(d.body.claimBp)}, wall ${Math.round(m.wallMs / 1000)} s, cpu ${Math.round(m.cpuMs / 1000)} s${m.gpuMs === null ? '' : `, gpu ${Math.round(m.gpuMs / 1000)} s`}`
    }
    case 'observation': {
      const o = d.body.observation
      const lat = o.body.latencyUs === null ? 'no reply' : `p95 ${(o.body.latencyUs.p95 / 1000).toFixed(1)} ms`
      return `monitor ${shortId(o.by)} #${o.body.seq}: ${percent(o.body.availabilityBp)} up, ${lat}`
    }
    case 'evaluation':
      return `epoch ${d.body.epoch}: ${d.body.verdict}, ${money(d.body.amount)} (${d.body.evidence.length} evidence)`
    case 'voucher':
      return `releases ${money(d.body.amount)} cumulative, naming ${d.body.authorisedBy.length} authorit${d.body.authorisedBy.length === 1 ? 'y' : 'ies'}`
    case 'ack':
      return `acknowledges ${money(d.body.amount)}`
    case 'rail-result':
      return `${d.body.rail} rail: ${d.body.status}${d.body.reference === null ? '' : ` (${clip(d.body.reference, 40)})`}`
    case 'dispute':
      return `disputes epoch${d.body.epochs.length === 1 ? '' : 's'} ${d.body.epochs.join(', ')}: ${clip(d.body.reason)}`
    case 'evidence-request':
      return `arbiter asks the ${d.body.request.body.party}: ${clip(d.body.request.body.question)}`
    case 'evidence-answer':
      return `answers with ${d.body.refs.length} entr${d.body.refs.length === 1 ? 'y' : 'ies'}: ${clip(d.body.answer)}`
    case 'ruling': {
      const r = d.body.ruling.body
      const which = r.appealOf === null ? 'ruling' : 'appeal ruling'
      return `${which} by ${shortId(d.body.ruling.by)}: ${money(r.award.toProvider)} to provider, ${money(r.award.collateralToConsumer)} collateral to consumer`
    }
    case 'appeal':
      return `appeals ruling ${shortId(d.body.ruling.toString())}: ${clip(d.body.reason)}`
    case 'certificate': {
      const c = d.body.certificate.body
      return `certifies ${c.epochs.performed}/${c.epochs.total} epochs performed, ${money(c.paid)} paid`
    }
    case 'timeout':
      return `claims timeout on ${d.body.duty}${d.body.epoch === null ? '' : ` (epoch ${d.body.epoch})`}`
    case 'close':
      return `closes the deal: ${d.body.reason}${d.body.note === '' ? '' : ` (${clip(d.body.note)})`}`
  }
}

/** An embedded document read by its body schema; its signature is verification's business, checked once there. */
function unsignedDoc<B>(value: unknown, bodySchema: schema.z.ZodType<B>, what: string): SignedDocument<B> {
  if (!isSignedDocumentShape(value)) throw new TypeError(`${what} is not a signed document`)
  return { type: value.type, by: value.by, body: parseWith(bodySchema, value.body, what), sig: value.sig }
}

/**
 * The body as the summary needs it. Kinds that embed a signed document are
 * read without checking its signature again (the reducer's replay and
 * lineage's verification already do, and report it): this is the cost
 * that would otherwise double.
 */
function readBody(kind: DealBody['kind'], value: unknown): DealBody {
  switch (kind) {
    case 'observation': {
      const b = parseWith(observationEntryBodySchema, value, 'observation body')
      return { kind, body: { deal: b.deal, observation: unsignedDoc(b.observation, observationBodySchema, 'observation') } }
    }
    case 'ruling': {
      const b = parseWith(rulingEntryBodySchema, value, 'ruling body')
      return { kind, body: { deal: b.deal, ruling: unsignedDoc(b.ruling, rulingBodySchema, 'ruling') } }
    }
    case 'attestation': {
      const b = parseWith(attestationEntryBodySchema, value, 'attestation body')
      return { kind, body: { deal: b.deal, attestation: unsignedDoc(b.attestation, attestationBodySchema, 'attestation') } }
    }
    case 'evidence-request': {
      const b = parseWith(evidenceRequestEntryBodySchema, value, 'evidence-request body')
      return { kind, body: { deal: b.deal, request: unsignedDoc(b.request, evidenceRequestBodySchema, 'evidence request') } }
    }
    case 'certificate': {
      const b = parseWith(certificateEntryBodySchema, value, 'certificate body')
      return { kind, body: { deal: b.deal, certificate: unsignedDoc(b.certificate, certificateBodySchema, 'certificate') } }
    }
    default:
      return decodeBody(kind, value)
  }
}

/** One line saying what an entry does, for people. Never throws: a body that does not decode says so. */
export function summarizeEntry(block: EntryBlock): string {
  const { kind, body } = block.entry
  try {
    if (isDealKind(kind)) return dealSummary(readBody(kind, body))
    switch (kind) {
      case 'open': {
        const role = (body as { role?: unknown } | null)?.role
        return `opens the pair log as ${typeof role === 'string' ? role : '?'}`
      }
      case 'checkpoint-proposal': {
        const s = parseProposalBody(body).statement
        return `proposes checkpoint over ${s.size} entries`
      }
      case 'checkpoint': {
        const s = parseCheckpointBody(body).statement
        return `countersigns checkpoint over ${s.size} entries`
      }
      case 'note':
        return typeof body === 'string' ? `note: ${clip(body)}` : 'note'
      default:
        return kind
    }
  } catch (err) {
    return `unreadable ${kind} body (${err instanceof Error ? err.name : 'Error'})`
  }
}

/**
 * The arbiter's decision, pure: a verified record and a dispute in, a
 * ruling body, an evidence request body or a refusal out. The policy
 * (arbitration policy v1) is documented in docs/EVIDENCE-RULES.md under
 * "Arbitration policy"; every figure is integer arithmetic over the
 * record, so the same record gives byte-identical rulings everywhere.
 */
import { type CID, type EntryBlock, type Identity, type PeerIdString, toBlock } from '@tally/core'
import {
  applyBp,
  BP_ONE,
  type DealState,
  type DisputeState,
  decodeEvidenceRequest,
  type EvidenceRequest,
  type EvidenceRequestBody,
  type EvidenceRequestState,
  epochOf,
  MAX_RELIED,
  monitorVotes,
  type ObservationRecord,
  type PairState,
  type Ruling,
  type RulingBody,
  rulingBodyFor,
  signEvidenceRequest,
  signRuling,
  usageBodySchema,
} from '@tally/deal'
import type { PairDescriptor } from '@tally/lineage'
import { examineRecord } from './record.ts'

/** Version of the policy below; stated in every ruling's reasons. */
export const ARBITRATION_POLICY_VERSION = 1
/** Ruling reasons are a text field of at most 16 KiB. */
const MAX_REASONS = 16 * 1024

/** The dispute a case asks about, and at which stage. */
export interface DisputeCase {
  pair: PairDescriptor
  deal: CID
  dispute: CID
  /** True: the contract's appeal arbiter decides an appealed dispute. */
  appeal: boolean
}

export interface JudgeContext {
  /** This arbiter's peer id. */
  arbiter: PeerIdString
  /** The arbiter's clock when the case arrived: dates evidence requests only, never rulings. */
  now: number
}

/** Refusals the decision itself gives (the protocol adds its own). */
export type DecisionRefusal =
  | 'invalid-record'
  | 'wrong-pair'
  | 'unknown-deal'
  | 'unknown-dispute'
  | 'not-arbiter'
  | 'not-appealed'
  | 'already-ruled'
  | 'final'
  | 'evidence-pending'

/** What the arbiter found for one disputed epoch. */
export interface EpochFinding {
  epoch: number
  performed: boolean
  /** Not performed on independent evidence while the provider claimed service: forfeits collateral. */
  proven: boolean
  /** Share of the price awarded (0 when not performed). */
  basisBp: number
  amount: number
  /** One sentence: what the evidence showed and why. */
  reason: string
  /** Usage and observation entries weighed. */
  relied: CID[]
}

export type Judgement =
  | { type: 'ruling'; body: RulingBody; findings: EpochFinding[] }
  | { type: 'evidence-request'; body: EvidenceRequestBody }
  | { type: 'refusal'; code: DecisionRefusal; message: string }

export type Decision =
  | { type: 'ruling'; ruling: Ruling; findings: EpochFinding[] }
  | { type: 'evidence-request'; request: EvidenceRequest }
  | { type: 'refusal'; code: DecisionRefusal; message: string }

const refusal = (code: DecisionRefusal, message: string): Judgement => ({ type: 'refusal', code, message })

/**
 * Verify and replay `record`, then judge the dispute (see judgeDispute).
 * Signs the result with `identity`; Ed25519 signatures are deterministic,
 * so the same record gives the same ruling bytes.
 */
export async function decideCase(record: Uint8Array, c: DisputeCase, ctx: JudgeContext & { identity: Identity }): Promise<Decision> {
  const examined = await examineRecord(record)
  if (!examined.report.ok || examined.state === undefined) {
    const p = examined.report.firstProblem
    const where = p?.author === undefined ? '' : ` (${p.author === examined.report.pair?.provider ? 'provider' : 'consumer'} entry #${p.seq})`
    return { type: 'refusal', code: 'invalid-record', message: `the record does not verify: ${p?.code ?? 'unknown'}${where}: ${p?.message ?? 'no detail'}` }
  }
  const j = judgeDispute(examined.state, examined.blocks, c, ctx)
  if (j.type === 'refusal') return j
  if (j.type === 'evidence-request') return { type: 'evidence-request', request: signEvidenceRequest(ctx.identity, j.body) }
  return { type: 'ruling', ruling: signRuling(ctx.identity, j.body), findings: j.findings }
}

/**
 * Judge a dispute of a verified, replayed record. Checks the case against
 * the record (pair, deal, dispute, that `ctx.arbiter` is the arbiter the
 * contract names for this stage), asks the provider for evidence once when
 * a disputed epoch has no contract-monitor evidence at all, and otherwise
 * rules epoch by epoch under arbitration policy v1. Pure: reads only its
 * arguments; the ruling's issuedAt is the record's latest entry time.
 */
export function judgeDispute(state: PairState, blocks: ReadonlyMap<string, EntryBlock>, c: DisputeCase, ctx: JudgeContext): Judgement {
  if (state.pair.provider !== c.pair.provider || state.pair.consumer !== c.pair.consumer) {
    return refusal('wrong-pair', 'the record is the pair log of another pair than the case names')
  }
  const deal = state.deals.get(c.deal.toString())
  if (deal === undefined) return refusal('unknown-deal', `the record holds no deal ${c.deal}`)
  const terms = deal.terms
  if (terms === null) return refusal('unknown-deal', `deal ${c.deal} has no contract (${deal.status})`)
  const dispute = deal.disputes.get(c.dispute.toString())
  if (dispute === undefined) return refusal('unknown-dispute', `deal ${c.deal} has no dispute ${c.dispute}`)

  const named = c.appeal ? terms.appealArbiter : terms.arbiter
  if (named === null) return refusal('not-appealed', 'the contract names no appeal arbiter')
  if (named !== ctx.arbiter) {
    return refusal('not-arbiter', `the contract names ${named} as ${c.appeal ? 'appeal arbiter' : 'arbiter'}, not this arbiter (${ctx.arbiter})`)
  }
  const stage = stageProblem(dispute, c.appeal)
  if (stage !== null) return stage

  const mine = requestsOf(deal, dispute, blocks, ctx.arbiter)
  // Both parties may relay the same request document: any copy answered or timed out settles it.
  const settled = new Set(mine.filter((r) => r.status !== 'open').map((r) => r.doc))
  const open = mine.find((r) => r.status === 'open' && !settled.has(r.doc))
  if (open !== undefined) {
    return refusal(
      'evidence-pending',
      `the ${open.party} has until ${new Date(open.deadline).toISOString()} to answer evidence request ${open.cid}; resubmit after its answer or a timeout entry`,
    )
  }

  const findings: EpochFinding[] = []
  const silent: number[] = []
  for (const e of dispute.epochs) {
    const f = judgeEpoch(deal, e, blocks, settled.size > 0)
    if (f === 'ask') silent.push(e)
    else findings.push(f)
  }
  if (silent.length > 0) {
    const issuedAt = Math.max(ctx.now, state.time)
    return {
      type: 'evidence-request',
      body: {
        pair: state.pairId,
        deal: deal.id,
        dispute: dispute.id,
        party: 'provider',
        question:
          `No monitor named in the contract reported on epoch${silent.length > 1 ? 's' : ''} ${silent.join(', ')}, for which you claim service. ` +
          'Attach any observation by the contract monitors for these epochs to the pair log, answer this request naming the entries that show ' +
          `service, and the party will resubmit the record. Unanswered by the deadline, the contract's missing-evidence setting (${terms.rule.missing}) decides.`,
        deadline: issuedAt + terms.timeouts.answerMs,
        issuedAt,
      },
    }
  }

  const toProvider = findings.reduce((s, f) => s + f.amount, 0)
  const proven = findings.filter((f) => f.proven).length
  const collateral = collateralShare(deal, dispute, proven)
  const relied = reliedEntries(findings, answersTo(mine, blocks))
  const reasons = reasonsText(deal, dispute, c.appeal, findings, toProvider, collateral, terms.price.asset, terms.collateral.asset)
  const body = rulingBodyFor(state, deal.id, dispute.id, { toProvider, collateralToConsumer: collateral.amount, reasons, relied, issuedAt: state.time })
  return { type: 'ruling', body, findings }
}

function stageProblem(dispute: DisputeState, appeal: boolean): Judgement | null {
  if (dispute.status === 'final') return refusal('final', `dispute ${dispute.id} is settled by a final ruling`)
  if (appeal) {
    if (dispute.status !== 'appealed') return refusal('not-appealed', `dispute ${dispute.id} is ${dispute.status}, not appealed`)
    return null
  }
  if (dispute.status === 'ruled') return refusal('already-ruled', `dispute ${dispute.id} already has a first-instance ruling`)
  if (dispute.status === 'appealed') return refusal('already-ruled', `dispute ${dispute.id} is under appeal; the appeal arbiter decides it`)
  return null
}

/** A relayed evidence request and the CID of the document it relays. */
type RelayedRequest = EvidenceRequestState & { doc: string }

/** Evidence requests of this dispute that `arbiter` signed (one stage's), in log order. */
function requestsOf(deal: DealState, dispute: DisputeState, blocks: ReadonlyMap<string, EntryBlock>, arbiter: PeerIdString): RelayedRequest[] {
  const key = dispute.id.toString()
  const out: RelayedRequest[] = []
  for (const [cid, r] of deal.requests.entries()) {
    if (r.dispute !== key) continue
    const body = blocks.get(cid)?.entry.body as { request?: unknown } | undefined
    try {
      const doc = decodeEvidenceRequest(body?.request)
      if (doc.by === arbiter) out.push({ ...r, doc: toBlock(doc).cid.toString() })
    } catch {
      // The reducer accepted the entry, so its document verifies; an unreadable one is not ours.
    }
  }
  return out.sort((a, b) => (blocks.get(a.cid.toString())?.entry.time ?? 0) - (blocks.get(b.cid.toString())?.entry.time ?? 0))
}

/** The evidence-answer entries answering `requests`. */
function answersTo(requests: readonly RelayedRequest[], blocks: ReadonlyMap<string, EntryBlock>): CID[] {
  if (requests.length === 0) return []
  const wanted = new Set(requests.map((r) => r.cid.toString()))
  const out: CID[] = []
  for (const b of blocks.values()) {
    if (b.entry.kind !== 'evidence-answer') continue
    const req = (b.entry.body as { request?: { toString(): string } } | null)?.request
    if (req !== undefined && wanted.has(req.toString())) out.push(b.cid)
  }
  return out
}

/** One record per (monitor, seq): the same observation attached by both parties counts once. */
function distinctObservations(list: readonly ObservationRecord[]): ObservationRecord[] {
  const seen = new Set<string>()
  const out: ObservationRecord[] = []
  for (const o of list) {
    if (seen.has(o.key)) continue
    seen.add(o.key)
    out.push(o)
  }
  return out
}

const pct = (bp: number): string => `${Math.floor(bp / 100)}.${String(bp % 100).padStart(2, '0')}%`
const short = (peer: string): string => `…${peer.slice(-6)}`

/** The workload's wall time as a share of the epoch; full when the workload ended within it. */
function meteredShareBp(deal: DealState, e: number, blocks: ReadonlyMap<string, EntryBlock>): number | null {
  const usage = epochOf(deal, e).usage
  const epochMs = deal.terms?.epochMs ?? 0
  if (usage === null || epochMs === 0) return null
  const parsed = usageBodySchema.safeParse(blocks.get(usage.cid.toString())?.entry.body)
  if (parsed.success && parsed.data.exit !== null) return BP_ONE
  return Math.min(BP_ONE, Math.floor((usage.metered.wallMs * BP_ONE) / epochMs))
}

/**
 * Policy v1 for one epoch. `asked`: this arbiter's evidence request for
 * the dispute was answered or timed out. Returns 'ask' when the provider
 * claims service, no contract monitor reported, and it has not been asked.
 */
function judgeEpoch(deal: DealState, e: number, blocks: ReadonlyMap<string, EntryBlock>, asked: boolean): EpochFinding | 'ask' {
  const terms = deal.terms!
  const rule = terms.rule
  const price = terms.price.amount
  const ep = epochOf(deal, e)
  const usage = ep.usage
  const observations = distinctObservations(ep.observations)
  const relied = [...(usage === null ? [] : [usage.cid]), ...observations.map((o) => o.cid)]
  const finding = (performed: boolean, proven: boolean, basisBp: number, reason: string): EpochFinding => ({
    epoch: e,
    performed,
    proven,
    basisBp: performed ? basisBp : 0,
    amount: performed ? applyBp(price, basisBp) : 0,
    reason: `Epoch ${e}: ${reason}`,
    relied,
  })
  const readsUsage = rule.usage === 'required'

  // 1. The provider's own word settles an epoch against it.
  if (readsUsage && usage === null) return finding(false, false, 0, 'the provider recorded no usage, so it does not claim this epoch; not performed.')
  if (readsUsage && usage !== null && usage.claimBp < rule.availability.minBp) {
    return finding(
      false,
      false,
      0,
      `the provider's usage claims ${pct(usage.claimBp)} availability, below the contract's ${pct(rule.availability.minBp)}; its own figures admit the shortfall, so not performed (no collateral: an admitted outage).`,
    )
  }
  const claim = readsUsage && usage !== null ? `the provider claims ${pct(usage.claimBp)}` : 'the contract reads no usage claim'

  // 2. Contract monitors, one vote each; a failed identity or compute challenge makes that monitor's vote down.
  const evidence = observations.map((o) => o.evidence)
  const votes = monitorVotes(rule, evidence).map((v) => {
    const failed = evidence.some((o) => o.monitor === v.monitor && o.challenges.some((ch) => !ch.ok))
    return { ...v, up: v.up && !failed, failed }
  })
  let up = 0
  let down = 0
  for (const v of votes) {
    if (v.up) up += v.weight
    else down += v.weight
  }
  const described = votes
    .map((v) => `${short(v.monitor)} ${pct(v.availabilityBp)}${v.failed ? ' with a failed challenge' : ''} (${v.up ? 'up' : 'down'}, weight ${v.weight})`)
    .join(', ')
  let basis = BP_ONE
  if (rule.payment === 'pro-rata' && votes.length > 0) {
    let weighted = 0
    let weights = 0
    for (const v of votes) {
      weighted += v.weight * v.availabilityBp
      weights += v.weight
    }
    basis = Math.floor(weighted / weights)
    if (readsUsage && usage !== null) basis = Math.min(basis, usage.claimBp)
  }
  const paid = rule.payment === 'pro-rata' ? `paid pro rata at ${pct(basis)}` : 'paid in full'

  if (up + down > 0) {
    const seen = `${claim}; contract monitors reporting: ${described}; weight up ${up}, down ${down}`
    if (up > down) return finding(true, false, basis, `${seen}. The majority of reporting monitor weight saw the provider up: performed, ${paid}.`)
    if (down > up) {
      const envelope = usage?.overEnvelope === true
      return finding(
        false,
        !envelope,
        0,
        `${seen}. The majority of reporting monitor weight saw the provider down: not performed` +
          (envelope
            ? "; the consumer's workload exceeded its manifest's envelope in this epoch, so no collateral is forfeited."
            : ' on independent evidence, a share of the bonded collateral is forfeited.'),
      )
    }
    const share = meteredShareBp(deal, e, blocks)
    if (share !== null && share >= rule.availability.minBp) {
      return finding(
        true,
        false,
        basis,
        `${seen}. The monitors are evenly split; the executor metered the workload for ${pct(share)} of the epoch: performed, ${paid}.`,
      )
    }
    return finding(
      false,
      false,
      0,
      `${seen}. The monitors are evenly split and the metered figures (${share === null ? 'none' : pct(share)} of the epoch) do not carry the claim: not performed, no collateral forfeited.`,
    )
  }

  // 3. No contract monitor reported at all: ask the provider once, then the contract's missing-evidence setting.
  if (!asked) return 'ask'
  const missing = rule.missing
  if (missing === 'pay') {
    const b = rule.payment === 'pro-rata' && readsUsage && usage !== null ? usage.claimBp : BP_ONE
    return finding(
      true,
      false,
      b,
      `${claim}; no contract monitor reported, even after the provider was asked; the contract pays on missing evidence: performed, ${pct(b)} of the price.`,
    )
  }
  return finding(
    false,
    false,
    0,
    `${claim}; no contract monitor reported, even after the provider was asked; the contract ${missing === 'hold' ? 'holds' : 'refunds'} on missing evidence and the claimant bears the burden of proof: not performed, no collateral forfeited.`,
  )
}

/**
 * Collateral for epochs proven not performed: the bond's share of the
 * term per such epoch, ⌊bonded × proven / term⌋, capped by what is still
 * bonded and unawarded. The term is the contract's epochs, or for an
 * open-ended deal the epochs served so far (at least through the dispute).
 */
function collateralShare(deal: DealState, dispute: DisputeState, proven: number): { amount: number; term: number } {
  const t = deal.terms!
  const last = dispute.epochs[dispute.epochs.length - 1] ?? 0
  const term = t.epochs ?? Math.max(deal.usageEnd, last + 1)
  if (proven === 0 || deal.collateralBonded === 0) return { amount: 0, term }
  const share = Number((BigInt(deal.collateralBonded) * BigInt(proven)) / BigInt(term))
  return { amount: Math.min(share, Math.max(0, deal.collateralBonded - deal.collateralAwarded)), term }
}

function reliedEntries(findings: readonly EpochFinding[], answers: readonly CID[]): CID[] {
  const seen = new Set<string>()
  const out: CID[] = []
  for (const c of [...findings.flatMap((f) => f.relied), ...answers]) {
    const k = c.toString()
    if (seen.has(k) || out.length >= MAX_RELIED) continue
    seen.add(k)
    out.push(c)
  }
  return out
}

function reasonsText(
  deal: DealState,
  dispute: DisputeState,
  appeal: boolean,
  findings: readonly EpochFinding[],
  toProvider: number,
  collateral: { amount: number; term: number },
  priceAsset: string,
  collateralAsset: string,
): string {
  const performed = findings.filter((f) => f.performed).length
  const proven = findings.filter((f) => f.proven).length
  const opened = dispute.by === 'auto' ? `opened by itself (${dispute.reason})` : `raised by the ${dispute.by}: ${dispute.reason}`
  const stage = appeal
    ? `On appeal by the ${dispute.appeal?.by ?? 'party'} (${dispute.appeal?.cid.toString() ?? ''}) of ruling ${dispute.rulings[0]?.cid.toString() ?? ''}, reviewed afresh on the whole record.`
    : 'First instance.'
  const head = `Arbitration policy v${ARBITRATION_POLICY_VERSION}. Dispute ${dispute.id} of deal ${deal.key}, ${opened}. ${stage}`
  const award =
    `Judged ${performed} of ${findings.length} disputed epoch${findings.length === 1 ? '' : 's'} performed: ${toProvider} ${priceAsset} to the provider. ` +
    (proven === 0
      ? `No collateral forfeited.`
      : `${proven} epoch${proven === 1 ? '' : 's'} proven not performed: ${collateral.amount} ${collateralAsset} of the ${deal.collateralBonded} bonded to the consumer (${proven} of a ${collateral.term}-epoch term, capped by what remains bonded).`)
  const body = findings.map((f) => f.reason).join(' ')
  const text = `${head} ${body} ${award}`
  return text.length <= MAX_REASONS ? text : `${text.slice(0, MAX_REASONS - 1)}…`
}

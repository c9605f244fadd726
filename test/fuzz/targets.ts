/**
 * The fuzz targets: one per decoder or protocol entry point of Tally that
 * takes bytes from someone else. Each feeds the bytes to the real code the
 * way its caller does (decode, schema, signature, verification, the
 * reducer, the arbiter's decision) and returns a short label of what came
 * out. Seeds are valid encodings from the real builders (fixtures.ts), so
 * mutations reach past the first checks.
 */
import {
  admitCredential,
  decode,
  decodeEntry,
  documentSignatureValid,
  embeddedDocuments,
  type EntryBlock,
  encode,
  entrySignatureValid,
  OPEN_TRUST_POLICY,
  parseWith,
  schema,
  TallyError,
  verifyDocument,
} from '@tally/core'
import { checkChallenge, solveChallenge } from '../../packages/executor/src/index.ts'
import {
  decodeBody,
  decodeEvidenceRequest,
  decodeObservationBytes,
  decodeRuling,
  initialState,
  isDealKind,
  type PairState,
  reduce,
} from '../../packages/deal/src/index.ts'
import {
  assertStatementSigs,
  decodeEntryFast,
  decodeEquivocationProof,
  decodeInclusionProof,
  importCar,
  MemoryStore,
  openBodySchema,
  openExport,
  parseCheckpointBody,
  parseProposalBody,
  scanCar,
  scanEnvelope,
  statementSignatureValid,
  verifyEquivocationProof,
  verifyExport,
  verifyInclusion,
  verifyWitness,
  type VerifyReport,
} from '../../packages/lineage/src/index.ts'
import {
  ARBITRATE_ANSWER_MAX_BYTES,
  ARBITRATE_CHUNK_FRAME_BYTES,
  caseIdOf,
  clientMessageSchema,
  decodeOfferResponse,
  decodeProbeRequest,
  decodeProbeResponse,
  checkIdentityProof,
  type IdentityRequest,
  observationTopic,
  observationValidator,
  OFFER_DOCUMENT_TYPE,
  OFFER_REQUEST_MAX_BYTES,
  offerBodySchema,
  offerRequestSchema,
  PAIR_MAX_FRAME_BYTES,
  pairMessageSchema,
  serverMessageSchema,
  verifyOffer,
  verifyWarrant,
  handleProtocol,
  type ProtocolHandle,
  type TallyNode,
} from '../../packages/node/src/index.ts'
import { checkHello } from '../../packages/node/src/pair-session.ts'
import { decideCase } from '../../apps/arbiter/src/decide.ts'
import { loopbackNode } from '../../packages/node/test/helpers.ts'
import type { FuzzTarget } from './engine.ts'
import {
  arbiter,
  arbitrateClientMessages,
  arbitrateServerMessages,
  consumer,
  EPOCH,
  entriesByKind,
  type Fixtures,
  fixtures,
  NOW,
  pairMessages,
  probeMessages,
  provider,
  T0,
} from './fixtures.ts'

export type { FuzzTarget } from './engine.ts'

/** Error names a decoder must never let out, even inside a report or a verdict. */
const UNTYPED = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'AggregateError', 'EvalError', 'URIError'])

/** A report whose problems name an untyped error hides a crash: surface it. */
function checkProblems(report: VerifyReport): VerifyReport {
  for (const p of report.problems) {
    if (UNTYPED.has(p.code)) {
      const err = new Error(`report problem with untyped code ${p.code}: ${p.message}`)
      err.name = p.code
      throw err
    }
  }
  return report
}

function reportLabel(report: VerifyReport): string {
  return report.ok ? 'verified' : `problem:${report.firstProblem?.code ?? 'unknown'}`
}

const pair = { provider: provider.peerId, consumer: consumer.peerId }
/** Gossip judges freshness against this clock: the fixture observations (epochs 0 and 1) are fresh at it. */
const GOSSIP_NOW = T0 + 3 * EPOCH
const probe = probeMessages()
const identityRequest = probe.requests[0] as IdentityRequest
const challenge = { seed: new Uint8Array(32).fill(5), n: 8 }

/** States of the deal just before each entry of the record's timeline, by `author#seq`; the final state for anything else. */
let statesBefore: { before: Map<string, PairState>; final: PairState } | undefined

async function reducerStates(f: Fixtures): Promise<NonNullable<typeof statesBefore>> {
  if (statesBefore !== undefined) return statesBefore
  const opened = await openExport(f.record)
  const before = new Map<string, PairState>()
  let state = initialState(pair)
  for (const b of opened.timeline()) {
    before.set(`${b.entry.author}#${b.entry.seq}`, state)
    state = reduce(state, b)
  }
  statesBefore = { before, final: state }
  return statesBefore
}

function bodyLabel(b: EntryBlock): string {
  const { kind, body } = b.entry
  if (isDealKind(kind)) return decodeBody(kind, body).kind
  if (kind === 'open') return `open:${parseWith(openBodySchema, body, 'open body').role}`
  if (kind === 'checkpoint') return `checkpoint:${parseCheckpointBody(body).statement.size}`
  if (kind === 'checkpoint-proposal') return `checkpoint-proposal:${parseProposalBody(body).statement.size}`
  return kind
}

// ---------------------------------------------------------------------------
// A real libp2p pair on loopback for the frame target

interface Deferred {
  promise: Promise<string>
  resolve(label: string): void
  reject(err: unknown): void
}

/** The server may get a stream before the client's dial resolves: whichever side comes first makes the slot. */
function slot(waiting: Map<string, Deferred>, id: string): Deferred {
  let d = waiting.get(id)
  if (d === undefined) {
    let resolve!: (label: string) => void
    let reject!: (err: unknown) => void
    const promise = new Promise<string>((res, rej) => {
      resolve = res
      reject = rej
    })
    promise.catch(() => undefined)
    d = { promise, resolve, reject }
    waiting.set(id, d)
  }
  return d
}

const FRAMES_PROTOCOL = '/tally-fuzz/frames/1.0.0'
let loop: Promise<{ server: TallyNode; client: TallyNode; handle: ProtocolHandle; waiting: Map<string, Deferred> }> | undefined

function loopback() {
  loop ??= (async () => {
    const server = await loopbackNode()
    const client = await loopbackNode()
    const waiting = new Map<string, Deferred>()
    const handle = await handleProtocol(
      server.libp2p,
      FRAMES_PROTOCOL,
      async ({ frames }) => {
        // yamux numbers a stream the same on both ends: the client waits under that id.
        const done = slot(waiting, frames.stream.id)
        const types: string[] = []
        try {
          for (;;) {
            const frame = await frames.read()
            if (frame === null) break
            // What PairSession does with each frame before any state: schema, hello check, entry envelopes.
            const msg = frames.decodeMessage(frame, pairMessageSchema, 'pair message')
            if (msg.type === 'hello') checkHello(msg, pair.provider, pair.consumer)
            if (msg.type === 'entries') for (const b of msg.blocks) decodeEntryFast(b)
            types.push(msg.type)
          }
          done.resolve(types.join(',') || 'empty')
        } catch (err) {
          done.reject(err)
          throw err
        }
      },
      { frames: { maxFrameBytes: PAIR_MAX_FRAME_BYTES, frameTimeoutMs: 1_000, idleTimeoutMs: 1_000 }, log: server.log.newScope('fuzz') },
    )
    await client.libp2p.dial(server.libp2p.getMultiaddrs()[0]!)
    return { server, client, handle, waiting }
  })()
  return loop
}

/** Send `bytes` on a fresh stream and half-close; the server's outcome is the result. */
async function throughFrames(bytes: Uint8Array): Promise<string> {
  const { server, client, waiting } = await loopback()
  const stream = await client.libp2p.dialProtocol(server.libp2p.peerId, FRAMES_PROTOCOL)
  const outcome = slot(waiting, stream.id).promise
  try {
    if (bytes.byteLength > 0) stream.send(bytes)
    await stream.close().catch(() => undefined)
    return await outcome
  } finally {
    waiting.delete(stream.id)
    if (stream.status === 'open') stream.abort(new Error('fuzz input done'))
  }
}

/** Stop the libp2p pair (if a frame target started it). */
export async function closeTargets(): Promise<void> {
  const l = loop
  loop = undefined
  if (l === undefined) return
  const { server, client, handle } = await l
  await handle.close()
  await Promise.allSettled([client.stop(), server.stop()])
}

/** Frames as a peer writes them: varint length, payload. */
export function framed(...payloads: Uint8Array[]): Uint8Array {
  const parts: number[] = []
  for (const p of payloads) {
    let n = p.byteLength
    while (n >= 0x80) {
      parts.push((n % 0x80) | 0x80)
      n = Math.floor(n / 0x80)
    }
    parts.push(n, ...p)
  }
  return Uint8Array.from(parts)
}

// ---------------------------------------------------------------------------
// The registry

/** An entry's body: mutating it alone keeps the envelope canonical, so the input reaches the body decoders and the reducer. */
const entryBody = (b: Uint8Array) => {
  const s = scanEnvelope(b)
  return s === undefined ? undefined : { start: s.bodyStart, end: s.bodyEnd }
}

const seedsOf = (make: (f: Fixtures) => (Uint8Array | unknown)[]) => async () => make(await fixtures()).map((v) => (v instanceof Uint8Array ? v : encode(v)))

export const targets: readonly FuzzTarget[] = [
  {
    name: 'cbor',
    description: 'core decode: strict DAG-CBOR under the record size bound',
    decode: (b) => {
      const v = decode(b)
      return v === null ? 'null' : Array.isArray(v) ? 'array' : v instanceof Uint8Array ? 'bytes' : typeof v
    },
    seeds: seedsOf((f) => [f.entries[0]!.bytes, f.offer, f.credential, f.inclusionProof]),
  },
  {
    name: 'entry',
    description: 'core decodeEntry and its signature check, differentially against lineage decodeEntryFast',
    decode: (b) => {
      let fast: EntryBlock | undefined
      let fastError: unknown
      try {
        fast = decodeEntryFast(b)
      } catch (err) {
        fastError = err
      }
      let slow: EntryBlock
      try {
        slow = decodeEntry(b)
      } catch (err) {
        if (fast !== undefined) throw new Error(`decodeEntryFast accepts what decodeEntry refuses (${(err as Error).name})`)
        throw err
      }
      if (fast === undefined) throw new Error(`decodeEntry accepts what decodeEntryFast refuses (${(fastError as Error)?.name})`)
      if (!fast.cid.equals(slow.cid)) throw new Error('decodeEntryFast and decodeEntry give different CIDs')
      return `${slow.entry.kind}:${entrySignatureValid(slow.entry) ? 'signed' : 'bad-signature'}`
    },
    seeds: seedsOf((f) => entriesByKind(f.entries).map((b) => b.bytes)),
  },
  {
    name: 'deal-body',
    description: 'entry envelope then the body decoder of its kind (deal bodies, open, checkpoint bodies)',
    decode: (b) => bodyLabel(decodeEntryFast(b)),
    focus: entryBody,
    seeds: seedsOf((f) => [...entriesByKind(f.entries).map((b) => b.bytes), f.checkpointEntry.bytes, f.proposalEntry.bytes]),
  },
  {
    name: 'reducer',
    description: 'the deal reducer: a (mutated) entry applied to the state the record had just before it',
    decode: async (b) => {
      const block = decodeEntryFast(b)
      const s = await reducerStates(await fixtures())
      const state = s.before.get(`${block.entry.author}#${block.entry.seq}`) ?? s.final
      reduce(state, block)
      return block.entry.kind
    },
    focus: entryBody,
    seeds: seedsOf((f) => entriesByKind(f.entries).map((b) => b.bytes)),
  },
  {
    name: 'document',
    description: 'signed third-party documents: verifyDocument and every document embedded in the value',
    decode: (b) => {
      const value = decode(b)
      for (const d of embeddedDocuments(value)) documentSignatureValid(d)
      return verifyDocument(value, undefined, schema.z.unknown()).type
    },
    seeds: seedsOf((f) => [f.credential, f.ruling, f.evidenceRequest, f.witnessDoc, f.offer, encode(f.observations[0])]),
  },
  {
    name: 'credential',
    description: 'admitCredential under the open trust policy (window, role, scope, issuer)',
    decode: (b) => {
      admitCredential(OPEN_TRUST_POLICY, decode(b), {
        role: 'provider',
        at: NOW,
        jurisdiction: 'DE-BY',
        hardwareClass: 'gpu.h100',
        dealValue: { amount: 1000, asset: 'USD' },
      })
      return 'admitted'
    },
    seeds: seedsOf((f) => [f.credential]),
  },
  {
    name: 'observation',
    description: 'monitor observations on gossip: decode, then the topic validator (signature, origin, shard, freshness, sequence)',
    decode: (b) => {
      const obs = decodeObservationBytes(b)
      const verdicts: string[] = []
      const validate = observationValidator({ now: () => GOSSIP_NOW, onDrop: (reason) => verdicts.push(reason) })
      const topic = observationTopic(obs.body.subject)
      const verdict = validate(b, obs.by, { topic, via: obs.by })
      return `${verdict}${verdicts.length > 0 ? `:${verdicts.join(',')}` : ''}`
    },
    seeds: seedsOf((f) => [...f.observations.slice(0, 3).map((o) => encode(o)), f.conflicting[0]]),
  },
  {
    name: 'offer',
    description: '/tally/offer/1.0.0 response: decodeOfferResponse, then verifyOffer (signature, signer, expiry, credentials)',
    decode: (b) => {
      const r = decodeOfferResponse(b)
      if (r.type !== 'offer') return r.type
      // verifyOffer wraps every failure in InvalidOfferError; the document check alone lets a crash show.
      try {
        verifyDocument(r.offer, OFFER_DOCUMENT_TYPE, offerBodySchema)
      } catch (err) {
        if (!(err instanceof TallyError)) throw err
      }
      return verifyOffer(r.offer, { policy: OPEN_TRUST_POLICY, remotePeer: provider.peerId, now: NOW }).offer.type
    },
    seeds: seedsOf((f) => [{ type: 'offer', offer: decode(f.offer) }, { type: 'no-offer' }, { type: 'error', code: 'internal', message: 'x' }]),
  },
  {
    name: 'offer-request',
    description: '/tally/offer/1.0.0 request as the offer server reads it',
    decode: (b) => parseWith(offerRequestSchema, decode(b, OFFER_REQUEST_MAX_BYTES), 'offer request').type,
    seeds: seedsOf(() => [{ type: 'get-offer' }]),
  },
  {
    name: 'pair-message',
    description: '/tally/pair/1.0.0 message: DAG-CBOR, the message schema, hello check, entry envelopes of an entries frame',
    decode: (b) => {
      const msg = parseWith(pairMessageSchema, decode(b, PAIR_MAX_FRAME_BYTES), 'pair message')
      if (msg.type === 'hello') checkHello(msg, pair.provider, pair.consumer)
      if (msg.type === 'entries') for (const e of msg.blocks) decodeEntryFast(e)
      return msg.type
    },
    seeds: seedsOf((f) => pairMessages(f)),
  },
  {
    name: 'pair-frames',
    description: 'a /tally/pair/1.0.0 byte stream through FrameStream over real libp2p (TCP, Noise, yamux on loopback)',
    decode: (b) => throughFrames(b),
    seeds: seedsOf((f) => {
      const m = pairMessages(f).map((v) => encode(v))
      return [framed(...m.slice(0, 4)), framed(m[0]!, m[4]!, m[5]!, m[6]!)]
    }),
  },
  {
    name: 'arbitrate-client',
    description: '/tally/arbitrate/1.0.0 client frames as the server reads them (case header, chunk)',
    decode: (b) => {
      const msg = parseWith(clientMessageSchema, decode(b, ARBITRATE_CHUNK_FRAME_BYTES), 'arbitrate message')
      if (msg.type === 'case') caseIdOf(msg.pair, msg.deal, msg.dispute, msg.appeal)
      return msg.type
    },
    seeds: seedsOf((f) => arbitrateClientMessages(f)),
  },
  {
    name: 'arbitrate-answer',
    description: '/tally/arbitrate/1.0.0 server frames as submitCase reads them, with the ruling or evidence request verified',
    decode: async (b) => {
      const msg = parseWith(serverMessageSchema, decode(b, ARBITRATE_ANSWER_MAX_BYTES), 'arbitrate answer')
      const f = await fixtures()
      if (msg.type === 'ruling') {
        const r = decodeRuling(msg.ruling)
        return `ruling:${r.body.pair.equals(f.entries[0]!.entry.pair) && r.body.deal.equals(f.deal) ? 'match' : 'other'}`
      }
      if (msg.type === 'evidence-request') return `evidence-request:${decodeEvidenceRequest(msg.request).body.party}`
      return msg.type
    },
    seeds: seedsOf((f) => arbitrateServerMessages(f, caseIdOf(pair, f.deal, f.dispute, false))),
  },
  {
    name: 'ruling',
    description: 'rulings and evidence requests as documents (decodeRuling, decodeEvidenceRequest)',
    decode: (b) => {
      const v = decode(b) as { type?: unknown } | null
      return v?.type === 'evidence-request' ? decodeEvidenceRequest(v).type : decodeRuling(v).type
    },
    seeds: seedsOf((f) => [f.ruling, f.evidenceRequest]),
  },
  {
    name: 'probe-request',
    description: '/tally/probe/1.0.0 request as the responder reads it',
    decode: (b) => decodeProbeRequest(b).type,
    seeds: seedsOf(() => probe.requests),
  },
  {
    name: 'probe-response',
    description: '/tally/probe/1.0.0 answer as the monitor reads it: identity proof checked, compute product Freivalds-checked',
    decode: (b) => {
      const res = decodeProbeResponse(b)
      if (res.type === 'identity') checkIdentityProof(identityRequest, res, provider.peerId)
      if (res.type === 'compute') return `compute:${checkChallenge(challenge, res.c, 2, (n) => new Uint8Array(n).fill(7))}`
      return res.type
    },
    seeds: seedsOf(() => [...probe.responses, { type: 'compute', c: solveChallenge(challenge).c, durationMs: 1, solver: 'cpu' }]),
  },
  {
    name: 'warrant',
    description: 'warrants from gossip: verifyWarrant (reporter signature, both conflicting records, that they conflict)',
    decode: (b) => verifyWarrant(b).kind,
    seeds: seedsOf((f) => [f.entryWarrant, f.observationWarrant]),
  },
  {
    name: 'equivocation-proof',
    description: 'lineage equivocation proofs: decode and verify',
    decode: (b) => `seq:${verifyEquivocationProof(decodeEquivocationProof(b)).seq}`,
    seeds: seedsOf((f) => [f.equivocationProof]),
  },
  {
    name: 'inclusion-proof',
    description: 'lineage inclusion proofs: decode and verify against the countersigned checkpoint',
    decode: (b) => verifyInclusion(decodeInclusionProof(b)).entry.entry.kind,
    seeds: seedsOf((f) => [f.inclusionProof]),
  },
  {
    name: 'checkpoint',
    description: 'checkpoint and checkpoint-proposal bodies: schema, size rule, both parties signatures',
    decode: (b) => {
      const v = decode(b) as { sigs?: unknown } | null
      if (v !== null && typeof v === 'object' && 'sigs' in v) {
        const body = parseCheckpointBody(v)
        assertStatementSigs(body.statement, body.sigs, pair)
        return 'checkpoint'
      }
      const p = parseProposalBody(v)
      return `proposal:${statementSignatureValid(p.statement, p.sig, pair.provider)}`
    },
    seeds: seedsOf((f) => [f.checkpointEntry.entry.body, f.proposalEntry.entry.body]),
  },
  {
    name: 'witness',
    description: 'witness cosignatures of checkpoints (verifyWitness)',
    decode: (b) => verifyWitness(decode(b)).type,
    seeds: seedsOf((f) => [f.witnessDoc]),
  },
  {
    name: 'car-verify',
    description: 'verifyExport of a CAR export (never throws: every fault is a report problem)',
    decode: async (b) => reportLabel(checkProblems(await verifyExport(b))),
    seeds: seedsOf((f) => [f.record, f.smallCar]),
  },
  {
    name: 'car-import',
    description: 'importCar into a fresh memory store',
    decode: async (b) => {
      const r = await importCar(new MemoryStore(), b)
      return `imported:${r.added.provider + r.added.consumer}`
    },
    seeds: seedsOf((f) => [f.record, f.smallCar]),
  },
  {
    name: 'car-open',
    description: 'openExport and a walk of its timeline (what tally verify and the arbiter read)',
    decode: async (b) => {
      const opened = await openExport(b)
      checkProblems(opened.report)
      let n = 0
      for (const _ of opened.timeline()) n++
      return `${reportLabel(opened.report)}:${n > 0 ? 'timeline' : 'empty'}`
    },
    seeds: seedsOf((f) => [f.record, f.smallCar]),
  },
  {
    name: 'car-scan',
    description: 'the CAR block scanner on its own (framing, varints, CIDs, hashes, resync)',
    decode: (b) => {
      const codes = new Set<string>()
      let blocks = 0
      scanCar(
        b,
        () => blocks++,
        (p) => codes.add(p.code),
      )
      return codes.size === 0 ? `blocks:${blocks > 0}` : [...codes].sort().join(',')
    },
    seeds: seedsOf((f) => [f.record, f.smallCar]),
  },
  {
    name: 'arbiter-decide',
    description: "the arbiter's decision on a submitted record: verify, replay with the deal reducer, judge the dispute, sign",
    decode: async (b) => {
      const f = await fixtures()
      const d = await decideCase(b, { pair, deal: f.deal, dispute: f.dispute, appeal: false }, { identity: arbiter, arbiter: arbiter.peerId, now: NOW })
      if (d.type === 'refusal' && d.code === 'invalid-record') {
        const code = /does not verify: ([A-Za-z]+)/.exec(d.message)?.[1] ?? ''
        if (UNTYPED.has(code)) throw Object.assign(new Error(d.message), { name: code })
      }
      return d.type === 'refusal' ? `refusal:${d.code}` : d.type
    },
    seeds: seedsOf((f) => [f.record]),
  },
]

export function targetByName(name: string): FuzzTarget | undefined {
  return targets.find((t) => t.name === name)
}

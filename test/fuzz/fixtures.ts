/**
 * Valid records built by the real builders, for the fuzz targets' seeds:
 * a disputed deal between two lineage pair logs (every entry reduced by
 * the deal reducer as it is appended and ingested), a countersigned
 * checkpoint, its inclusion proof and a witness cosignature, warrants,
 * an offer, probe and wire messages. Fixed keys and a fixed clock, so
 * the same bytes come out on every run.
 */
import { type CID, decode, type EntryBlock, type EntryKind, encode, Identity, issueCredential, signEntry } from '@tally/core'
import {
  buildAck,
  buildEvaluation,
  buildVoucher,
  type ContractTerms,
  initialState,
  type Observation,
  type PairState,
  type PartyRole,
  reduce,
  rulingBodyFor,
  signEvidenceRequest,
  signRuling,
} from '../../packages/deal/src/index.ts'
import {
  arbiter,
  attestation,
  consumer,
  EPOCH,
  endOf,
  monitors,
  observation,
  provider,
  resetObservationSeqs,
  T0,
  terms,
  usageFigures,
  workload,
} from '../../packages/deal/test/helpers.ts'
import {
  cosignCheckpoint,
  encodeEquivocationProof,
  encodeInclusionProof,
  exportPairLogBytes,
  inclusionProof,
  makeEquivocationProof,
  MemoryStore,
  PairLog,
  proposeCheckpoint,
  signedCheckpoint,
  witnessCosign,
} from '../../packages/lineage/src/index.ts'
import { CHALLENGE_SEED_BYTES } from '../../packages/executor/src/index.ts'
import {
  ARBITRATE_PROTOCOL_VERSION,
  caseHeader,
  encodeWarrant,
  errorAnswer,
  makeEntryWarrant,
  makeObservationWarrant,
  type OfferBody,
  PAIR_PROTOCOL_VERSION,
  signIdentityProof,
  signOffer,
} from '../../packages/node/src/index.ts'

export { arbiter, consumer, EPOCH, monitors, provider, T0 }

/** The readers' clock: one day after the deal started (freshness, expiry and credential windows are judged at this time). */
export const NOW = T0 + 86_400_000
/** A monitor that reports warrants and cosigns checkpoints as a witness. */
export const witness = Identity.fromSeed(new Uint8Array(32).fill(30))

const other = (r: PartyRole): PartyRole => (r === 'provider' ? 'consumer' : 'provider')

/** Two pair logs on memory stores, each reducing everything it stores, with a clock the builder sets. */
class DealLogs {
  clock = T0 - 10_000
  readonly pair = { provider: provider.peerId, consumer: consumer.peerId }
  readonly states: Record<PartyRole, PairState> = { provider: initialState(this.pair), consumer: initialState(this.pair) }
  logs!: Record<PartyRole, PairLog>
  /** False: ingest without the deal reducer (logs of notes and checkpoints only). */
  readonly deals: boolean

  constructor(deals = true) {
    this.deals = deals
  }

  async open(): Promise<this> {
    const now = () => this.clock
    this.logs = {
      provider: await PairLog.open(new MemoryStore(), this.pair, provider, { now }),
      consumer: await PairLog.open(new MemoryStore(), this.pair, consumer, { now }),
    }
    return this
  }

  get state(): PairState {
    return this.states.consumer
  }

  async append(role: PartyRole, kind: EntryKind, body: unknown, time: number): Promise<EntryBlock> {
    this.clock = Math.max(this.clock, time)
    const log = this.logs[role]
    const before = log.heads()[role]?.seq ?? 0
    const block = await log.append(kind, body, { time })
    for await (const b of log.range(log.me, before + 1)) this.states[role] = reduce(this.states[role], b)
    await this.sync(role)
    return block
  }

  async sync(from: PartyRole): Promise<void> {
    const to = other(from)
    const have = this.logs[to].heads()[from]?.seq ?? 0
    const blocks: EntryBlock[] = []
    for await (const b of this.logs[from].range(this.logs[from].me, have + 1)) blocks.push(b)
    if (blocks.length === 0) return
    if (!this.deals) {
      await this.logs[to].ingest(blocks)
      return
    }
    let next = this.states[to]
    await this.logs[to].ingest(blocks, {
      validate: (added) => {
        let s = this.states[to]
        for (const b of added) s = reduce(s, b)
        next = s
      },
    })
    this.states[to] = next
  }

  async chain(role: PartyRole): Promise<EntryBlock[]> {
    const out: EntryBlock[] = []
    for await (const b of this.logs[role].range(this.logs[role].me, 1)) out.push(b)
    return out
  }
}

export interface Fixtures {
  terms: ContractTerms
  deal: CID
  dispute: CID
  /** Every entry of both chains (consumer's first), distinct kinds among them. */
  entries: EntryBlock[]
  /** The consumer's CARv1 export of the disputed deal (the record an arbiter receives). */
  record: Uint8Array
  /** A small export: a pair log with notes and a countersigned checkpoint. */
  smallCar: Uint8Array
  observations: Observation[]
  /** Two observations by one monitor with one seq and different bodies (gossip payloads). */
  conflicting: [Uint8Array, Uint8Array]
  checkpointEntry: EntryBlock
  proposalEntry: EntryBlock
  equivocationProof: Uint8Array
  inclusionProof: Uint8Array
  witnessDoc: Uint8Array
  entryWarrant: Uint8Array
  observationWarrant: Uint8Array
  credential: Uint8Array
  ruling: Uint8Array
  evidenceRequest: Uint8Array
  offerBody: OfferBody
  offer: Uint8Array
}

let built: Promise<Fixtures> | undefined

/** Built once per process. */
export function fixtures(): Promise<Fixtures> {
  built ??= build()
  return built
}

async function build(): Promise<Fixtures> {
  resetObservationSeqs()
  const t = terms({ epochs: 3, maxEpochs: 3 })
  const d = await new DealLogs().open()
  // A deal whose epoch 0 settles and whose epoch 1 diverges (provider claims service, a quorum saw it down): an automatic dispute.
  const proposal = await d.append('consumer', 'proposal', { terms: t }, T0 - 1000)
  const deal = proposal.cid
  await d.append('provider', 'acceptance', { deal, offer: deal }, T0)
  await d.append('provider', 'collateral', { deal, amount: t.collateral }, T0 + 1)
  await d.append('provider', 'attestation', { deal, attestation: attestation(T0) }, T0 + 2)
  await d.append('consumer', 'manifest', { deal, workload }, T0 + 3)
  const observations: Observation[] = []
  const observe = async (e: number, okPct: number[], at: number) => {
    for (let i = 0; i < okPct.length; i++) {
      const obs = observation(monitors[i]!, e, okPct[i]!)
      observations.push(obs)
      await d.append('consumer', 'observation', { deal, observation: obs }, at + i)
    }
  }
  await d.append('provider', 'usage', { deal, epoch: 0, ...usageFigures() }, endOf(0))
  await observe(0, [100, 100], endOf(0) + 10)
  await d.append('consumer', 'evaluation', buildEvaluation(d.state, deal, 0), endOf(0) + 30)
  await d.append('consumer', 'voucher', buildVoucher(d.state, deal), endOf(0) + 40)
  await d.append('provider', 'ack', buildAck(d.states.provider, deal), endOf(0) + 50)
  await d.append('provider', 'usage', { deal, epoch: 1, ...usageFigures() }, endOf(1))
  await observe(1, [10, 20], endOf(1) + 10)
  const evaluation = await d.append('consumer', 'evaluation', buildEvaluation(d.state, deal, 1), endOf(1) + 30)
  const dispute = evaluation.cid
  const record = await exportPairLogBytes(d.logs.consumer, { exportedAt: NOW })
  const entries = [...(await d.chain('consumer')), ...(await d.chain('provider'))]

  const ruling = signRuling(
    arbiter,
    rulingBodyFor(d.state, deal, dispute, { toProvider: 0, collateralToConsumer: 0, reasons: 'fuzz seed', relied: [], issuedAt: NOW }),
  )
  const evidenceRequest = signEvidenceRequest(arbiter, {
    pair: d.logs.consumer.id,
    deal,
    dispute,
    party: 'provider',
    question: 'logs of epoch 1?',
    deadline: NOW + 3_600_000,
    issuedAt: NOW,
  })

  // A small log with a countersigned checkpoint: checkpoints, inclusion proofs, witnesses, equivocation.
  const s = await new DealLogs(false).open()
  for (let i = 0; i < 3; i++) {
    await s.logs.provider.append('note', { i }, { time: T0 + i })
    await s.sync('provider')
    await s.logs.consumer.append('note', { i }, { time: T0 + i })
    await s.sync('consumer')
  }
  const proposalEntry = await proposeCheckpoint(s.logs.provider, { USD: { paid: 3 } }, { time: T0 + 10 })
  await s.sync('provider')
  const checkpointEntry = await cosignCheckpoint(s.logs.consumer, proposalEntry, { time: T0 + 11 })
  await s.sync('consumer')
  const smallCar = await exportPairLogBytes(s.logs.provider, { exportedAt: NOW })
  const own = await s.chain('provider')
  const inclusion = await inclusionProof(s.logs.provider, own[1]!.cid)
  const state = s.logs.provider.latestCheckpoint()!
  const witnessDoc = witnessCosign(witness, await signedCheckpoint(s.logs.provider, state), { time: NOW })
  const original = own[2]!
  const fork = signEntry(provider, { ...original.entry, body: { fork: true } })
  const equivocation = makeEquivocationProof(original, fork)

  const obsA = observation(monitors[2]!, 5, 100, { seq: 77 })
  const obsB = observation(monitors[2]!, 5, 90, { seq: 77 })
  const conflicting: [Uint8Array, Uint8Array] = [encode(obsA), encode(obsB)]

  const credential = issueCredential(provider, {
    subject: provider.peerId,
    roles: ['provider'],
    jurisdiction: 'DE',
    scope: {},
    notBefore: T0,
    notAfter: NOW + 86_400_000,
  })
  const offerBody: OfferBody = {
    provider: provider.peerId,
    hardware: { class: 'gpu.h100', count: 8, model: 'H100 SXM5 80GB', attestationSource: 'nvidia-smi' },
    jurisdiction: 'DE',
    price: { perEpoch: { amount: 250, asset: 'USD' }, epochMs: EPOCH },
    sla: { availabilityBp: 9_950, latencyP95Us: 2_000 },
    monitors: monitors.map((m) => m.peerId),
    arbiters: [arbiter.peerId],
    rails: ['ledger'],
    credentials: [credential],
    validUntil: NOW + 3_600_000,
    addresses: ['/ip4/127.0.0.1/tcp/4001'],
  }
  const offer = signOffer(provider, offerBody)

  await Promise.all([d.logs.provider.close(), d.logs.consumer.close(), s.logs.provider.close(), s.logs.consumer.close()])
  return {
    terms: t,
    deal,
    dispute,
    entries,
    record,
    smallCar,
    observations,
    conflicting,
    checkpointEntry,
    proposalEntry,
    equivocationProof: encodeEquivocationProof(equivocation),
    inclusionProof: encodeInclusionProof(inclusion),
    witnessDoc: encode(witnessDoc),
    entryWarrant: encodeWarrant(makeEntryWarrant(witness, original, fork, NOW)),
    observationWarrant: encodeWarrant(makeObservationWarrant(witness, conflicting[0], conflicting[1], NOW)),
    credential: encode(credential),
    ruling: encode(ruling),
    evidenceRequest: encode(evidenceRequest),
    offerBody,
    offer: encode(offer),
  }
}

/** One entry per kind (the first of each), so seeds stay few and varied. */
export function entriesByKind(entries: readonly EntryBlock[]): EntryBlock[] {
  const seen = new Set<string>()
  return entries.filter((b) => !seen.has(b.entry.kind) && seen.add(b.entry.kind))
}

/** Wire messages of /tally/pair/1.0.0 built from the fixtures. */
export function pairMessages(f: Fixtures): Record<string, unknown>[] {
  const pair = { provider: provider.peerId, consumer: consumer.peerId }
  const byAuthor = (p: string) => f.entries.filter((b) => b.entry.author === p)
  const mine = byAuthor(consumer.peerId)
  const head = (b: EntryBlock | undefined) => (b === undefined ? null : { seq: b.entry.seq, cid: b.cid })
  const theirs = byAuthor(provider.peerId)
  return [
    { type: 'hello', v: PAIR_PROTOCOL_VERSION, pair, heads: { provider: head(theirs.at(-1)), consumer: head(mine.at(-1)) }, window: 8 },
    { type: 'request', author: provider.peerId, fromSeq: 1, toSeq: null },
    { type: 'request', author: provider.peerId, fromSeq: 2, toSeq: 5 },
    { type: 'entries', blocks: mine.slice(0, 3).map((b) => b.bytes), head: mine.length },
    { type: 'ack', author: provider.peerId, seq: theirs[0]!.entry.seq, cid: theirs[0]!.cid },
    { type: 'heads', heads: { provider: head(theirs[1]), consumer: null } },
    { type: 'error', code: 'FlowControlError', message: 'more than 8 unacknowledged entries frames' },
  ]
}

/** Client frames of /tally/arbitrate/1.0.0 (header, a short chunk). */
export function arbitrateClientMessages(f: Fixtures): Record<string, unknown>[] {
  const pair = { provider: provider.peerId, consumer: consumer.peerId }
  return [
    caseHeader({ pair, deal: f.deal, dispute: f.dispute, appeal: false, size: f.record.byteLength }, ARBITRATE_PROTOCOL_VERSION),
    caseHeader({ pair, deal: f.deal, dispute: f.dispute, appeal: true, size: 1 }, ARBITRATE_PROTOCOL_VERSION),
    { type: 'chunk', data: f.record.subarray(0, 64) },
  ]
}

/** Server frames of /tally/arbitrate/1.0.0 (ready, credit, the three answers). */
export function arbitrateServerMessages(f: Fixtures, caseId: string): unknown[] {
  return [
    { type: 'ready', window: 16, chunkBytes: 256 * 1024 },
    { type: 'credit', chunks: 8 },
    { type: 'ruling', caseId, ruling: decode(f.ruling) },
    { type: 'evidence-request', caseId, request: decode(f.evidenceRequest) },
    errorAnswer('busy', '4 cases in progress; retry later', caseId),
  ]
}

/** Probe requests and answers of /tally/probe/1.0.0. */
export function probeMessages(): { requests: unknown[]; responses: unknown[] } {
  const identity = { type: 'identity' as const, nonce: new Uint8Array(32).fill(9), monitor: monitors[0]!.peerId, time: NOW }
  return {
    requests: [identity, { type: 'compute', seed: new Uint8Array(CHALLENGE_SEED_BYTES).fill(3), n: 64 }],
    responses: [
      signIdentityProof(provider, identity),
      { type: 'compute', c: new Uint8Array(64).fill(1), durationMs: 12, solver: 'cpu' },
      { type: 'error', code: 'busy', message: 'one compute probe at a time' },
    ],
  }
}

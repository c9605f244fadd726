import { type CID, type EntryBlock, type EntryKind, Identity, signEntry } from '@tally/core'
import {
  type AttestationBody,
  type ContractTerms,
  initialState,
  type Observation,
  type PairState,
  type PartyRole,
  reduce,
  signAttestationBody,
  signObservation,
  type Workload,
} from '../src/index.ts'

export const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n)

export const provider = Identity.fromSeed(seed(1))
export const consumer = Identity.fromSeed(seed(2))
export const monitors = [Identity.fromSeed(seed(10)), Identity.fromSeed(seed(11)), Identity.fromSeed(seed(12))] as const
export const outsider = Identity.fromSeed(seed(13))
export const arbiter = Identity.fromSeed(seed(20))
export const appealArbiter = Identity.fromSeed(seed(21))

export const T0 = 1_700_000_000_000
export const EPOCH = 60_000

/**
 * The contract every test pair uses, naming the given monitors (weight 1
 * each) and arbiter: shared by the deal tests, the node adversary suites,
 * the fuzz fixtures and the benchmarks.
 */
export function termsNaming(monitorPeers: readonly string[], arbiterPeer: string, quorum: number, over: Partial<ContractTerms> = {}): ContractTerms {
  return {
    nonce: 'n-1',
    resources: { class: 'gpu.h100', count: 1 },
    jurisdiction: 'DE',
    price: { amount: 1000, asset: 'USD' },
    epochMs: EPOCH,
    epochs: 4,
    maxEpochs: 4,
    sla: { availabilityBp: 9900, latencyP95Us: 50_000 },
    rule: {
      version: 1,
      monitors: monitorPeers.map((peer) => ({ peer, weight: 1 })),
      quorum,
      availability: { minBp: 9900 },
      latency: { maxP95Us: 50_000 },
      challenges: { identity: 'ignore', compute: 'ignore' },
      usage: 'required',
      missing: 'hold',
      payment: 'full',
    },
    arbiter: arbiterPeer,
    appealArbiter: null,
    insurer: null,
    collateral: { amount: 0, asset: 'USD' },
    rail: 'ledger',
    timeouts: { answerMs: 30_000, evidenceGraceMs: 10_000, appealMs: 60_000 },
    ...over,
  }
}

export function terms(over: Partial<ContractTerms> = {}): ContractTerms {
  return termsNaming(
    monitors.map((m) => m.peerId),
    arbiter.peerId,
    2,
    { appealArbiter: appealArbiter.peerId, collateral: { amount: 500, asset: 'USD' }, ...over },
  )
}

export const workload: Workload = { command: ['/bin/sh', '-c', 'sleep 1'], env: {}, limits: { wallMs: 3_600_000, memoryBytes: 1 << 30 }, gpu: { count: 1 } }

export function attestationBody(time = T0, cls = 'gpu.h100', gpus = 1): AttestationBody {
  return {
    v: 1,
    time,
    facts: {
      hardwareClass: cls,
      classSource: 'nvidia-smi',
      gpus: Array.from({ length: gpus }, (_, i) => ({
        name: 'NVIDIA H100 80GB HBM3',
        model: 'h100',
        uuid: `GPU-${i}`,
        memoryBytes: 85_899_345_920,
        driverVersion: '550.54.15',
        pciBusId: `00000000:0${i}:00.0`,
        source: 'nvidia-smi' as const,
      })),
      cpu: { model: 'AMD EPYC', logicalCores: 32, arch: 'x86_64', source: 'procfs' },
      memory: { totalBytes: 1 << 30, source: 'procfs' },
      kernel: { version: '6.8.0', source: 'procfs' },
      probedAt: time,
      notes: [],
    },
  }
}

export function attestation(time = T0, cls = 'gpu.h100', gpus = 1, by: Identity = provider) {
  return signAttestationBody(by, attestationBody(time, cls, gpus))
}

let obsSeq = new Map<string, number>()
export function resetObservationSeqs(): void {
  obsSeq = new Map()
}

/** A monitor's observation covering one whole epoch of a deal that started at `start`. */
export function observation(
  monitor: Identity,
  epoch: number,
  okPct: number,
  opts: { start?: number; p95?: number; subject?: string; seq?: number; challenges?: Observation['body']['challenges'] } = {},
): Observation {
  const start = (opts.start ?? T0) + epoch * EPOCH
  const seq = opts.seq ?? (obsSeq.get(monitor.peerId) ?? 0) + 1
  obsSeq.set(monitor.peerId, Math.max(seq, obsSeq.get(monitor.peerId) ?? 0))
  const ok = okPct
  return signObservation(monitor, {
    subject: opts.subject ?? provider.peerId,
    seq,
    window: { start, end: start + EPOCH },
    samples: { sent: 100, ok },
    availabilityBp: ok * 100,
    latencyUs: ok === 0 ? null : { p50: 1000, p95: opts.p95 ?? 20_000, p99: 60_000 },
    challenges: opts.challenges ?? [],
    credential: null,
    issuedAt: start + EPOCH,
  })
}

export function usageFigures(claimBp = 10_000) {
  return {
    claimBp,
    metered: { wallMs: EPOCH, cpuMs: 30_000, maxRssBytes: 1 << 20, gpuMs: EPOCH },
    exit: null,
    logsHash: 'ab'.repeat(32),
  }
}

/**
 * A two-party pair log without @tally/lineage: chains entries (seq, prev,
 * seen), signs them for real and reduces each into the live state, the
 * way a counterparty validates what it receives.
 */
export class TestPair {
  readonly ids: Record<PartyRole, Identity>
  state: PairState
  /** Every block appended, in the order appended (a causal order). */
  readonly log: EntryBlock[] = []
  readonly #heads: Record<PartyRole, EntryBlock | null> = { provider: null, consumer: null }
  /** Counterparty entries each party has seen (it sees everything appended before, unless told not to). */
  readonly #seen: Record<PartyRole, EntryBlock | null> = { provider: null, consumer: null }

  /** `open`: start both chains with @tally/lineage's 'open' entry, as a real pair log does. */
  constructor(p: Identity = provider, c: Identity = consumer, opts: { open?: boolean } = {}) {
    this.ids = { provider: p, consumer: c }
    const pair = { provider: p.peerId, consumer: c.peerId }
    this.state = initialState(pair)
    if (opts.open === true) {
      this.append('consumer', 'open', { pair, role: 'consumer' }, T0 - 10_000)
      this.append('provider', 'open', { pair, role: 'provider' }, T0 - 10_000)
    }
  }

  /** Sign the next entry of `role`'s chain without applying it. `blind`: the author has not seen the counterparty's latest entry. */
  sign(role: PartyRole, kind: EntryKind, body: unknown, time: number, opts: { blind?: boolean } = {}): EntryBlock {
    const head = this.#heads[role]
    const other = role === 'provider' ? 'consumer' : 'provider'
    const seen = opts.blind ? this.#seen[role] : this.#heads[other]
    return signEntry(this.ids[role], {
      v: 1,
      pair: this.state.pairId,
      author: this.ids[role].peerId,
      seq: (head?.entry.seq ?? 0) + 1,
      prev: head?.cid ?? null,
      seen: seen?.cid ?? null,
      time,
      kind,
      body,
    })
  }

  #commit(role: PartyRole, block: EntryBlock): void {
    this.#heads[role] = block
    this.#seen[role] = block.entry.seen === null ? null : (this.log.find((b) => b.cid.equals(block.entry.seen as CID)) ?? null)
    this.log.push(block)
  }

  /** Append a legal entry: reduce it (throws on rejection, leaving everything unchanged). */
  append(role: PartyRole, kind: EntryKind, body: unknown, time: number, opts: { blind?: boolean } = {}): EntryBlock {
    const block = this.sign(role, kind, body, time, opts)
    this.state = reduce(this.state, block)
    this.#commit(role, block)
    return block
  }

  /**
   * Append an entry to the author's chain even though the reducer refuses
   * it (a cheating author's own log); returns the rejection. The live
   * state stays as the counterparty would keep it.
   */
  force(role: PartyRole, kind: EntryKind, body: unknown, time: number): { block: EntryBlock; error: Error } {
    const block = this.sign(role, kind, body, time)
    let error: Error | undefined
    try {
      reduce(this.state, block)
    } catch (err) {
      error = err as Error
    }
    if (error === undefined) throw new Error(`expected ${kind} to be refused`)
    this.#commit(role, block)
    return { block, error }
  }

  /** The error `reduce` raises for this entry, without appending it. */
  reject(role: PartyRole, kind: EntryKind, body: unknown, time: number, opts: { blind?: boolean } = {}): Error {
    const block = this.sign(role, kind, body, time, opts)
    try {
      reduce(this.state, block)
    } catch (err) {
      return err as Error
    }
    throw new Error(`expected ${kind} to be refused`)
  }
}

/**
 * Open a deal with the default terms (or `t`) and bring it to the point
 * where usage can start: proposal, acceptance at T0, collateral,
 * attestation, manifest.
 */
export function activeDeal(p: TestPair, t: ContractTerms = terms()): CID {
  const proposal = p.append('consumer', 'proposal', { terms: t }, T0 - 2000)
  p.append('provider', 'acceptance', { deal: proposal.cid, offer: proposal.cid }, T0)
  if (t.collateral.amount > 0) p.append('provider', 'collateral', { deal: proposal.cid, amount: t.collateral }, T0 + 1)
  p.append('provider', 'attestation', { deal: proposal.cid, attestation: attestation(T0, t.resources.class, t.resources.count) }, T0 + 2)
  p.append('consumer', 'manifest', { deal: proposal.cid, workload }, T0 + 3)
  return proposal.cid
}

/** End of epoch `e` of a deal accepted at T0. */
export const endOf = (e: number): number => T0 + (e + 1) * EPOCH

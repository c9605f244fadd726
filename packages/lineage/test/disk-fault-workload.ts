/**
 * A settling workload for the disk-fault tests: rounds of concurrent
 * appends by the provider plus an ingest of the consumer's new entries,
 * until a durable write fails, then a few rounds more (which must all be
 * refused). Every append or ingest that resolved is recorded as
 * acknowledged; after recovery `checkRecovered` proves each is on disk.
 */
import type { EntryBlock } from '@tally/core'
import type { PairDescriptor } from '../src/api.ts'
import { exportPairLogBytes } from '../src/car.ts'
import { decodeEntryFast } from '../src/entry-codec.ts'
import { pairIdOf } from '../src/pair.ts'
import { PairLog } from '../src/pair-log.ts'
import type { Store } from '../src/store.ts'
import { MemoryStore } from '../src/store-memory.ts'
import { verifyExport } from '../src/verify.ts'
import { seeded } from './helpers.ts'

export interface Acked {
  role: 'provider' | 'consumer'
  seq: number
  cid: string
}

export interface WorkloadError {
  name: string
  code?: string
  during?: string
  message: string
}

export interface WorkloadResult {
  acked: Acked[]
  errors: WorkloadError[]
  /** Appends and ingests that resolved after the first failure (must be 0). */
  resolvedAfterFailure: number
  /** Resolved appends that came after a rejected one in submission order (must be 0: none resolves behind a failure). */
  resolvedBehindFailure: number
  /** The provider log's in-memory durable heads once the failure happened. */
  headsAfterFailure: { provider: number; consumer: number }
  rounds: number
}

export const PAD = 'x'.repeat(300)

export function fixturePair(): { pair: PairDescriptor; provider: ReturnType<typeof seeded>; consumer: ReturnType<typeof seeded> } {
  const provider = seeded(1)
  const consumer = seeded(2)
  return { pair: { provider: provider.peerId, consumer: consumer.peerId }, provider, consumer }
}

function errorOf(err: unknown): WorkloadError {
  const e = err as Error & { code?: unknown; details?: { during?: unknown } }
  const out: WorkloadError = { name: e.name, message: e.message }
  if (typeof e.code === 'string') out.code = e.code
  if (typeof e.details?.during === 'string') out.during = e.details.during
  return out
}

/**
 * Settle until a write fails (at most `maxRounds`), then `after` more rounds. `inject(round)` runs before each round.
 * `p` is the provider's log on the store under test; `c` the consumer's, elsewhere.
 */
export async function settleUntilFault(
  p: PairLog,
  c: PairLog,
  opts: { burst: number; maxRounds: number; after?: number; inject?: (round: number) => Promise<void> | void },
): Promise<WorkloadResult> {
  const result: WorkloadResult = {
    acked: [],
    errors: [],
    resolvedAfterFailure: 0,
    resolvedBehindFailure: 0,
    headsAfterFailure: { provider: 0, consumer: 0 },
    rounds: 0,
  }
  let failedAt = -1
  const after = opts.after ?? 2
  let sentConsumer = p.heads().consumer?.seq ?? 0
  for (let round = 0; round < opts.maxRounds; round++) {
    if (failedAt >= 0 && round > failedAt + after) break
    await opts.inject?.(round)
    result.rounds++
    // The consumer's side lives elsewhere and always works: three new entries to deliver.
    for (let i = 0; i < 3; i++) await c.append('note', { round, i })
    const fresh: EntryBlock[] = []
    for await (const b of c.range(c.me, sentConsumer + 1)) fresh.push(b)
    const appends = Array.from({ length: opts.burst }, (_, i) => p.append('note', { round, i, pad: PAD }))
    const ingest = p.ingest(fresh)
    const settled = await Promise.allSettled([...appends, ingest])
    let rejectedBefore = false
    for (const [i, s] of settled.entries()) {
      const isIngest = i === settled.length - 1
      if (s.status === 'fulfilled') {
        if (failedAt >= 0) result.resolvedAfterFailure++
        if (!isIngest && rejectedBefore) result.resolvedBehindFailure++
        if (isIngest) {
          for (const b of fresh) result.acked.push({ role: 'consumer', seq: b.entry.seq, cid: b.cid.toString() })
          if (fresh.length > 0) sentConsumer = fresh[fresh.length - 1]!.entry.seq
        } else {
          const b = s.value as EntryBlock
          result.acked.push({ role: 'provider', seq: b.entry.seq, cid: b.cid.toString() })
        }
      } else {
        if (!isIngest) rejectedBefore = true
        result.errors.push(errorOf(s.reason))
      }
    }
    if (failedAt < 0 && result.errors.length > 0) {
      failedAt = round
      const h = p.heads()
      result.headsAfterFailure = { provider: h.provider?.seq ?? 0, consumer: h.consumer?.seq ?? 0 }
    }
  }
  return result
}

export interface RecoveryCheck {
  /** Acknowledged entries not on disk (by seq and CID). */
  ackedLost: number
  heads: { provider: number; consumer: number }
  /** Entries on disk beyond what was acknowledged (a rejected write that reached the disk anyway: allowed). */
  unackedOnDisk: number
  verified: boolean
  problems: string[]
}

/** Reopen the provider's log on `store` and check: every acknowledged entry on disk, chains contiguous, the export verifies. */
export async function checkRecovered(store: Store, pair: PairDescriptor, acked: readonly Acked[]): Promise<{ log: PairLog; check: RecoveryCheck }> {
  const { provider } = fixturePair()
  const log = await PairLog.open(store, pair, provider)
  const problems: string[] = []
  let ackedLost = 0
  for (const a of acked) {
    const author = a.role === 'provider' ? pair.provider : pair.consumer
    const cid = await store.getCid(log.id, author, a.seq)
    if (cid?.toString() !== a.cid) {
      ackedLost++
      problems.push(`acknowledged ${a.role} #${a.seq} ${a.cid} is ${cid === undefined ? 'missing' : `replaced by ${cid}`}`)
    }
  }
  const heads = { provider: log.heads().provider?.seq ?? 0, consumer: log.heads().consumer?.seq ?? 0 }
  for (const role of ['provider', 'consumer'] as const) {
    let expect = 1
    for await (const { seq } of log.cids(role)) {
      if (seq !== expect) problems.push(`${role} chain jumps from #${expect - 1} to #${seq}`)
      expect = seq + 1
    }
    if (expect - 1 !== heads[role]) problems.push(`${role} head #${heads[role]} but the index ends at #${expect - 1}`)
  }
  const maxAcked = (role: 'provider' | 'consumer') => Math.max(0, ...acked.filter((a) => a.role === role).map((a) => a.seq))
  const unackedOnDisk = heads.provider - maxAcked('provider') + (heads.consumer - maxAcked('consumer'))
  const report = await verifyExport(await exportPairLogBytes(log))
  if (!report.ok) problems.push(`export does not verify: ${report.firstProblem?.message ?? JSON.stringify(report.problems[0])}`)
  return { log, check: { ackedLost, heads, unackedOnDisk, verified: report.ok, problems } }
}

/** Continue after recovery: the provider appends, and ingests what the consumer has that it lacks. Returns the new export's verdict. */
export async function continueAfterRecovery(log: PairLog, c: PairLog): Promise<{ appended: EntryBlock; verified: boolean; expectedSeq: number }> {
  const expectedSeq = (log.heads().provider?.seq ?? 0) + 1
  const prev = log.heads().provider?.cid
  const appended = await log.append('note', { recovered: true })
  if (prev !== undefined && !appended.entry.prev?.equals(prev)) throw new Error('the append after recovery does not link to the head on disk')
  for (let i = 0; i < 2; i++) await c.append('note', { recovered: i })
  const fresh: EntryBlock[] = []
  for await (const b of c.range(c.me, (log.heads().consumer?.seq ?? 0) + 1)) fresh.push(b)
  await log.ingest(fresh)
  const report = await verifyExport(await exportPairLogBytes(log))
  return { appended, verified: report.ok, expectedSeq }
}

/** The consumer's chain as hex, to hand from a child process to the test. */
export async function chainHex(c: PairLog): Promise<string[]> {
  const out: string[] = []
  for await (const b of c.range(c.me, 1)) out.push(Buffer.from(b.bytes).toString('hex'))
  return out
}

/** A consumer log in memory holding exactly `hex` (its own chain, from chainHex). */
export async function consumerFromHex(hex: readonly string[]): Promise<PairLog> {
  const { pair, consumer } = fixturePair()
  const store = new MemoryStore()
  const blocks = hex.map((h) => new Uint8Array(Buffer.from(h, 'hex')))
  const id = pairIdOf(pair)
  const decoded = blocks.map((b) => decodeEntryFast(b))
  const last = decoded[decoded.length - 1]
  await store.write({
    entries: decoded.map((b) => ({ pair: id, author: consumer.peerId, seq: b.entry.seq, cid: b.cid, bytes: b.bytes })),
    ...(last === undefined ? {} : { heads: [{ pair: id, author: consumer.peerId, seq: last.entry.seq, cid: last.cid }] }),
    pairs: [{ id, descriptor: pair }],
  })
  return PairLog.open(store, pair, consumer)
}

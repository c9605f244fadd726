import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity } from '@tally/core'
import type { PairDescriptor } from '../src/api.ts'
import { scanEnvelope } from '../src/entry-codec.ts'
import { PairLog, type PairLogOptions } from '../src/pair-log.ts'
import type { Store } from '../src/store.ts'
import { MemoryStore } from '../src/store-memory.ts'

export function seeded(n: number): Identity {
  const seed = new Uint8Array(32)
  seed[0] = n
  seed[31] = 7
  return Identity.fromSeed(seed)
}

export interface Pair {
  provider: Identity
  consumer: Identity
  pair: PairDescriptor
  p: PairLog
  c: PairLog
  sp: Store
  sc: Store
}

export async function makePair(opts: PairLogOptions = {}, stores?: { sp: Store; sc: Store }): Promise<Pair> {
  const provider = seeded(1)
  const consumer = seeded(2)
  const pair = { provider: provider.peerId, consumer: consumer.peerId }
  const sp = stores?.sp ?? new MemoryStore()
  const sc = stores?.sc ?? new MemoryStore()
  return { provider, consumer, pair, sp, sc, p: await PairLog.open(sp, pair, provider, opts), c: await PairLog.open(sc, pair, consumer, opts) }
}

/** Send what `to` lacks of `from`'s own chain. */
export async function sync(from: PairLog, to: PairLog): Promise<number> {
  const have = to.heads()[from.role]?.seq ?? 0
  const blocks = []
  for await (const b of from.range(from.me, have + 1)) blocks.push(b)
  if (blocks.length > 0) await to.ingest(blocks)
  return blocks.length
}

export async function ownChain(log: PairLog) {
  const out = []
  for await (const b of log.range(log.me, 1)) out.push(b)
  return out
}

/** Everything a store holds about a pair, as comparable strings. */
export async function snapshot(store: Store, pair: PairDescriptor, id: { toString(): string }): Promise<string[]> {
  const { CID } = await import('@tally/core')
  const pid = CID.parse(id.toString())
  const out: string[] = []
  for (const author of [pair.provider, pair.consumer]) {
    const h = await store.getHead(pid, author)
    out.push(`head ${author} ${h?.seq ?? 0} ${h?.cid.toString() ?? '-'}`)
    for await (const { seq, cid } of store.cids(pid, author, 1, Number.MAX_SAFE_INTEGER)) {
      const bytes = await store.getBlock(cid)
      out.push(`entry ${author} ${seq} ${cid} ${Buffer.from(bytes ?? []).toString('hex')}`)
    }
  }
  for await (const { key, value } of store.metaEntries('')) out.push(`meta ${key} ${Buffer.from(value).toString('hex')}`)
  for await (const p of store.pairs()) out.push(`pair ${p.id} ${p.descriptor.provider} ${p.descriptor.consumer}`)
  return out
}

export async function tempDir(prefix = 'tally-lineage-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

/** Expect `p` to reject with an error of class name `name`; returns it. */
export async function rejectsWith(p: Promise<unknown>, name: string): Promise<Error> {
  try {
    await p
  } catch (err) {
    if ((err as Error).name !== name) throw new Error(`expected ${name}, got ${(err as Error).name}: ${(err as Error).message}`)
    return err as Error
  }
  throw new Error(`expected ${name}, but it resolved`)
}

/** `entry` with its body bytes replaced by `body` (the envelope stays canonical). */
export function withBody(entry: Uint8Array, body: Uint8Array): Uint8Array {
  const s = scanEnvelope(entry)!
  const out = new Uint8Array(entry.byteLength - (s.bodyEnd - s.bodyStart) + body.byteLength)
  out.set(entry.subarray(0, s.bodyStart), 0)
  out.set(body, s.bodyStart)
  out.set(entry.subarray(s.bodyEnd), s.bodyStart + body.byteLength)
  return out
}

/**
 * The storage interface under pair logs. One store per node holds every
 * pair log of that node. A `write` is atomic (all of it or none) and
 * resolves only once durable; concurrent writes are group-committed into
 * one durable batch (see group-commit.ts).
 */
import type { CID, PeerIdString } from '@tally/core'
import type { MetaWrite, PairDescriptor } from './api.ts'
import { StoreError } from './errors.ts'

/** A chain head as stored: the highest seq and its CID. */
export interface StoredHead {
  seq: number
  cid: CID
}

/** One position of a chain as read back: its seq, CID and bytes. */
export interface ChainEntry {
  seq: number
  cid: CID
  bytes: Uint8Array
}

/** One entry to store: its bytes by CID, and the (pair, author, seq) -> CID index. */
export interface EntryWrite {
  pair: CID
  author: PeerIdString
  seq: number
  cid: CID
  bytes: Uint8Array
}

export interface HeadWrite {
  pair: CID
  author: PeerIdString
  seq: number
  cid: CID
}

/** Everything one atomic write changes. Later items override earlier ones for the same key. */
export interface StoreBatch {
  entries?: EntryWrite[]
  heads?: HeadWrite[]
  /** Keys are global to the store; put the pair id in a key when it is per pair. */
  meta?: MetaWrite[]
  /** Registers pair logs, so a node can list them after a restart. */
  pairs?: { id: CID; descriptor: PairDescriptor }[]
}

export interface Store {
  readonly kind: string
  /** Apply `batch` atomically; resolves once durable. Concurrent calls share one durable write. */
  write(batch: StoreBatch): Promise<void>
  getBlock(cid: CID): Promise<Uint8Array | undefined>
  getCid(pair: CID, author: PeerIdString, seq: number): Promise<CID | undefined>
  getHead(pair: CID, author: PeerIdString): Promise<StoredHead | undefined>
  getMeta(key: string): Promise<Uint8Array | undefined>
  /** Index entries of one chain with from <= seq <= to, ascending. */
  cids(pair: CID, author: PeerIdString, fromSeq: number, toSeq: number): AsyncIterable<{ seq: number; cid: CID }>
  /**
   * Entries of one chain with from <= seq <= to, ascending, with their bytes: what `cids` plus `getBlock`
   * per entry give, read in batches. Throws `StoreError` if the index names a block the store lacks.
   */
  chainEntries(pair: CID, author: PeerIdString, fromSeq: number, toSeq: number): AsyncIterable<ChainEntry>
  /** Meta keys starting with `prefix`, ascending. */
  metaEntries(prefix: string): AsyncIterable<{ key: string; value: Uint8Array }>
  pairs(): AsyncIterable<{ id: CID; descriptor: PairDescriptor }>
  /** Number of durable writes issued so far (each may carry many batches). */
  readonly durableWrites: number
  close(): Promise<void>
}

/** Fixed-width decimal so that index keys sort by seq. */
export function seqKey(seq: number): string {
  return seq.toString().padStart(16, '0')
}

export function validateBatch(batch: StoreBatch): void {
  for (const e of batch.entries ?? []) {
    if (!Number.isSafeInteger(e.seq) || e.seq < 1) throw new StoreError(`entry seq must be a positive integer, got ${e.seq}`)
  }
  for (const h of batch.heads ?? []) {
    if (!Number.isSafeInteger(h.seq) || h.seq < 1) throw new StoreError(`head seq must be a positive integer, got ${h.seq}`)
  }
}

/** The batches of one group as a single batch: heads deduplicated (the last per chain wins), everything else in order. */
export function mergeBatches(batches: readonly StoreBatch[]): StoreBatch {
  if (batches.length === 1) return batches[0]!
  const entries: EntryWrite[] = []
  const heads = new Map<string, HeadWrite>()
  const meta: MetaWrite[] = []
  const pairs: { id: CID; descriptor: PairDescriptor }[] = []
  for (const b of batches) {
    if (b.entries !== undefined) for (const e of b.entries) entries.push(e)
    if (b.heads !== undefined) for (const h of b.heads) heads.set(`${h.author}/${h.pair.toString()}`, h)
    if (b.meta !== undefined) for (const m of b.meta) meta.push(m)
    if (b.pairs !== undefined) for (const p of b.pairs) pairs.push(p)
  }
  return { entries, heads: [...heads.values()], meta, pairs }
}

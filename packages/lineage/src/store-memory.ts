import type { CID, PeerIdString } from '@tally/core'
import type { PairDescriptor } from './api.ts'
import { StoreError } from './errors.ts'
import { GroupCommitter } from './group-commit.ts'
import { type ChainEntry, type Store, type StoreBatch, type StoredHead, mergeBatches, validateBatch } from './store.ts'

/**
 * A store in memory: for tests, tools and short-lived verifiers. Same
 * semantics as LevelStore (atomic, group-committed writes), nothing durable
 * beyond the process. Bytes are copied in and out, so callers cannot change
 * what is stored by mutating a buffer.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly #blocks = new Map<string, Uint8Array>()
  readonly #index = new Map<string, Map<number, CID>>()
  readonly #heads = new Map<string, StoredHead>()
  readonly #meta = new Map<string, Uint8Array>()
  readonly #pairs = new Map<string, { id: CID; descriptor: PairDescriptor }>()
  readonly #committer = new GroupCommitter(async (batches) => this.#apply(batches))
  #closed = false

  get durableWrites(): number {
    return this.#committer.writes
  }

  write(batch: StoreBatch): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('store is closed'))
    try {
      validateBatch(batch)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#committer.submit(batch)
  }

  #apply(batches: StoreBatch[]): void {
    if (this.#closed) throw new StoreError('store is closed')
    for (const b of [mergeBatches(batches)]) {
      for (const e of b.entries ?? []) {
        this.#blocks.set(e.cid.toString(), new Uint8Array(e.bytes))
        const chain = `${e.pair.toString()}/${e.author}`
        let m = this.#index.get(chain)
        if (m === undefined) this.#index.set(chain, (m = new Map()))
        m.set(e.seq, e.cid)
      }
      for (const h of b.heads ?? []) this.#heads.set(`${h.pair.toString()}/${h.author}`, { seq: h.seq, cid: h.cid })
      for (const m of b.meta ?? []) {
        if (m.value === null) this.#meta.delete(m.key)
        else this.#meta.set(m.key, new Uint8Array(m.value))
      }
      for (const p of b.pairs ?? []) this.#pairs.set(p.id.toString(), { id: p.id, descriptor: { ...p.descriptor } })
    }
  }

  #open(): void {
    if (this.#closed) throw new StoreError('store is closed')
  }

  async getBlock(cid: CID): Promise<Uint8Array | undefined> {
    this.#open()
    return this.#blocks.get(cid.toString())?.slice()
  }

  async getCid(pair: CID, author: PeerIdString, seq: number): Promise<CID | undefined> {
    this.#open()
    return this.#index.get(`${pair.toString()}/${author}`)?.get(seq)
  }

  async getHead(pair: CID, author: PeerIdString): Promise<StoredHead | undefined> {
    this.#open()
    const h = this.#heads.get(`${pair.toString()}/${author}`)
    return h === undefined ? undefined : { ...h }
  }

  async getMeta(key: string): Promise<Uint8Array | undefined> {
    this.#open()
    return this.#meta.get(key)?.slice()
  }

  async *cids(pair: CID, author: PeerIdString, fromSeq: number, toSeq: number): AsyncIterable<{ seq: number; cid: CID }> {
    this.#open()
    const m = this.#index.get(`${pair.toString()}/${author}`)
    if (m === undefined) return
    const seqs = [...m.keys()].filter((s) => s >= fromSeq && s <= toSeq).sort((a, b) => a - b)
    for (const seq of seqs) {
      const cid = m.get(seq)
      if (cid !== undefined) yield { seq, cid }
    }
  }

  async *chainEntries(pair: CID, author: PeerIdString, fromSeq: number, toSeq: number): AsyncIterable<ChainEntry> {
    for await (const { seq, cid } of this.cids(pair, author, fromSeq, toSeq)) {
      this.#open()
      const bytes = this.#blocks.get(cid.toString())
      if (bytes === undefined) throw new StoreError(`store lacks entry ${cid}`)
      yield { seq, cid, bytes: bytes.slice() }
    }
  }

  async *metaEntries(prefix: string): AsyncIterable<{ key: string; value: Uint8Array }> {
    this.#open()
    const keys = [...this.#meta.keys()].filter((k) => k.startsWith(prefix)).sort()
    for (const key of keys) {
      const value = this.#meta.get(key)
      if (value !== undefined) yield { key, value: value.slice() }
    }
  }

  async *pairs(): AsyncIterable<{ id: CID; descriptor: PairDescriptor }> {
    this.#open()
    for (const p of [...this.#pairs.values()]) yield { id: p.id, descriptor: { ...p.descriptor } }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    await this.#committer.drain()
    this.#closed = true
  }
}

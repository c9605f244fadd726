/**
 * The compliance suite every Store implementation passes (run by
 * stores.test.ts for MemoryStore and LevelStore).
 */
import { toBlock, type CID } from '@tally/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Store } from '../src/store.ts'
import { seeded } from './helpers.ts'

export interface StoreFactory {
  name: string
  /** A fresh, empty store. */
  create(): Promise<Store>
  /** The same store reopened after close (durable stores only). */
  reopen?(store: Store): Promise<Store>
  cleanup?(): Promise<void>
}

const A = seeded(11).peerId
const B = seeded(12).peerId

function entry(pair: CID, author: string, seq: number) {
  const { bytes, cid } = toBlock({ pair, author, seq, filler: 'x'.repeat(seq % 7) })
  return { pair, author, seq, cid, bytes }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

export function storeCompliance(factory: StoreFactory): void {
  describe(`Store compliance: ${factory.name}`, () => {
    let store: Store
    const pair = toBlock({ pair: 1 }).cid
    const other = toBlock({ pair: 2 }).cid

    beforeEach(async () => {
      store = await factory.create()
    })
    afterEach(async () => {
      await store.close()
      await factory.cleanup?.()
    })

    it('is empty when new', async () => {
      expect(await store.getHead(pair, A)).toBeUndefined()
      expect(await store.getCid(pair, A, 1)).toBeUndefined()
      expect(await store.getBlock(pair)).toBeUndefined()
      expect(await store.getMeta('k')).toBeUndefined()
      expect(await collect(store.cids(pair, A, 1, 100))).toEqual([])
      expect(await collect(store.chainEntries(pair, A, 1, 100))).toEqual([])
      expect(await collect(store.pairs())).toEqual([])
    })

    it('writes entries, index, heads, meta and pairs in one batch', async () => {
      const e1 = entry(pair, A, 1)
      const e2 = entry(pair, A, 2)
      await store.write({
        entries: [e1, e2],
        heads: [{ pair, author: A, seq: 2, cid: e2.cid }],
        meta: [{ key: 'session/x', value: Uint8Array.of(1, 2) }],
        pairs: [{ id: pair, descriptor: { provider: A, consumer: B } }],
      })
      expect(await store.getBlock(e1.cid)).toEqual(e1.bytes)
      expect((await store.getCid(pair, A, 2))?.equals(e2.cid)).toBe(true)
      const head = await store.getHead(pair, A)
      expect(head?.seq).toBe(2)
      expect(head?.cid.equals(e2.cid)).toBe(true)
      expect(await store.getMeta('session/x')).toEqual(Uint8Array.of(1, 2))
      const pairs = await collect(store.pairs())
      expect(pairs.length).toBe(1)
      expect(pairs[0]!.id.equals(pair)).toBe(true)
      expect(pairs[0]!.descriptor).toEqual({ provider: A, consumer: B })
    })

    it('ranges the index in seq order, bounded both ways, per chain and pair', async () => {
      const entries = [5, 1, 3, 2, 4, 10, 11].map((s) => entry(pair, A, s))
      await store.write({ entries: [...entries, entry(pair, B, 1), entry(other, A, 1)] })
      expect((await collect(store.cids(pair, A, 1, 100))).map((x) => x.seq)).toEqual([1, 2, 3, 4, 5, 10, 11])
      expect((await collect(store.cids(pair, A, 2, 4))).map((x) => x.seq)).toEqual([2, 3, 4])
      expect((await collect(store.cids(pair, A, 6, 9))).map((x) => x.seq)).toEqual([])
      expect((await collect(store.cids(pair, A, 4, 3))).map((x) => x.seq)).toEqual([])
      expect((await collect(store.cids(pair, B, 1, 100))).map((x) => x.seq)).toEqual([1])
      expect((await collect(store.cids(other, A, 1, 100))).map((x) => x.seq)).toEqual([1])
    })

    it('reads chain entries with their bytes in seq order, bounded both ways, per chain and pair', async () => {
      const entries = [5, 1, 3, 2, 4, 10, 11].map((s) => entry(pair, A, s))
      const bySeq = new Map(entries.map((e) => [e.seq, e]))
      await store.write({ entries: [...entries, entry(pair, B, 1), entry(other, A, 1)] })
      const all = await collect(store.chainEntries(pair, A, 1, 100))
      expect(all.map((x) => x.seq)).toEqual([1, 2, 3, 4, 5, 10, 11])
      for (const x of all) {
        expect(x.cid.equals(bySeq.get(x.seq)!.cid)).toBe(true)
        expect(x.bytes).toEqual(bySeq.get(x.seq)!.bytes)
      }
      expect(await collect(store.chainEntries(pair, A, 0, Number.MAX_SAFE_INTEGER))).toEqual(all)
      expect((await collect(store.chainEntries(pair, A, 2, 4))).map((x) => x.seq)).toEqual([2, 3, 4])
      expect(await collect(store.chainEntries(pair, A, 6, 9))).toEqual([])
      expect(await collect(store.chainEntries(pair, A, 4, 3))).toEqual([])
      expect((await collect(store.chainEntries(pair, B, 1, 100))).map((x) => x.seq)).toEqual([1])
      expect((await collect(store.chainEntries(other, A, 1, 100))).map((x) => x.seq)).toEqual([1])
    })

    it('reads long chains across chunks the same as cids and getBlock, and stops early on break', async () => {
      const n = 1500
      const entries = Array.from({ length: n }, (_, i) => entry(pair, A, i + 1))
      await store.write({ entries, heads: [{ pair, author: A, seq: n, cid: entries[n - 1]!.cid }] })
      const got = await collect(store.chainEntries(pair, A, 1, n))
      expect(got.length).toBe(n)
      for (let i = 0; i < n; i++) {
        expect(got[i]!.seq).toBe(i + 1)
        expect(got[i]!.bytes).toEqual(await store.getBlock(got[i]!.cid))
      }
      const some: number[] = []
      for await (const x of store.chainEntries(pair, A, 70, n)) {
        some.push(x.seq)
        if (some.length === 3) break
      }
      expect(some).toEqual([70, 71, 72])
      // An abandoned read leaves the store usable.
      await store.write({ meta: [{ key: 'after', value: Uint8Array.of(1) }] })
      expect(await store.getMeta('after')).toEqual(Uint8Array.of(1))
    })

    it('deletes meta with null and lists meta by prefix in key order', async () => {
      await store.write({
        meta: [
          { key: 'a/2', value: Uint8Array.of(2) },
          { key: 'a/1', value: Uint8Array.of(1) },
          { key: 'b/1', value: Uint8Array.of(3) },
        ],
      })
      await store.write({ meta: [{ key: 'a/2', value: null }] })
      expect(await store.getMeta('a/2')).toBeUndefined()
      const listed = await collect(store.metaEntries('a/'))
      expect(listed.map((x) => x.key)).toEqual(['a/1'])
      expect((await collect(store.metaEntries(''))).map((x) => x.key)).toEqual(['a/1', 'b/1'])
    })

    it('applies later writes over earlier ones, also within one group', async () => {
      const e = entry(pair, A, 1)
      await Promise.all([
        store.write({ heads: [{ pair, author: A, seq: 1, cid: e.cid }], meta: [{ key: 'k', value: Uint8Array.of(1) }] }),
        store.write({ meta: [{ key: 'k', value: Uint8Array.of(2) }] }),
        store.write({ meta: [{ key: 'k', value: Uint8Array.of(3) }] }),
      ])
      expect(await store.getMeta('k')).toEqual(Uint8Array.of(3))
    })

    it('group-commits concurrent writes into few durable writes', async () => {
      const before = store.durableWrites
      const writes = []
      for (let i = 1; i <= 200; i++)
        writes.push(store.write({ entries: [entry(pair, A, i)], heads: [{ pair, author: A, seq: i, cid: entry(pair, A, i).cid }] }))
      await Promise.all(writes)
      const used = store.durableWrites - before
      expect(used).toBeGreaterThanOrEqual(1)
      expect(used).toBeLessThanOrEqual(2)
      expect((await store.getHead(pair, A))?.seq).toBe(200)
      expect((await collect(store.cids(pair, A, 1, 1000))).length).toBe(200)
    })

    it('does not let callers change stored bytes through their buffers', async () => {
      const e = entry(pair, A, 1)
      const value = Uint8Array.of(9, 9)
      await store.write({ entries: [e], meta: [{ key: 'm', value }] })
      e.bytes[0] = e.bytes[0]! ^ 0xff
      value[0] = 0
      const got = await store.getBlock(e.cid)
      expect(got?.[0]).not.toBe(e.bytes[0])
      got![1] = 0
      expect(await store.getMeta('m')).toEqual(Uint8Array.of(9, 9))
      expect((await store.getBlock(e.cid))![1]).not.toBe(0)
      const [read] = await collect(store.chainEntries(pair, A, 1, 1))
      expect(read!.bytes[0]).not.toBe(e.bytes[0])
      read!.bytes[1] = 0
      expect((await store.getBlock(e.cid))![1]).not.toBe(0)
    })

    it('rejects a malformed batch without applying any of it', async () => {
      const e = entry(pair, A, 1)
      await expect(store.write({ entries: [e], heads: [{ pair, author: A, seq: 0, cid: e.cid }] })).rejects.toMatchObject({ name: 'StoreError' })
      expect(await store.getBlock(e.cid)).toBeUndefined()
    })

    it('refuses use after close', async () => {
      await store.close()
      await expect(store.write({ meta: [{ key: 'k', value: Uint8Array.of(1) }] })).rejects.toMatchObject({ name: 'StoreError' })
      await expect(store.getMeta('k')).rejects.toMatchObject({ name: 'StoreError' })
      await expect(collect(store.chainEntries(pair, A, 1, 10))).rejects.toMatchObject({ name: 'StoreError' })
      store = await factory.create()
    })

    if (factory.reopen !== undefined) {
      it('keeps everything across close and reopen', async () => {
        const e1 = entry(pair, A, 1)
        await store.write({
          entries: [e1],
          heads: [{ pair, author: A, seq: 1, cid: e1.cid }],
          meta: [{ key: 'k', value: Uint8Array.of(7) }],
          pairs: [{ id: pair, descriptor: { provider: A, consumer: B } }],
        })
        store = await factory.reopen!(store)
        expect(await store.getBlock(e1.cid)).toEqual(e1.bytes)
        expect((await collect(store.chainEntries(pair, A, 1, 1)))[0]?.bytes).toEqual(e1.bytes)
        expect((await store.getHead(pair, A))?.cid.equals(e1.cid)).toBe(true)
        expect(await store.getMeta('k')).toEqual(Uint8Array.of(7))
        expect((await collect(store.pairs())).length).toBe(1)
      })
    }
  })
}

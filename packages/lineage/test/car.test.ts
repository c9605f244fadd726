import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarReader } from '@ipld/car'
import { type EntryBlock, signDocument, signEntry } from '@tally/core'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import type { VerifyReport } from '../src/api.ts'
import { exportPairLogBytes, writePairLogExport } from '../src/car.ts'
import { cosignCheckpoint, proposeCheckpoint } from '../src/checkpoint.ts'
import { importCar, openExport } from '../src/import.ts'
import { PairLog } from '../src/pair-log.ts'
import { MemoryStore } from '../src/store-memory.ts'
import { verifyExport } from '../src/verify.ts'
import { makePair, ownChain, rejectsWith, seeded, sync, tempDir } from './helpers.ts'

let car: Uint8Array
let x: Awaited<ReturnType<typeof makePair>>
let entries: EntryBlock[]

/** A small but complete log: both chains, observations, two checkpoints. */
beforeAll(async () => {
  x = await makePair()
  for (let i = 0; i < 12; i++) {
    await x.p.append('usage', { i, obs: i % 4 === 0 ? signDocument(seeded(50), 'observation', { up: true, i }) : null })
    if (i % 3 === 0) {
      await sync(x.p, x.c)
      await x.c.append('voucher', { i })
      await sync(x.c, x.p)
    }
    if (i % 5 === 4) {
      const proposal = await proposeCheckpoint(x.p, { USD: { paid: i } })
      await sync(x.p, x.c)
      await cosignCheckpoint(x.c, proposal)
      await sync(x.c, x.p)
    }
  }
  car = await exportPairLogBytes(x.p, { exportedAt: 1_700_000_000_000 })
  entries = [...(await ownChain(x.p)), ...(await ownChain(x.c))]
})

function expectNamed(r: VerifyReport): void {
  expect(r.ok).toBe(false)
  expect(r.firstProblem?.author).toMatch(/^12D3KooW/)
  expect(r.firstProblem?.seq).toBeGreaterThanOrEqual(1)
  expect(r.firstProblem?.cid).toMatch(/^bafy/)
}

describe('CAR export', () => {
  it('verifies: both chains, checkpoints, documents, balances', async () => {
    const r = await verifyExport(car)
    expect(r.problems).toEqual([])
    expect(r.ok).toBe(true)
    expect(r.chains.provider.entries).toBe(x.p.heads().provider!.seq)
    expect(r.chains.consumer.entries).toBe(x.p.heads().consumer!.seq)
    expect(r.chains.provider.head?.cid).toBe(x.p.heads().provider!.cid.toString())
    expect(r.checkpoints).toBe(2)
    expect(r.documents).toBe(3)
    expect(r.balances).toEqual({ USD: { paid: 9 } })
    expect(r.pairId).toBe(x.p.id.toString())
    expect(r.blocks).toBe(entries.length + 1)
  })

  it('is a standard CARv1 that @ipld/car reads, manifest first', async () => {
    const reader = await CarReader.fromBytes(car)
    const roots = await reader.getRoots()
    expect(roots.length).toBe(1)
    const blocks = []
    for await (const b of reader.blocks()) blocks.push(b)
    expect(blocks[0]!.cid.equals(roots[0]!)).toBe(true)
    expect(blocks.length).toBe(entries.length + 1)
  })

  it('verifies the same from a file, in chunks, with progress', async () => {
    const t = await tempDir()
    try {
      const file = join(t.dir, 'log.car')
      await writePairLogExport(x.p, file, { exportedAt: 1_700_000_000_000 })
      const seen: number[] = []
      const r = await verifyExport(file, { onProgress: (done) => seen.push(done) })
      expect(r.ok).toBe(true)
      expect(seen.at(-1)).toBe(car.byteLength)
      await rejectsWith(verifyExport(join(t.dir, 'missing.car')), 'StoreError')
    } finally {
      await t.remove()
    }
  })

  it('replays the timeline through a given reducer and reports its problems', async () => {
    let kinds: string[] = []
    const ok = await verifyExport(car, {
      replay: (tl) => {
        kinds = tl.map((b) => b.entry.kind)
        return []
      },
    })
    expect(ok.ok).toBe(true)
    expect(kinds[0]).toBe('open')
    expect(kinds.length).toBe(entries.length)
    const timeline: string[] = []
    for await (const b of x.p.timeline()) timeline.push(b.cid.toString())
    const opened = await openExport(car)
    expect([...opened.timeline()].map((b) => b.cid.toString())).toEqual(timeline)
    const bad = await verifyExport(car, {
      replay: (tl) => [
        {
          code: 'IllegalTransitionError',
          message: 'voucher without evaluation',
          author: tl[3]!.entry.author,
          seq: tl[3]!.entry.seq,
          cid: tl[3]!.cid.toString(),
        },
      ],
    })
    expect(bad.ok).toBe(false)
    expect(bad.firstProblem).toMatchObject({ code: 'IllegalTransitionError', seq: 2 })
  })

  it('imports into an empty store, and on top of a held prefix, and refuses a conflict', async () => {
    const store = new MemoryStore()
    const r = await importCar(store, car)
    expect(r.added.provider).toBe(x.p.heads().provider!.seq)
    const log = await PairLog.open(store, x.pair, x.consumer)
    expect(log.heads().provider?.cid.equals(x.p.heads().provider!.cid)).toBe(true)
    expect(log.checkpoints().length).toBe(2)
    expect((await importCar(store, car)).added).toEqual({ provider: 0, consumer: 0 })
    const partial = new MemoryStore()
    const other = await PairLog.open(partial, x.pair, x.consumer)
    await other.ingest((await ownChain(x.p)).slice(0, 2))
    await other.close()
    expect((await importCar(partial, car)).added.provider).toBe(x.p.heads().provider!.seq - 2)
    const forked = new MemoryStore()
    const f = await PairLog.open(forked, x.pair, x.provider)
    await f.append('note', { different: true })
    await rejectsWith(importCar(forked, car), 'ImportConflictError')
    await rejectsWith(importCar(new MemoryStore(), car.subarray(0, car.byteLength - 10)), 'ExportInvalidError')
  })

  it('names the entry for a removed, a stray, a foreign and an equivocating block', async () => {
    const { CarWriter } = await import('@ipld/car')
    const reader = await CarReader.fromBytes(car)
    const blocks: { cid: import('@tally/core').CID; bytes: Uint8Array }[] = []
    for await (const b of reader.blocks()) blocks.push(b)
    const rebuild = async (list: typeof blocks) => {
      const { writer, out } = CarWriter.create(await reader.getRoots())
      const parts: Uint8Array[] = []
      const done = (async () => {
        for await (const p of out) parts.push(p)
      })()
      for (const b of list) await writer.put(b)
      await writer.close()
      await done
      return new Uint8Array(Buffer.concat(parts))
    }
    // Any block order is accepted.
    expect((await verifyExport(await rebuild([blocks[0]!, ...blocks.slice(1).reverse()]))).ok).toBe(true)
    const removed = await verifyExport(await rebuild(blocks.filter((_, i) => i !== 5)))
    expectNamed(removed)
    expect(removed.firstProblem?.code).toBe('MissingEntryError')
    expect(removed.firstProblem?.cid).toBe(blocks[5]!.cid.toString())
    const provChain = await ownChain(x.p)
    const last = provChain.at(-1)!
    const fork = signEntry(x.provider, { ...last.entry, body: { forked: true } })
    const forkR = await verifyExport(await rebuild([...blocks, fork]))
    expectNamed(forkR)
    expect(forkR.problems.map((p) => p.code)).toContain('EquivocationError')
    const stranger = await PairLog.open(new MemoryStore(), { provider: seeded(60).peerId, consumer: x.consumer.peerId }, seeded(60))
    const foreign = await stranger.append('note', {})
    const foreignR = await verifyExport(await rebuild([...blocks, foreign]))
    expectNamed(foreignR)
    expect(foreignR.firstProblem?.code).toBe('WrongAuthorError')
  })

  it('detects truncation at every length and names an entry', async () => {
    for (let len = 0; len < car.byteLength; len += 37) {
      const r = await verifyExport(car.subarray(0, len))
      expect(r.ok).toBe(false)
      // Once the manifest and one entry are in, there is an entry to name.
      if (len > 1000) expectNamed(r)
    }
  })

  it('detects every single-byte change at random positions and names an entry (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 1_000_000 }), fc.integer({ min: 1, max: 255 }), async (at, delta) => {
        const bad = car.slice()
        const pos = at % bad.byteLength
        bad[pos] = (bad[pos]! + delta) & 0xff
        const r = await verifyExport(bad)
        expectNamed(r)
      }),
      { numRuns: 400 },
    )
  })

  it('detects a flip at every position of the first blocks (exhaustive)', async () => {
    for (let pos = 0; pos < Math.min(car.byteLength, 700); pos++) {
      const bad = car.slice()
      bad[pos] = bad[pos]! ^ 0x01
      expectNamed(await verifyExport(bad))
    }
  })

  it('writes a file that verifies and writes nothing for an unusable path', async () => {
    const t = await tempDir()
    try {
      await writeFile(join(t.dir, 'x'), '')
      await expect(writePairLogExport(x.p, join(t.dir, 'x', 'nested.car'))).rejects.toBeTruthy()
    } finally {
      await t.remove()
    }
  })
})

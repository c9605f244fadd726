/**
 * Decoders fed random and mutated bytes raise only the project's typed
 * errors (TallyError subclasses), never a TypeError or RangeError; the
 * verifier never throws at all. 11,400 cases in all.
 */
import { TallyError, signDocument } from '@tally/core'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { exportPairLogBytes } from '../src/car.ts'
import { CarScanner } from '../src/car-scan.ts'
import { cosignCheckpoint, proposeCheckpoint } from '../src/checkpoint.ts'
import { decodeEntryFast } from '../src/entry-codec.ts'
import { decodeEquivocationProof, encodeEquivocationProof, makeEquivocationProof, verifyEquivocationProof } from '../src/equivocation.ts'
import { importCar } from '../src/import.ts'
import { decodeInclusionProof, encodeInclusionProof, inclusionProof, verifyInclusion } from '../src/inclusion.ts'
import { MemoryStore } from '../src/store-memory.ts'
import { verifyExport } from '../src/verify.ts'
import { mutate, mutation } from './arbitraries.ts'
import { makePair, ownChain, seeded, sync } from './helpers.ts'

function onlyTallyErrors(f: () => unknown): void {
  try {
    f()
  } catch (err) {
    if (!(err instanceof TallyError)) throw new Error(`untyped error ${(err as Error).name}: ${(err as Error).message}`)
  }
}

async function onlyTallyErrorsAsync(f: () => Promise<unknown>): Promise<void> {
  try {
    await f()
  } catch (err) {
    if (!(err instanceof TallyError)) throw new Error(`untyped error ${(err as Error).name}: ${(err as Error).message}`)
  }
}

const randomBytes = fc.uint8Array({ maxLength: 600 })
const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 })

let entryBytes: Uint8Array[]
let car: Uint8Array
let equivocation: Uint8Array
let inclusion: Uint8Array
let x: Awaited<ReturnType<typeof makePair>>

beforeAll(async () => {
  x = await makePair()
  for (let i = 0; i < 4; i++) {
    await x.p.append('usage', { i, obs: signDocument(seeded(70), 'observation', { i }) })
    await sync(x.p, x.c)
    await x.c.append('voucher', { i })
    await sync(x.c, x.p)
  }
  const proposal = await proposeCheckpoint(x.p, { USD: { paid: 4 } })
  await sync(x.p, x.c)
  await cosignCheckpoint(x.c, proposal)
  await sync(x.c, x.p)
  const chain = await ownChain(x.p)
  entryBytes = [...chain, ...(await ownChain(x.c))].map((b) => b.bytes)
  car = await exportPairLogBytes(x.p)
  const { signEntry } = await import('@tally/core')
  const fork = signEntry(x.provider, { ...chain[2]!.entry, body: { fork: 1 } })
  equivocation = encodeEquivocationProof(makeEquivocationProof(chain[2]!, fork))
  inclusion = encodeInclusionProof(await inclusionProof(x.p, chain[1]!.cid))
})

describe('fuzzed decoders raise only TallyErrors', () => {
  it('decodeEntry: random bytes (3000) and mutated entries (3000)', () => {
    fc.assert(
      fc.property(randomBytes, (b) => onlyTallyErrors(() => decodeEntryFast(b))),
      { numRuns: 3000 },
    )
    fc.assert(
      fc.property(fc.nat(), mutations, (i, ms) => {
        let b = entryBytes[i % entryBytes.length]!
        for (const m of ms) b = mutate(b, m)
        onlyTallyErrors(() => decodeEntryFast(b))
      }),
      { numRuns: 3000 },
    )
  })

  it('equivocation and inclusion proofs: decode and verify mutated proofs (1500 + 1500)', () => {
    for (const [bytes, decode, verify] of [
      [equivocation, decodeEquivocationProof, verifyEquivocationProof],
      [inclusion, decodeInclusionProof, verifyInclusion],
    ] as const) {
      onlyTallyErrors(() => (verify as (p: unknown) => unknown)((decode as (b: Uint8Array) => unknown)(bytes)))
      fc.assert(
        fc.property(mutations, fc.boolean(), fc.uint8Array({ maxLength: 200 }), (ms, useRandom, random) => {
          let b = useRandom ? random : bytes
          for (const m of ms) b = mutate(b, m)
          onlyTallyErrors(() => (verify as (p: unknown) => unknown)((decode as (b: Uint8Array) => unknown)(b)))
        }),
        { numRuns: 1500 },
      )
    }
  })

  it('verifyExport never throws on random (300) or mutated (600) CARs', async () => {
    await fc.assert(
      fc.asyncProperty(randomBytes, async (b) => {
        const r = await verifyExport(b)
        expect(r.ok).toBe(false)
      }),
      { numRuns: 300 },
    )
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        let b = car
        for (const m of ms) b = mutate(b, m)
        const r = await verifyExport(b)
        expect(typeof r.ok).toBe('boolean')
      }),
      { numRuns: 600 },
    )
  })

  it('importCar and the CAR scanner raise only TallyErrors on mutated CARs (400 + 300)', async () => {
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        let b = car
        for (const m of ms) b = mutate(b, m)
        await onlyTallyErrorsAsync(() => importCar(new MemoryStore(), b))
      }),
      { numRuns: 400 },
    )
    fc.assert(
      fc.property(mutations, fc.array(fc.nat(), { maxLength: 5 }), (ms, cuts) => {
        let b = car
        for (const m of ms) b = mutate(b, m)
        // Fed in arbitrary chunks, as from a file.
        const s = new CarScanner(
          () => undefined,
          () => undefined,
        )
        const points = [...new Set(cuts.map((c) => c % (b.byteLength + 1)))].sort((p, q) => p - q)
        let base = 0
        let pending = new Uint8Array(0)
        for (const end of [...points, b.byteLength]) {
          const chunk = new Uint8Array(pending.byteLength + Math.max(end - base - pending.byteLength, 0))
          chunk.set(pending)
          chunk.set(b.subarray(base + pending.byteLength, end), pending.byteLength)
          const final = end === b.byteLength
          const done = s.push(chunk, base, final)
          pending = chunk.slice(done)
          base += done
        }
      }),
      { numRuns: 300 },
    )
  })

  it('the scanner finds the same blocks and faults whether fed whole or in chunks (300)', () => {
    const run = (b: Uint8Array, cuts: number[]) => {
      const seen: string[] = []
      const s = new CarScanner(
        (blk) => seen.push(`block ${blk.sectionOffset} ${blk.dataLength} ${blk.intact}`),
        (p) => seen.push(`${p.code} ${p.offset}`),
      )
      let base = 0
      let pending = new Uint8Array(0)
      for (const end of [...cuts, b.byteLength]) {
        const fresh = b.subarray(base + pending.byteLength, Math.max(end, base + pending.byteLength))
        const chunk = new Uint8Array(pending.byteLength + fresh.byteLength)
        chunk.set(pending)
        chunk.set(fresh, pending.byteLength)
        const done = s.push(chunk, base, end === b.byteLength)
        pending = chunk.slice(done)
        base += done
      }
      return seen
    }
    fc.assert(
      fc.property(mutations, fc.array(fc.nat(), { maxLength: 8 }), (ms, cuts) => {
        let b = car
        for (const m of ms) b = mutate(b, m)
        const points = [...new Set(cuts.map((c) => c % (b.byteLength + 1)))].sort((p, q) => p - q)
        expect(run(b, points)).toEqual(run(b, []))
      }),
      { numRuns: 300 },
    )
  })

  it('ingest raises only TallyErrors for random and mutated entries (500)', async () => {
    const log = x.c
    await fc.assert(
      fc.asyncProperty(fc.nat(), mutations, fc.boolean(), async (i, ms, random) => {
        let b = random ? new Uint8Array(i % 300) : entryBytes[i % entryBytes.length]!
        for (const m of ms) b = mutate(b, m)
        await onlyTallyErrorsAsync(() => log.ingest([b]))
      }),
      { numRuns: 500 },
    )
  })
})

import { type EntryBlock, TallyError, decode, decodeEntry, encode, entrySignatureValid, signEntry } from '@tally/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeCanonicalEntry, decodeEntryFast, plainCanonicalEnd, signEntryFast } from '../src/entry-codec.ts'
import { fieldsArb, ipldValue, mutate, mutation } from './arbitraries.ts'
import { seeded, withBody } from './helpers.ts'

const id = seeded(3)

function outcome(f: () => EntryBlock): { ok: true; cid: string; entry: unknown } | { ok: false; name: string } {
  try {
    const b = f()
    return { ok: true, cid: b.cid.toString(), entry: b.entry }
  } catch (err) {
    expect(err).toBeInstanceOf(TallyError)
    return { ok: false, name: (err as Error).name }
  }
}

describe('fast entry codec', () => {
  it('signs byte-for-byte like core signEntry', () => {
    fc.assert(
      fc.property(fieldsArb(id.peerId), (fields) => {
        const fast = signEntryFast(id, fields)
        const core = signEntry(id, fields)
        expect(Buffer.from(fast.bytes).equals(Buffer.from(core.bytes))).toBe(true)
        expect(fast.cid.equals(core.cid)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('decodes exactly like core decodeEntry, on valid and mutated bytes', () => {
    fc.assert(
      fc.property(fieldsArb(id.peerId), fc.array(mutation, { maxLength: 3 }), (fields, muts) => {
        let bytes = signEntry(id, fields).bytes
        for (const m of muts) bytes = mutate(bytes, m)
        expect(outcome(() => decodeEntryFast(bytes))).toEqual(outcome(() => decodeEntry(bytes)))
      }),
      { numRuns: 2000 },
    )
  })

  it('vouches for canonical bytes only: whatever it decodes re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fieldsArb(id.peerId), fc.array(mutation, { maxLength: 3 }), (fields, muts) => {
        const signed = signEntry(id, fields).bytes
        let bytes = signed
        for (const m of muts) bytes = mutate(bytes, m)
        const fast = decodeCanonicalEntry(bytes)
        if (muts.length === 0) expect(fast).toBeDefined()
        if (fast === undefined) return
        const core = decodeEntry(bytes)
        expect(Buffer.from(encode(core.entry)).equals(Buffer.from(bytes))).toBe(true)
        expect(fast.cid.equals(core.cid)).toBe(true)
        expect(fast.entry).toEqual(core.entry)
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses a signed envelope whose body is decodable but not canonical', () => {
    const b = signEntry(id, { ...fieldsArbSample(), body: { a: 1, b: 2 } })
    const variants = [
      Uint8Array.of(0xa2, 0x61, 0x62, 0x02, 0x61, 0x61, 0x01), // keys out of order
      Uint8Array.of(0xa2, 0x61, 0x61, 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x61, 0x62, 0x02), // 1 as a float
    ]
    for (const body of variants) {
      const bytes = withBody(b.bytes, body)
      const loose = decodeEntryFast(bytes)
      expect(loose.entry.body).toEqual({ a: 1, b: 2 })
      // The signature covers the canonical re-encoding, so only the canonical check tells this variant apart.
      expect(entrySignatureValid(loose.entry)).toBe(true)
      expect(loose.cid.equals(b.cid)).toBe(false)
      expect(decodeCanonicalEntry(bytes)).toBeUndefined()
    }
    expect(decodeCanonicalEntry(b.bytes)?.cid.equals(b.cid)).toBe(true)
  })

  it('vouches for a body only when encoding its decoded value gives the same bytes', () => {
    const plain = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom(null, true, false),
        fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
        fc.string({ maxLength: 6, unit: 'binary-ascii' }),
        fc.uint8Array({ maxLength: 8 }),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string({ maxLength: 3, unit: 'binary-ascii' }), tie('value'), { maxKeys: 5 }),
      ),
    })).value
    fc.assert(
      fc.property(fc.oneof(plain, ipldValue), fc.array(mutation, { maxLength: 3 }), (value, muts) => {
        let bytes = encode(value)
        const whole = plainCanonicalEnd(bytes, 0, 0)
        expect(whole === bytes.byteLength || whole === -1).toBe(true)
        for (const m of muts) bytes = mutate(bytes, m)
        let decoded: unknown
        try {
          decoded = decode(bytes)
        } catch {
          return
        }
        if (plainCanonicalEnd(bytes, 0, 0) === bytes.byteLength) expect(Buffer.from(encode(decoded)).equals(Buffer.from(bytes))).toBe(true)
      }),
      { numRuns: 3000 },
    )
    const h = (...b: number[]) => Uint8Array.of(...b)
    expect(plainCanonicalEnd(encode({ a: 1, bb: [true, null, -5, 'x', h(1)] }), 0, 0)).toBeGreaterThan(0)
    for (const bad of [
      h(0xa2, 0x61, 0x62, 0x02, 0x61, 0x61, 0x01), // keys out of order
      h(0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02), // duplicate key
      h(0xa2, 0x62, 0x61, 0x61, 0x01, 0x61, 0x62, 0x02), // longer key first
      h(0xa1, 0x69, ...new TextEncoder().encode('__proto__'), 0x01),
      h(0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0), // 1 as a float
      h(0x18, 0x05), // non-minimal head
      h(0x9f, 0x01, 0xff), // indefinite length
    ]) {
      expect(plainCanonicalEnd(bad, 0, 0)).toBe(-1)
    }
  })
})

function fieldsArbSample() {
  return fc.sample(fieldsArb(id.peerId), { numRuns: 1, seed: 7 })[0]!
}

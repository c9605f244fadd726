import { type EntryBlock, TallyError, decodeEntry, signEntry } from '@tally/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeEntryFast, signEntryFast } from '../src/entry-codec.ts'
import { fieldsArb, mutate, mutation } from './arbitraries.ts'
import { seeded } from './helpers.ts'

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
})

import { CID, ENTRY_KINDS, type EntryFields, toBlock } from '@tally/core'
import fc from 'fast-check'

const key = fc.string({ maxLength: 10 }).filter((k) => k !== '__proto__')

export const cidArb: fc.Arbitrary<CID> = fc.integer().map((n) => toBlock({ n }).cid)

/** Values of the IPLD data model (no floats: the project uses integers for money and time). */
export const ipldValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.string({ maxLength: 20 }),
    fc.uint8Array({ maxLength: 40 }),
    cidArb,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
})).value

export function fieldsArb(author: string): fc.Arbitrary<EntryFields> {
  return fc
    .record({
      pair: cidArb,
      seq: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
      prev: cidArb,
      seen: fc.option(cidArb, { nil: null }),
      time: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
      kind: fc.constantFrom(...ENTRY_KINDS),
      body: ipldValue,
    })
    .map((r) => ({ v: 1 as const, author, ...r, prev: r.seq === 1 ? null : r.prev }))
}

/** A mutation of bytes: flip, set, truncate, insert or delete at a position. */
export const mutation = fc.record({
  op: fc.constantFrom('flip', 'set', 'truncate', 'insert', 'delete'),
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
  bit: fc.integer({ min: 0, max: 7 }),
})

export function mutate(bytes: Uint8Array, m: { op: string; at: number; value: number; bit: number }): Uint8Array {
  if (bytes.byteLength === 0) return Uint8Array.of(m.value)
  const at = m.at % bytes.byteLength
  switch (m.op) {
    case 'flip': {
      const out = bytes.slice()
      out[at] = out[at]! ^ (1 << m.bit)
      return out
    }
    case 'set': {
      const out = bytes.slice()
      out[at] = m.value
      return out
    }
    case 'truncate':
      return bytes.slice(0, at)
    case 'insert': {
      const out = new Uint8Array(bytes.byteLength + 1)
      out.set(bytes.subarray(0, at), 0)
      out[at] = m.value
      out.set(bytes.subarray(at), at + 1)
      return out
    }
    default: {
      const out = new Uint8Array(bytes.byteLength - 1)
      out.set(bytes.subarray(0, at), 0)
      out.set(bytes.subarray(at + 1), at)
      return out
    }
  }
}

export { CID }

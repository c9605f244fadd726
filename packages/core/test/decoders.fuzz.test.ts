import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeCredential, decodeEntry, decode, Identity, issueCredential, signEntry, TallyError, toBlock, verifyDocument, schema } from '../src/index.ts'

const id = Identity.fromSeed(new Uint8Array(32).fill(7))
const pair = toBlock({ provider: id.peerId, consumer: id.peerId, type: 'tally-pair' }).cid
const validEntry = signEntry(id, {
  v: 1,
  pair,
  author: id.peerId,
  seq: 1,
  prev: null,
  seen: null,
  time: 1_700_000_000_000,
  kind: 'note',
  body: { text: 'hello' },
}).bytes
const validCredential = toBlock(
  issueCredential(id, { subject: id.peerId, roles: ['provider'], jurisdiction: 'DE', scope: {}, notBefore: 0, notAfter: 2_000_000_000_000 }),
).bytes

/** Only the project's typed errors may escape a decoder. */
function onlyTypedErrors(fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof TallyError)) throw new Error(`untyped error escaped: ${String(err)}`, { cause: err })
  }
}

function mutate(base: Uint8Array) {
  return fc.array(fc.tuple(fc.nat({ max: base.byteLength - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
    const out = base.slice()
    for (const [pos, byte] of edits) out[pos] = byte
    return out
  })
}

const runs = 2500

describe('decoders raise only typed errors', () => {
  it('decodeEntry on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => onlyTypedErrors(() => decodeEntry(b))),
      { numRuns: runs },
    )
  })
  it('decodeEntry on mutated valid entries', () => {
    fc.assert(
      fc.property(mutate(validEntry), (b) => onlyTypedErrors(() => decodeEntry(b))),
      { numRuns: runs },
    )
  })
  it('credential decoder on mutated credentials', () => {
    fc.assert(
      fc.property(mutate(validCredential), (b) => onlyTypedErrors(() => decodeCredential(decode(b)))),
      { numRuns: runs },
    )
  })
  it('document decoder on random values', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => onlyTypedErrors(() => verifyDocument(v, undefined, schema.z.unknown()))),
      { numRuns: runs },
    )
  })
  it('oversized input is refused before decoding', () => {
    expect(() => decode(new Uint8Array(2 * 1024 * 1024))).toThrow(TallyError)
  })
})

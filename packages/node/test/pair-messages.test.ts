import { decode, encode, Identity, toBlock } from '@tally/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PAIR_MAX_BATCH_ENTRIES, PAIR_MAX_WINDOW_FRAMES, pairMessageSchema } from '../src/index.ts'

const a = Identity.generate().peerId
const b = Identity.generate().peerId
const cid = toBlock({ x: 1 }).cid
const hello = { type: 'hello', v: 1, pair: { provider: a, consumer: b }, heads: { provider: { seq: 3, cid }, consumer: null }, window: 8 }

describe('/tally/pair/1.0.0 messages', () => {
  it('round-trips every message type through DAG-CBOR', () => {
    const messages = [
      hello,
      { type: 'request', author: a, fromSeq: 4, toSeq: null },
      { type: 'request', author: a, fromSeq: 4, toSeq: 9 },
      { type: 'entries', blocks: [new Uint8Array([1, 2]), new Uint8Array([3])], head: 9 },
      { type: 'ack', author: a, seq: 9, cid },
      { type: 'heads', heads: { provider: null, consumer: { seq: 1, cid } } },
      { type: 'error', code: 'SignatureError', message: 'bad' },
    ]
    for (const m of messages) expect(pairMessageSchema.parse(decode(encode(m)))).toEqual(m)
  })

  it('refuses extra fields, bad bounds and unknown types', () => {
    const bad = [
      { ...hello, extra: 1 },
      { ...hello, window: 0 },
      { ...hello, window: PAIR_MAX_WINDOW_FRAMES + 1 },
      { ...hello, pair: { provider: a, consumer: 'not-a-peer' } },
      { type: 'request', author: a, fromSeq: 0, toSeq: null },
      { type: 'entries', blocks: [], head: 1 },
      { type: 'entries', blocks: Array.from({ length: PAIR_MAX_BATCH_ENTRIES + 1 }, () => new Uint8Array(1)), head: 1 },
      { type: 'entries', blocks: ['text'], head: 1 },
      { type: 'ack', author: a, seq: 1, cid: 'bafy' },
      { type: 'error', code: 'x'.repeat(65), message: '' },
      { type: 'gimme' },
    ]
    for (const m of bad) expect(pairMessageSchema.safeParse(decode(encode(m))).success).toBe(false)
  })

  it('never throws on arbitrary decoded values, only reports failure', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        const r = pairMessageSchema.safeParse(v)
        expect(typeof r.success).toBe('boolean')
      }),
    )
  })
})

/**
 * /tally/pair/1.0.0 messages: one DAG-CBOR map per frame, told apart by
 * `type`. Strict schemas: an unknown field or type is refused (typed
 * errors via FrameStream.decodeMessage). docs/PROTOCOL.md describes each.
 */
import { type CID, type PeerIdString, schema } from '@tally/core'
import type { PairDescriptor, PairHeads } from '@tally/lineage'
import { pairDescriptorSchema } from '@tally/lineage'
import { z } from 'zod'
import { PAIR_MAX_BATCH_ENTRIES, PAIR_MAX_ERROR_MESSAGE, PAIR_MAX_WINDOW_FRAMES } from './pair-constants.ts'

const seq = schema.uint.min(1)
const head = z.strictObject({ seq, cid: schema.cid })
const heads = z.strictObject({ provider: head.nullable(), consumer: head.nullable() })

/** First frame each way: who we are in which pair, what we hold of both chains, how many entries frames we take unacknowledged. */
export const helloSchema = z.strictObject({
  type: z.literal('hello'),
  v: schema.uint,
  pair: pairDescriptorSchema,
  heads,
  window: schema.uint.min(1).max(PAIR_MAX_WINDOW_FRAMES),
})
/** Ask for the receiver's chain from `fromSeq` to `toSeq` (null: to its head, then live as it grows). */
export const requestSchema = z.strictObject({ type: z.literal('request'), author: schema.peerId, fromSeq: seq, toSeq: seq.nullable() })
/** Consecutive entries of the sender's own chain, oldest first; `head` is the sender's head seq when sent. */
export const entriesSchema = z.strictObject({
  type: z.literal('entries'),
  blocks: z.array(schema.bytes).min(1).max(PAIR_MAX_BATCH_ENTRIES),
  head: seq,
})
/** The last entry of one `entries` frame is durable at the receiver (sent only after its ingest resolved). */
export const ackSchema = z.strictObject({ type: z.literal('ack'), author: schema.peerId, seq, cid: schema.cid })
/** What the sender holds of both chains now (keepalive and lag). */
export const headsSchema = z.strictObject({ type: z.literal('heads'), heads })
/** Why the sender is closing the stream. `code` is an error class name. */
export const errorSchema = z.strictObject({
  type: z.literal('error'),
  code: z.string().max(64),
  message: z.string().max(PAIR_MAX_ERROR_MESSAGE),
})

export const pairMessageSchema = z.discriminatedUnion('type', [helloSchema, requestSchema, entriesSchema, ackSchema, headsSchema, errorSchema])

export type HelloMessage = z.infer<typeof helloSchema>
export type RequestMessage = z.infer<typeof requestSchema>
export type EntriesMessage = z.infer<typeof entriesSchema>
export type AckMessage = z.infer<typeof ackSchema>
export type HeadsMessage = z.infer<typeof headsSchema>
export type ErrorMessage = z.infer<typeof errorSchema>
export type PairMessage = z.infer<typeof pairMessageSchema>

/** Heads as sent on the wire (no author field: the pair names both). */
export type WireHeads = HeadsMessage['heads']

export function wireHeads(h: PairHeads): WireHeads {
  const one = (x: PairHeads['provider']) => (x === null ? null : { seq: x.seq, cid: x.cid })
  return { provider: one(h.provider), consumer: one(h.consumer) }
}

export function helloMessage(pair: PairDescriptor, h: PairHeads, window: number, v: number): HelloMessage {
  return { type: 'hello', v, pair: { provider: pair.provider, consumer: pair.consumer }, heads: wireHeads(h), window }
}

export function ackMessage(author: PeerIdString, s: number, cid: CID): AckMessage {
  return { type: 'ack', author, seq: s, cid }
}

export function errorMessage(err: unknown): ErrorMessage {
  const e = err instanceof Error ? err : new Error(String(err))
  return { type: 'error', code: e.name.slice(0, 64), message: e.message.slice(0, PAIR_MAX_ERROR_MESSAGE) }
}

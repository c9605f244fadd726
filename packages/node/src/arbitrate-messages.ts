/**
 * /tally/arbitrate/1.0.0 messages: one DAG-CBOR map per frame, told apart
 * by `type`. Strict schemas: an unknown field or type is refused (typed
 * errors via FrameStream.decodeMessage). docs/PROTOCOL.md describes each.
 *
 * client → server: `case` (header), then `chunk` frames carrying the record
 * server → client: `ready` (or an answer refusing at once), `credit`, then one answer:
 *                  `ruling` | `evidence-request` | `error`
 */
import { type CID, type PeerIdString, type SignedDocument, schema, toBlock } from '@tally/core'
import { type PairDescriptor, pairDescriptorSchema, pairIdOf } from '@tally/lineage'
import { z } from 'zod'
import { ARBITRATE_CHUNK_BYTES, ARBITRATE_MAX_ERROR_MESSAGE, ARBITRATE_WINDOW_CHUNKS } from './arbitrate-constants.ts'

/** Largest window a server may grant (bounds what a client keeps in flight). */
const MAX_WINDOW = 8 * ARBITRATE_WINDOW_CHUNKS
const caseId = z.string().min(1).max(128)

/** First frame from the client: which dispute, at which stage, and how many record bytes follow. */
export const caseHeaderSchema = z.strictObject({
  type: z.literal('case'),
  v: schema.uint,
  pair: pairDescriptorSchema,
  deal: schema.cid,
  dispute: schema.cid,
  /** True when asking the contract's appeal arbiter to decide an appealed dispute. */
  appeal: z.boolean(),
  /** Bytes of the pair-log export (CARv1) that the `chunk` frames carry. */
  size: schema.uint.min(1),
})
/** Part of the record, in order; every chunk but the last carries exactly `ready.chunkBytes` bytes. */
export const chunkSchema = z.strictObject({ type: z.literal('chunk'), data: schema.bytes })
export const clientMessageSchema = z.discriminatedUnion('type', [caseHeaderSchema, chunkSchema])

/** The server takes the case: send the record, at most `window` chunks ahead of credit. */
export const readySchema = z.strictObject({
  type: z.literal('ready'),
  window: schema.uint.min(1).max(MAX_WINDOW),
  chunkBytes: schema.uint.min(1).max(ARBITRATE_CHUNK_BYTES),
})
/** The server consumed `chunks` more chunks: the client may send that many more. */
export const creditSchema = z.strictObject({ type: z.literal('credit'), chunks: schema.uint.min(1).max(MAX_WINDOW) })
/** The arbiter's signed ruling on the dispute. */
export const rulingAnswerSchema = z.strictObject({ type: z.literal('ruling'), caseId, ruling: z.unknown() })
/** The arbiter asks a party for more evidence: relay `request` into the pair log, let the party answer, resubmit. */
export const evidenceRequestAnswerSchema = z.strictObject({ type: z.literal('evidence-request'), caseId, request: z.unknown() })
/** The case is refused; `code` is one of ARBITRATE_ERROR_CODES. */
export const errorAnswerSchema = z.strictObject({
  type: z.literal('error'),
  code: z.string().min(1).max(64),
  message: z.string().max(ARBITRATE_MAX_ERROR_MESSAGE),
  caseId: caseId.optional(),
})
export const serverMessageSchema = z.discriminatedUnion('type', [readySchema, creditSchema, rulingAnswerSchema, evidenceRequestAnswerSchema, errorAnswerSchema])

export type CaseHeader = z.infer<typeof caseHeaderSchema>
export type ChunkMessage = z.infer<typeof chunkSchema>
export type ReadyMessage = z.infer<typeof readySchema>
export type CreditMessage = z.infer<typeof creditSchema>
export type ServerMessage = z.infer<typeof serverMessageSchema>

/**
 * Why an arbiter refuses a case. Protocol-level: `bad-request`,
 * `too-large`, `busy`, `rate-limited`, `internal`. Decision-level
 * (the arbiter's judgement of the record): `not-a-party`, `invalid-record`,
 * `wrong-pair`, `unknown-deal`, `unknown-dispute`, `not-arbiter`,
 * `not-appealed`, `already-ruled`, `final`, `evidence-pending`.
 */
export const ARBITRATE_ERROR_CODES = [
  'bad-request',
  'too-large',
  'busy',
  'rate-limited',
  'internal',
  'not-a-party',
  'invalid-record',
  'wrong-pair',
  'unknown-deal',
  'unknown-dispute',
  'not-arbiter',
  'not-appealed',
  'already-ruled',
  'final',
  'evidence-pending',
] as const
export type ArbitrateErrorCode = (typeof ARBITRATE_ERROR_CODES)[number]

/** What a party submits: the dispute, its stage, and the pair log's export. */
export interface CaseRequest {
  pair: PairDescriptor
  deal: CID
  dispute: CID
  appeal: boolean
  /** CARv1 export of the pair log (exportPairLogBytes), holding the dispute. */
  record: Uint8Array
}

/** What the arbiter answers, as the server sends it (documents not yet checked by the receiver). */
export type CaseAnswer =
  | { type: 'ruling'; caseId: string; ruling: SignedDocument }
  | { type: 'evidence-request'; caseId: string; request: SignedDocument }
  | { type: 'error'; code: ArbitrateErrorCode; message: string; caseId?: string }

/**
 * The case id: CID of dagcbor({type: 'tally-case', pair: pairId, deal,
 * dispute, appeal}). One per dispute and stage, so a resubmission (after
 * an evidence answer) continues the same case on every arbiter.
 */
export function caseIdOf(pair: PairDescriptor, deal: CID, dispute: CID, appeal: boolean): string {
  return toBlock({ type: 'tally-case', pair: pairIdOf(pair), deal, dispute, appeal }).cid.toString()
}

export function caseHeader(req: Omit<CaseRequest, 'record'> & { size: number }, v: number): CaseHeader {
  return {
    type: 'case',
    v,
    pair: { provider: req.pair.provider, consumer: req.pair.consumer },
    deal: req.deal,
    dispute: req.dispute,
    appeal: req.appeal,
    size: req.size,
  }
}

export function errorAnswer(code: ArbitrateErrorCode, message: string, id?: string): CaseAnswer {
  return { type: 'error', code, message: message.slice(0, ARBITRATE_MAX_ERROR_MESSAGE), ...(id === undefined ? {} : { caseId: id }) }
}

/** Is `peer` one of the pair? */
export function isPartyOf(pair: PairDescriptor, peer: PeerIdString): boolean {
  return pair.provider === peer || pair.consumer === peer
}

import { z } from 'zod'
import { schema } from '@tally/core'
import { epochList } from '../epochs.ts'

/** A party's request to adjudicate epochs (disputes also open by themselves on a disputed verdict). */
export const disputeBodySchema = z.strictObject({ deal: schema.cid, epochs: epochList, reason: schema.text })
/** The arbiter's signed evidence request, relayed into the log by a party. */
export const evidenceRequestEntryBodySchema = z.strictObject({ deal: schema.cid, request: z.unknown() })
/** The requested party's answer, naming the log entries it offers. */
export const evidenceAnswerBodySchema = z.strictObject({
  deal: schema.cid,
  request: schema.cid,
  answer: schema.text,
  refs: z.array(schema.cid).max(256),
})
/** The arbiter's signed ruling, relayed into the log by a party. */
export const rulingEntryBodySchema = z.strictObject({ deal: schema.cid, ruling: z.unknown() })
/** A party appeals a first-instance ruling (names its entry) within the contract's appeal window. */
export const appealBodySchema = z.strictObject({ deal: schema.cid, ruling: schema.cid, reason: schema.text })

export type DisputeBody = z.infer<typeof disputeBodySchema>
export type EvidenceAnswerBody = z.infer<typeof evidenceAnswerBodySchema>
export type AppealBody = z.infer<typeof appealBodySchema>

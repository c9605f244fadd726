import { z } from 'zod'
import { schema } from '@tally/core'

export const TIMEOUT_DUTIES = ['acceptance', 'usage', 'voucher', 'ack', 'evidence-answer'] as const
export type TimeoutDuty = (typeof TIMEOUT_DUTIES)[number]

/** A party's signed completion certificate (see certificate.ts). */
export const certificateEntryBodySchema = z.strictObject({ deal: schema.cid, certificate: z.unknown() })

/**
 * A claim that the counterparty missed a deadline. `ref` names the entry
 * that started the clock (offer, voucher, authority, evidence request);
 * `epoch` the epoch whose usage is missing.
 */
export const timeoutBodySchema = z.strictObject({
  deal: schema.cid,
  duty: z.enum(TIMEOUT_DUTIES),
  ref: schema.cid.nullable(),
  epoch: schema.uint.nullable(),
})

/** Ends service on a deal; settlement of the epochs served continues. */
export const closeBodySchema = z.strictObject({ deal: schema.cid, reason: z.enum(['completed', 'terminated']), note: schema.shortText })

export type TimeoutBody = z.infer<typeof timeoutBodySchema>
export type CloseBody = z.infer<typeof closeBodySchema>

import { z } from 'zod'
import { schema } from '@tally/core'
import { RULE_VERSION } from '../rule.ts'
import { VERDICTS } from '../verdict.ts'

export const MAX_EVIDENCE_PER_EVALUATION = 1024
export const MAX_AUTHORITIES_PER_VOUCHER = 4096
export const MAX_RAIL_DETAIL_BYTES = 1024

/** The rule applied to exactly the evidence entries listed, with the verdict and amount it gives. */
export const evaluationBodySchema = z.strictObject({
  deal: schema.cid,
  epoch: schema.uint,
  rule: z.literal(RULE_VERSION),
  evidence: z.array(schema.cid).max(MAX_EVIDENCE_PER_EVALUATION),
  verdict: z.enum(VERDICTS),
  amount: schema.money,
})

/** Consumer's cumulative release for the deal, naming the evaluations and rulings newly authorising it. */
export const voucherBodySchema = z.strictObject({
  deal: schema.cid,
  amount: schema.money,
  authorisedBy: z.array(schema.cid).max(MAX_AUTHORITIES_PER_VOUCHER),
})

/** Provider acknowledges one voucher. */
export const ackBodySchema = z.strictObject({ deal: schema.cid, voucher: schema.cid, amount: schema.money })

const encoder = new TextEncoder()

/** What handing a voucher's release to the payment rail gave. */
export const railResultBodySchema = z.strictObject({
  deal: schema.cid,
  voucher: schema.cid,
  rail: z.string().min(1).max(32),
  status: z.enum(['ok', 'failed']),
  detail: z.string().refine((s) => encoder.encode(s).byteLength <= MAX_RAIL_DETAIL_BYTES, `detail must be at most ${MAX_RAIL_DETAIL_BYTES} bytes`),
  /** The rail's own reference (transaction id, receipt number); null when it gave none. */
  reference: z.string().max(256).nullable(),
})

export type EvaluationBody = z.infer<typeof evaluationBodySchema>
export type VoucherBody = z.infer<typeof voucherBodySchema>
export type AckBody = z.infer<typeof ackBodySchema>
export type RailResultBody = z.infer<typeof railResultBodySchema>

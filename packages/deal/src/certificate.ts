import { z } from 'zod'
import { type Identity, parseWith, type SignedDocument, schema, signDocument, verifyDocument } from '@tally/core'

export const CERTIFICATE_TYPE = 'certificate'

export const epochCountsSchema = z.strictObject({
  total: schema.uint,
  performed: schema.uint,
  notPerformed: schema.uint,
  disputed: schema.uint,
  insufficient: schema.uint,
})
export type EpochCounts = z.infer<typeof epochCountsSchema>

/** What a completion certificate states; the reducer recomputes all of it from the record. */
export const certificateSummarySchema = z.strictObject({
  pair: schema.cid,
  deal: schema.cid,
  epochs: epochCountsSchema,
  authorised: schema.money,
  paid: schema.money,
  collateralBonded: schema.money,
  collateralAwarded: schema.money,
  /** Entry CIDs of the final rulings, in the order they entered the log. */
  rulings: z.array(schema.cid).max(4096),
})
export type CertificateSummary = z.infer<typeof certificateSummarySchema>

/**
 * A party's completion certificate. `heads` are the log heads the signer
 * had when it certified: its own previous entry and the counterparty entry
 * it had seen (or an earlier one).
 */
export const certificateBodySchema = z.strictObject({
  ...certificateSummarySchema.shape,
  heads: z.strictObject({ provider: schema.cid.nullable(), consumer: schema.cid.nullable() }),
  issuedAt: schema.timeMs,
})
export type CertificateBody = z.infer<typeof certificateBodySchema>
export type Certificate = SignedDocument<CertificateBody>

export function signCertificate(party: Identity, body: CertificateBody): Certificate {
  return signDocument(party, CERTIFICATE_TYPE, parseWith(certificateBodySchema, body, 'certificate'))
}

export function decodeCertificate(value: unknown): Certificate {
  return verifyDocument(value, CERTIFICATE_TYPE, certificateBodySchema)
}

import { z } from 'zod'
import { type Identity, parseWith, type SignedDocument, schema, signDocument, verifyDocument } from '@tally/core'
import { epochList } from './epochs.ts'

export const RULING_TYPE = 'ruling'
export const EVIDENCE_REQUEST_TYPE = 'evidence-request'
export const MAX_RELIED = 1024

/**
 * An arbiter's signed ruling on one dispute. `appealOf` is null for a
 * first-instance ruling and names the ruling entry appealed for the appeal
 * arbiter's ruling, which supersedes it.
 */
export const rulingBodySchema = z.strictObject({
  pair: schema.cid,
  deal: schema.cid,
  dispute: schema.cid,
  epochs: epochList,
  award: z.strictObject({
    /** What the provider is owed for the disputed epochs, in the contract's price asset. */
    toProvider: schema.money,
    /** Bonded collateral the provider forfeits to the consumer, in the collateral's asset. */
    collateralToConsumer: schema.money,
  }),
  reasons: schema.text,
  /** CIDs of the pair-log entries the arbiter relied on. */
  relied: z.array(schema.cid).max(MAX_RELIED),
  appealOf: schema.cid.nullable(),
  issuedAt: schema.timeMs,
})
export type RulingBody = z.infer<typeof rulingBodySchema>
export type Ruling = SignedDocument<RulingBody>

export function signRuling(arbiter: Identity, body: RulingBody): Ruling {
  return signDocument(arbiter, RULING_TYPE, parseWith(rulingBodySchema, body, 'ruling'))
}

export function decodeRuling(value: unknown): Ruling {
  return verifyDocument(value, RULING_TYPE, rulingBodySchema)
}

/** An arbiter's signed request for more evidence from one party, relayed into the log by a party. */
export const evidenceRequestBodySchema = z.strictObject({
  pair: schema.cid,
  deal: schema.cid,
  dispute: schema.cid,
  party: z.enum(['provider', 'consumer']),
  question: schema.text,
  /** Answer by this time (ms); after it the other party may record a timeout. */
  deadline: schema.timeMs,
  issuedAt: schema.timeMs,
})
export type EvidenceRequestBody = z.infer<typeof evidenceRequestBodySchema>
export type EvidenceRequest = SignedDocument<EvidenceRequestBody>

export function signEvidenceRequest(arbiter: Identity, body: EvidenceRequestBody): EvidenceRequest {
  return signDocument(arbiter, EVIDENCE_REQUEST_TYPE, parseWith(evidenceRequestBodySchema, body, 'evidence request'))
}

export function decodeEvidenceRequest(value: unknown): EvidenceRequest {
  return verifyDocument(value, EVIDENCE_REQUEST_TYPE, evidenceRequestBodySchema)
}

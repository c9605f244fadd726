import { z } from 'zod'
import { schema } from '@tally/core'
import { contractTermsSchema } from '../contract.ts'

/** Consumer's offer; the deal's id is the CID of this entry. */
export const proposalBodySchema = z.strictObject({ terms: contractTermsSchema })
/** Changed terms answering the latest offer (`offer`), by the party that did not make it. */
export const counterBodySchema = z.strictObject({ deal: schema.cid, offer: schema.cid, terms: contractTermsSchema })
/** Agreement to exactly the latest offer; its terms become the contract. */
export const acceptanceBodySchema = z.strictObject({ deal: schema.cid, offer: schema.cid })
/** Ends the negotiation without a contract. */
export const rejectBodySchema = z.strictObject({ deal: schema.cid, offer: schema.cid, reason: schema.shortText })

export type ProposalBody = z.infer<typeof proposalBodySchema>
export type CounterBody = z.infer<typeof counterBodySchema>
export type AcceptanceBody = z.infer<typeof acceptanceBodySchema>
export type RejectBody = z.infer<typeof rejectBodySchema>

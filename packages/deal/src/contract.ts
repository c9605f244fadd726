import { z } from 'zod'
import { parseWith, schema } from '@tally/core'
import { hardwareClass } from './attestation.ts'
import { InvalidTermsError } from './errors.ts'
import { bp, timesCount } from './money.ts'
import { evidenceRuleSchema, ruleProblem } from './rule.ts'

/** Payment rails a contract can name (see rail.ts). */
export const RAILS = ['ledger', 'command', 'http'] as const
export type RailName = (typeof RAILS)[number]

/** Upper bound on a deal's epochs, open-ended or not. */
export const MAX_EPOCHS = 10_000_000
/** Longest epoch a contract may set: 31 days. */
export const MAX_EPOCH_MS = 31 * 24 * 3600 * 1000
/** Longest span epochMs × maxEpochs may cover (100 years), so epoch times stay exact integers. */
export const MAX_DEAL_SPAN_MS = 100 * 366 * 24 * 3600 * 1000

/** What a pair is: the two parties' peer ids (structurally @tally/lineage's PairDescriptor). */
export interface PairDescriptor {
  provider: string
  consumer: string
}
export type PartyRole = 'provider' | 'consumer'

/**
 * Contract terms, carried in a proposal or counter-offer. The accepted
 * offer's terms are the contract. Money in minor units, time in ms,
 * fractions in basis points.
 */
export const contractTermsSchema = z.strictObject({
  /** Makes otherwise identical proposals distinct (their CID is the deal id). */
  nonce: z.string().min(1).max(64),
  resources: z.strictObject({ class: hardwareClass, count: schema.uint.min(1).max(4096) }),
  /** Where the provider serves from (ISO 3166). */
  jurisdiction: schema.jurisdiction,
  /** Price of one epoch. */
  price: schema.money,
  epochMs: schema.uint.min(1).max(MAX_EPOCH_MS),
  /** Fixed number of epochs, or null for open-ended (up to maxEpochs). */
  epochs: schema.uint.min(1).nullable(),
  maxEpochs: schema.uint.min(1).max(MAX_EPOCHS),
  /** The provider's promise, stated for people; the rule's thresholds decide payment. */
  sla: z.strictObject({ availabilityBp: bp, latencyP95Us: schema.uint.nullable() }),
  rule: evidenceRuleSchema,
  arbiter: schema.peerId,
  appealArbiter: schema.peerId.nullable(),
  insurer: schema.peerId.nullable(),
  /** What the provider must bond before serving; a ruling may award it to the consumer. */
  collateral: schema.money,
  rail: z.enum(RAILS),
  timeouts: z.strictObject({
    /** How long a party has to answer what it owes (ack, voucher, usage, acceptance). */
    answerMs: schema.uint.min(1),
    /** How long after an epoch ends verdicts that rest on missing evidence must wait. */
    evidenceGraceMs: schema.uint,
    /** How long after a first-instance ruling either party may appeal. */
    appealMs: schema.uint.min(1),
  }),
})
export type ContractTerms = z.infer<typeof contractTermsSchema>

/**
 * Parse terms and check what the schema cannot: epochs within the max,
 * the total price representable, a sound rule, no party acting as its own
 * arbiter or monitor. Throws `SchemaError` or `InvalidTermsError`.
 */
export function checkTerms(value: unknown, pair?: PairDescriptor): ContractTerms {
  const t = parseWith(contractTermsSchema, value, 'contract terms')
  const fail = (message: string): never => {
    throw new InvalidTermsError(message)
  }
  if (t.epochs !== null && t.epochs > t.maxEpochs) fail(`epochs ${t.epochs} exceeds maxEpochs ${t.maxEpochs}`)
  if (timesCount(t.price.amount, t.maxEpochs) === null) fail('price × maxEpochs exceeds the largest safe integer')
  if (t.epochMs * t.maxEpochs > MAX_DEAL_SPAN_MS) fail('epochMs × maxEpochs exceeds 100 years')
  const rp = ruleProblem(t.rule)
  if (rp !== null) fail(rp)
  if (t.appealArbiter !== null && t.appealArbiter === t.arbiter) fail('the appeal arbiter must differ from the arbiter')
  if (pair !== undefined) {
    const parties = [pair.provider, pair.consumer]
    if (parties.includes(t.arbiter) || (t.appealArbiter !== null && parties.includes(t.appealArbiter))) fail('a party cannot arbitrate its own deal')
    if (t.rule.monitors.some((m) => parties.includes(m.peer))) fail('a party cannot be a monitor of its own deal')
  }
  return t
}

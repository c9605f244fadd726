import { type CID, type EntryKind, parseWith, UnknownKindError } from '@tally/core'
import { type Attestation, decodeAttestation } from '../attestation.ts'
import { type Certificate, decodeCertificate } from '../certificate.ts'
import { decodeObservation, type Observation } from '../observation.ts'
import { decodeEvidenceRequest, decodeRuling, type EvidenceRequest, type Ruling } from '../ruling.ts'
import { type AppealBody, appealBodySchema, type DisputeBody, disputeBodySchema, type EvidenceAnswerBody, evidenceAnswerBodySchema } from './disputes.ts'
import { evidenceRequestEntryBodySchema, rulingEntryBodySchema } from './disputes.ts'
import { type CloseBody, certificateEntryBodySchema, closeBodySchema, type TimeoutBody, timeoutBodySchema } from './ending.ts'
import {
  attestationEntryBodySchema,
  type CollateralBody,
  collateralBodySchema,
  type ManifestBody,
  manifestBodySchema,
  observationEntryBodySchema,
} from './execution.ts'
import { type UsageBody, usageBodySchema } from './execution.ts'
import { type AcceptanceBody, acceptanceBodySchema, type CounterBody, counterBodySchema, type ProposalBody, proposalBodySchema } from './negotiation.ts'
import { type RejectBody, rejectBodySchema } from './negotiation.ts'
import { type AckBody, ackBodySchema, type EvaluationBody, evaluationBodySchema, type RailResultBody, railResultBodySchema } from './settlement.ts'
import { type VoucherBody, voucherBodySchema } from './settlement.ts'

export * from './disputes.ts'
export * from './ending.ts'
export * from './execution.ts'
export * from './negotiation.ts'
export * from './settlement.ts'

/** Every entry kind whose body this package defines. */
export const DEAL_KINDS = [
  'proposal',
  'counter',
  'acceptance',
  'reject',
  'collateral',
  'attestation',
  'manifest',
  'usage',
  'observation',
  'evaluation',
  'voucher',
  'ack',
  'rail-result',
  'dispute',
  'evidence-request',
  'evidence-answer',
  'ruling',
  'appeal',
  'certificate',
  'timeout',
  'close',
] as const satisfies readonly EntryKind[]
export type DealKind = (typeof DEAL_KINDS)[number]

/** Kinds the deal reducer passes through: @tally/lineage's own, and free-text notes. */
export const PASS_THROUGH_KINDS = ['open', 'checkpoint-proposal', 'checkpoint', 'note'] as const satisfies readonly EntryKind[]

/** A decoded deal body, tagged with its kind; embedded documents are signature-checked. */
export type DealBody =
  | { kind: 'proposal'; body: ProposalBody }
  | { kind: 'counter'; body: CounterBody }
  | { kind: 'acceptance'; body: AcceptanceBody }
  | { kind: 'reject'; body: RejectBody }
  | { kind: 'collateral'; body: CollateralBody }
  | { kind: 'attestation'; body: { deal: CID; attestation: Attestation } }
  | { kind: 'manifest'; body: ManifestBody }
  | { kind: 'usage'; body: UsageBody }
  | { kind: 'observation'; body: { deal: CID; observation: Observation } }
  | { kind: 'evaluation'; body: EvaluationBody }
  | { kind: 'voucher'; body: VoucherBody }
  | { kind: 'ack'; body: AckBody }
  | { kind: 'rail-result'; body: RailResultBody }
  | { kind: 'dispute'; body: DisputeBody }
  | { kind: 'evidence-request'; body: { deal: CID; request: EvidenceRequest } }
  | { kind: 'evidence-answer'; body: EvidenceAnswerBody }
  | { kind: 'ruling'; body: { deal: CID; ruling: Ruling } }
  | { kind: 'appeal'; body: AppealBody }
  | { kind: 'certificate'; body: { deal: CID; certificate: Certificate } }
  | { kind: 'timeout'; body: TimeoutBody }
  | { kind: 'close'; body: CloseBody }

const DEAL_KIND_SET: ReadonlySet<string> = new Set(DEAL_KINDS)

export function isDealKind(kind: string): kind is DealKind {
  return DEAL_KIND_SET.has(kind)
}

/**
 * Decode the body of a deal entry strictly. Throws `SchemaError` for a
 * malformed body, `SignatureError` for an embedded document whose
 * signature does not verify, `UnknownKindError` for a kind this package
 * does not own.
 */
export function decodeBody(kind: string, value: unknown): DealBody {
  switch (kind) {
    case 'proposal':
      return { kind, body: parseWith(proposalBodySchema, value, 'proposal body') }
    case 'counter':
      return { kind, body: parseWith(counterBodySchema, value, 'counter body') }
    case 'acceptance':
      return { kind, body: parseWith(acceptanceBodySchema, value, 'acceptance body') }
    case 'reject':
      return { kind, body: parseWith(rejectBodySchema, value, 'reject body') }
    case 'collateral':
      return { kind, body: parseWith(collateralBodySchema, value, 'collateral body') }
    case 'attestation': {
      const b = parseWith(attestationEntryBodySchema, value, 'attestation body')
      return { kind, body: { deal: b.deal, attestation: decodeAttestation(b.attestation) } }
    }
    case 'manifest':
      return { kind, body: parseWith(manifestBodySchema, value, 'manifest body') }
    case 'usage':
      return { kind, body: parseWith(usageBodySchema, value, 'usage body') }
    case 'observation': {
      const b = parseWith(observationEntryBodySchema, value, 'observation body')
      return { kind, body: { deal: b.deal, observation: decodeObservation(b.observation) } }
    }
    case 'evaluation':
      return { kind, body: parseWith(evaluationBodySchema, value, 'evaluation body') }
    case 'voucher':
      return { kind, body: parseWith(voucherBodySchema, value, 'voucher body') }
    case 'ack':
      return { kind, body: parseWith(ackBodySchema, value, 'ack body') }
    case 'rail-result':
      return { kind, body: parseWith(railResultBodySchema, value, 'rail-result body') }
    case 'dispute':
      return { kind, body: parseWith(disputeBodySchema, value, 'dispute body') }
    case 'evidence-request': {
      const b = parseWith(evidenceRequestEntryBodySchema, value, 'evidence-request body')
      return { kind, body: { deal: b.deal, request: decodeEvidenceRequest(b.request) } }
    }
    case 'evidence-answer':
      return { kind, body: parseWith(evidenceAnswerBodySchema, value, 'evidence-answer body') }
    case 'ruling': {
      const b = parseWith(rulingEntryBodySchema, value, 'ruling body')
      return { kind, body: { deal: b.deal, ruling: decodeRuling(b.ruling) } }
    }
    case 'appeal':
      return { kind, body: parseWith(appealBodySchema, value, 'appeal body') }
    case 'certificate': {
      const b = parseWith(certificateEntryBodySchema, value, 'certificate body')
      return { kind, body: { deal: b.deal, certificate: decodeCertificate(b.certificate) } }
    }
    case 'timeout':
      return { kind, body: parseWith(timeoutBodySchema, value, 'timeout body') }
    case 'close':
      return { kind, body: parseWith(closeBodySchema, value, 'close body') }
    default:
      throw new UnknownKindError(`@tally/deal does not define entry kind ${JSON.stringify(kind)}`, { kind })
  }
}

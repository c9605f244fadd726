import { TallyError } from '@tally/core'

/**
 * One class per illegal deal transition. The reducer throws these for an
 * entry that must not change the state; callers branch on `err.name`.
 */
export class DealRejection extends TallyError {}

// The entry itself, before any deal logic.
/** The entry belongs to another pair log. */
export class WrongPairError extends DealRejection {}
/** The entry's author is neither the pair's provider nor its consumer. */
export class NotAPartyError extends DealRejection {}
/** The entry does not extend its author's chain (seq or prev out of order). */
export class OutOfOrderError extends DealRejection {}
/** The author's role may not append this kind here (e.g. a consumer's usage). */
export class WrongPartyError extends DealRejection {}
/** A CID the entry names is not an entry of this pair (or not of the kind expected). */
export class UnknownReferenceError extends DealRejection {}

// Negotiation.
/** Contract terms are well-formed but inconsistent (quorum above total weight, a party as arbiter, …). */
export class InvalidTermsError extends DealRejection {}
/** The entry names a deal this pair log does not hold. */
export class UnknownDealError extends DealRejection {}
/** The deal is not in force: still negotiating, rejected or lapsed. */
export class DealNotActiveError extends DealRejection {}
/** The deal is closed (or certified) and no longer accepts this kind of entry. */
export class DealClosedError extends DealRejection {}
/** An answer names an offer that is not the latest one. */
export class StaleOfferError extends DealRejection {}
/** Money in an asset other than the contract's. */
export class AssetMismatchError extends DealRejection {}

// Execution.
/** An attestation after the deal's first usage. */
export class AttestationAfterStartError extends DealRejection {}
/** An attestation that does not show the contracted hardware class and count. */
export class AttestationMismatchError extends DealRejection {}
/** Usage before the provider attested its hardware. */
export class MissingAttestationError extends DealRejection {}
/** Usage before the consumer's manifest. */
export class MissingManifestError extends DealRejection {}
/** A manifest after the deal's first usage. */
export class ManifestAfterStartError extends DealRejection {}
/** Usage before the contracted collateral is bonded. */
export class CollateralMissingError extends DealRejection {}
/** An epoch outside the contract (beyond the term, the close, or before the start). */
export class EpochOutOfRangeError extends DealRejection {}
/** Usage or evaluation for an epoch that has not ended by the entry's time. */
export class EpochNotEndedError extends DealRejection {}
/** A second usage for the same epoch. */
export class DuplicateUsageError extends DealRejection {}

// Evidence.
/** An observation about someone other than the pair's provider. */
export class ObservationSubjectError extends DealRejection {}
/** An observation window that cannot be assigned to one epoch of the deal. */
export class ObservationWindowError extends DealRejection {}
/** Two different observations with the same (monitor, seq): the monitor equivocated. */
export class ObservationConflictError extends DealRejection {}
/** More observations for one epoch than the reducer keeps. */
export class ObservationLimitError extends DealRejection {}
/** An evaluation counts evidence from a monitor the contract does not name. */
export class UnnamedMonitorError extends DealRejection {}
/** An evaluation lists a CID that is not evidence for that deal and epoch. */
export class UnknownEvidenceError extends DealRejection {}
/** An evaluation leaves out admissible evidence its author had already seen. */
export class EvaluationIncompleteError extends DealRejection {}
/** The verdict or amount is not what the rule gives for exactly the evidence listed. */
export class EvaluationMismatchError extends DealRejection {}
/** A verdict that rests on missing evidence before the evidence grace period ended. */
export class EvaluationTooEarlyError extends DealRejection {}
/** A second, different evaluation of an epoch whose verdict is final. */
export class EpochAlreadyEvaluatedError extends DealRejection {}

// Payment.
/** A release that names no evaluation or ruling authorising it. */
export class PaymentNotAuthorizedError extends DealRejection {}
/** A cumulative voucher below the previous one. */
export class VoucherDecreaseError extends DealRejection {}
/** A cumulative voucher above what its named evaluations and rulings authorise. */
export class VoucherExceedsAuthorizedError extends DealRejection {}
/** A voucher names a ruling that can still be appealed. */
export class RulingNotFinalError extends DealRejection {}
/** An ack or rail result for a voucher this deal does not hold. */
export class UnknownVoucherError extends DealRejection {}
/** An ack whose amount differs from the voucher's. */
export class AckMismatchError extends DealRejection {}
/** A second ack of the same voucher. */
export class AlreadyAcknowledgedError extends DealRejection {}
/** A rail result from a rail the contract does not name, or after the rail already settled. */
export class RailMismatchError extends DealRejection {}

// Disputes.
/** A dispute over an epoch already released by a voucher. */
export class DisputeReleasedEpochError extends DealRejection {}
/** A dispute over an epoch already under dispute or ruled. */
export class EpochAlreadyDisputedError extends DealRejection {}
/** The entry names a dispute this deal does not hold, or one already final. */
export class UnknownDisputeError extends DealRejection {}
/** A ruling or evidence request not signed by the arbiter the contract names for it. */
export class UnnamedArbiterError extends DealRejection {}
/** A ruling whose pair, deal, dispute, epochs or award does not fit the dispute and contract. */
export class RulingMismatchError extends DealRejection {}
/** A second first-instance ruling, or an appeal ruling with no pending appeal. */
export class DuplicateRulingError extends DealRejection {}
/** An appeal after the deadline or against a ruling that is final. */
export class AppealDeadlineError extends DealRejection {}
/** An answer to an evidence request that was already answered or timed out. */
export class AlreadyAnsweredError extends DealRejection {}

// Ending.
/** A completion certificate before the deal is fully settled. */
export class CertificatePrematureError extends DealRejection {}
/** A certificate whose signer, summary or heads differ from the record. */
export class CertificateMismatchError extends DealRejection {}
/** A close with reason `completed` before every contracted epoch has elapsed. */
export class CloseNotCompleteError extends DealRejection {}
/** A timeout claim before the counterparty's deadline. */
export class TimeoutPrematureError extends DealRejection {}
/** A timeout claim for a duty the counterparty does not owe. */
export class NothingOutstandingError extends DealRejection {}

// Observation documents outside the reducer (gossip validation).
/** An observation issued too long ago, or in the future, relative to `now`. */
export class ObservationStaleError extends TallyError {}
/** An observation whose per-monitor seq does not advance. */
export class ObservationSequenceError extends TallyError {}

/** A timeline to replay names no pair (no 'open' entry) and none was given. */
export class UnknownPairError extends TallyError {}

import { TallyError } from '@tally/core'

/** A peer's hello names a pair it is not the counterparty of, a pair we do not serve, or another protocol version. */
export class PairHelloError extends TallyError {}
/** A peer sent entries it was not asked for, or more unacknowledged frames than our window. */
export class FlowControlError extends TallyError {}
/** A request names a chain other than ours, or a range that does not continue the previous one. */
export class PairRequestError extends TallyError {}
/** The pair's validator refused entries (e.g. an illegal deal transition); nothing of the batch was stored. */
export class EntryRejectedError extends TallyError {}
/** An ack names an entry we did not send in that position. */
export class PairAckError extends TallyError {}
/** The stream lost the simultaneous-open race, or was replaced by a newer stream of the same pair (not a fault). */
export class DuplicateSessionError extends TallyError {}
/** The pair is not registered with this service. */
export class UnknownPairError extends TallyError {}
/** `awaitRemoteDurable` names an entry that is not one of our own durable entries of the pair. */
export class UnknownEntryError extends TallyError {}
/** `waitForSync` did not see both sides' heads match in time. */
export class SyncTimeoutError extends TallyError {}
/** The counterparty did not acknowledge the entry as durable in time. */
export class RemoteDurableTimeoutError extends TallyError {}
/** The pair-session service stopped, or the pair was removed, while waiting. */
export class SessionsStoppedError extends TallyError {}
/** Sent to the peer in place of a local fault (a full disk, say): not the peer's doing, and its details stay here. */
export class PairLocalFaultError extends TallyError {}

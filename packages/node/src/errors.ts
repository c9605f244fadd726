import { TallyError } from '@tally/core'

/** A node configuration is malformed or inconsistent. */
export class NodeConfigError extends TallyError {}
/** An operation needs a started node. */
export class NodeNotStartedError extends TallyError {}

/** A peer announced or sent a frame larger than the protocol allows. */
export class FrameTooLargeError extends TallyError {}
/** A frame's length prefix or payload could not be decoded, or had the wrong shape. */
export class FrameDecodeError extends TallyError {}
/** A peer did not complete a frame (or send one) within the allowed time. */
export class FrameTimeoutError extends TallyError {}
/** The stream ended before the expected frame arrived. */
export class StreamEndedError extends TallyError {}
/** A peer sent a message type the protocol does not expect at this point. */
export class UnexpectedMessageError extends TallyError {}
/** A peer opened streams (or sent messages) faster than its allowance. */
export class RateLimitedError extends TallyError {}
/** A peer could not be dialed or the protocol could not be negotiated. */
export class PeerUnreachableError extends TallyError {}
/** The remote side answered with a protocol-level error. */
export class RemoteError extends TallyError {}

/** An offer failed verification (signature, signer, schema, expiry, credentials). */
export class InvalidOfferError extends TallyError {}
/** The provider serves no offer right now. */
export class NoOfferError extends TallyError {}
/** A capability query names nothing to search for, or has bad values. */
export class InvalidQueryError extends TallyError {}

/** A local publish was refused by the topic's own validator (the network would reject it too). */
export class GossipRejectedError extends TallyError {}

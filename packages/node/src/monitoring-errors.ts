import { TallyError } from '@tally/core'

/** A provider's answer to an identity challenge does not prove it holds the expected peer's key for this nonce. */
export class IdentityProofError extends TallyError {}
/** A probe request is malformed or out of bounds (nonce length, monitor id, clock, matrix size). */
export class ProbeRequestError extends TallyError {}
/** A warrant does not verify: malformed, wrongly signed, or its two documents do not conflict. */
export class InvalidWarrantError extends TallyError {}

/**
 * One error class per condition. Callers branch on `err.name` (or
 * `instanceof`), never on message text. Every error a Tally package throws
 * for bad input is a `TallyError`.
 */
export class TallyError extends Error {
  /** Structured context for logs and `--json` output. */
  readonly details: Record<string, unknown>
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.details = details
  }
}

/** Bytes are not valid canonical DAG-CBOR, or exceed a size bound. */
export class DecodeError extends TallyError {}
/** A decoded value does not match the schema of its record type. */
export class SchemaError extends TallyError {}
/** A record names a kind/type this version does not know. */
export class UnknownKindError extends TallyError {}
/** A signature does not verify for the claimed signer. */
export class SignatureError extends TallyError {}
/** A key or peer id is malformed, or an identity file is unusable. */
export class IdentityError extends TallyError {}
/** A credential is expired, not yet valid, or lacks the needed role/scope. */
export class CredentialError extends TallyError {}
/** A credential's issuer is not admitted by the reader's trust policy. */
export class UntrustedIssuerError extends TallyError {}
/** A value cannot be encoded canonically (floats, undefined, oversize). */
export class EncodeError extends TallyError {}

export function isTallyError(err: unknown): err is TallyError {
  return err instanceof TallyError
}

/**
 * Errors of the pair log, one class per condition. Callers branch on
 * `err.name`. Every one is a `TallyError`, so bad input never surfaces as
 * anything else.
 */
import { TallyError } from '@tally/core'
import type { EquivocationProof } from './equivocation.ts'

/** An ingested entry does not directly follow what is held: `expected` is the next seq, `got` what arrived. */
export class GapError extends TallyError {
  readonly expected: number
  readonly got: number
  constructor(message: string, expected: number, got: number, details: Record<string, unknown> = {}) {
    super(message, { ...details, expected, got })
    this.expected = expected
    this.got = got
  }
}

/** Entries of one batch are not in ascending chain order. */
export class OutOfOrderError extends TallyError {}
/** The same entry appears twice in one batch. */
export class DuplicateEntryError extends TallyError {}
/** An entry belongs to another pair log. */
export class ForeignPairError extends TallyError {}
/** An entry offered as the counterparty's is by the holder itself or by a third party. */
export class WrongAuthorError extends TallyError {}
/** An entry's `prev` does not name the entry before it in its chain. */
export class BrokenLinkError extends TallyError {}
/** An entry's `seen` does not name a held entry of the other chain, or goes backwards. */
export class SeenLinkError extends TallyError {}
/** The first entry of a chain is not a valid 'open' entry, or an 'open' entry appears later. */
export class OpenEntryError extends TallyError {}
/** An entry's time lies too far in the future of the local clock. */
export class ClockSkewError extends TallyError {}
/** A party is not one of the pair, or an identity cannot act in this pair log. */
export class NotAPartyError extends TallyError {}
/** A third-party document embedded in an entry does not verify. */
export class EmbeddedDocumentError extends TallyError {}

/** Two validly signed entries claim the same (pair, author, seq). Carries the self-proving proof. */
export class EquivocationError extends TallyError {
  readonly proof: EquivocationProof
  constructor(message: string, proof: EquivocationProof, details: Record<string, unknown> = {}) {
    super(message, details)
    this.proof = proof
  }
}
/** An equivocation proof does not prove equivocation. */
export class InvalidEquivocationProofError extends TallyError {}

/** The store failed, or was used after close. */
export class StoreError extends TallyError {}

/**
 * A durable write (or opening the store, which writes) failed for a reason of the disk or the data directory.
 * `dir` is the store's directory; `code` the errno name when LevelDB named one (ENOSPC, EROFS …). After one,
 * the store refuses every further write until it is reopened (store-faults.ts says why).
 */
export class StoreWriteError extends StoreError {
  readonly dir: string
  readonly code: string | undefined
  constructor(message: string, details: { dir: string; code?: string | undefined; [k: string]: unknown }, options?: { cause?: unknown }) {
    super(message, details, options)
    this.dir = details.dir
    this.code = details.code
  }
}
/** The disk holding the store is full, or a quota or the process's file size limit is reached (ENOSPC, EDQUOT, EFBIG). */
export class StoreFullError extends StoreWriteError {}
/** The data directory or its filesystem refuses writes (EROFS, EACCES, EPERM). */
export class StoreUnwritableError extends StoreWriteError {}
/** The pair log was used after close. */
export class ClosedError extends TallyError {}

/** A checkpoint statement or its signatures are invalid, or do not match the holder's copy. */
export class CheckpointError extends TallyError {}
/** A checkpoint proposal does not extend the latest checkpoint the holder has. */
export class CheckpointConflictError extends TallyError {}
/** An inclusion or consistency proof is malformed or does not verify. */
export class ProofError extends TallyError {}

/** The CAR bytes are structurally broken (bad varint, header, CID, truncated section). `offset` is the byte position. */
export class CarFormatError extends TallyError {
  readonly offset: number
  constructor(message: string, offset: number, details: Record<string, unknown> = {}) {
    super(message, { ...details, offset })
    this.offset = offset
  }
}
/** A CAR block's bytes do not hash to the CID it is stored under. */
export class BlockHashMismatchError extends TallyError {}
/** An entry a link points to is not in the export. */
export class MissingEntryError extends TallyError {}
/** A block in the export is not part of either chain or the manifest. */
export class UnexpectedBlockError extends TallyError {}
/** The export manifest is missing, damaged or does not match the chains. */
export class ManifestError extends TallyError {}
/** An export failed verification; `details.report` holds the full report. */
export class ExportInvalidError extends TallyError {}
/** An import conflicts with what the store already holds for the pair. */
export class ImportConflictError extends TallyError {}

import { TallyError } from '@tally/core'

/**
 * The arbiter refused the case. `code` says why (docs/PROTOCOL.md lists
 * them): `not-arbiter`, `invalid-record`, `evidence-pending`, `busy`, …
 */
export class CaseRefusedError extends TallyError {
  readonly code: string
  constructor(message: string, code: string, details: Record<string, unknown> = {}) {
    super(message, { ...details, code })
    this.code = code
  }
}

/** The arbiter's answer does not verify or does not answer the case submitted (wrong signer, pair, deal or dispute). */
export class InvalidCaseAnswerError extends TallyError {}

/** The client's record chunks do not add up to the size it announced (a short chunk mid-record, or more bytes than announced). */
export class CaseFlowError extends TallyError {}

import { TallyError } from '@tally/core'

/** A rail is configured with something unusable (empty command, non-http URL, bad timeout). */
export class RailConfigError extends TallyError {}

import { TallyError } from '@tally/core'

/** The case store cannot be read or written (disk full, permissions, a damaged case file). */
export class CaseStoreError extends TallyError {}

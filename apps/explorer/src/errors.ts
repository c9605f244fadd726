import { TallyError } from '@tally/core'

/** An export file cannot be read as a pair log at all (missing, not a CAR, no manifest). */
export class ExportReadError extends TallyError {}
/** A data directory holds no store the explorer can open. */
export class DataDirError extends TallyError {}
/** The explorer's HTTP server could not start (port in use, bad host). */
export class ServerStartError extends TallyError {}

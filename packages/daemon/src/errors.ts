import { TallyError } from '@tally/core'

/** A config file is missing, unreadable or invalid; the message names the file and the field. */
export class ConfigError extends TallyError {}
/** The control API refused a request (bad token, unknown route, bad body). */
export class ControlApiError extends TallyError {
  readonly status: number
  constructor(message: string, status: number, details: Record<string, unknown> = {}) {
    super(message, details)
    this.status = status
  }
}
/** No running daemon answers on the data directory's control address. */
export class DaemonNotRunningError extends TallyError {}

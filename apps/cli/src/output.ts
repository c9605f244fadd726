/**
 * What a person sees: one clear line per error (stack only with --verbose),
 * JSON when asked, progress only on a terminal.
 */
import { TallyError } from '@tally/core'

/** Exit codes every `tally` command keeps to. */
export const EXIT = {
  ok: 0,
  /** The operation ran and the answer is no: invalid export, failed deal, unreachable peer. */
  failed: 1,
  /** Usage error or an input that cannot be opened. */
  usage: 2,
} as const

/** An error meant for the person at the terminal, with the exit code it implies. */
export class CliError extends TallyError {
  readonly exitCode: number
  readonly hint: string | undefined
  constructor(message: string, exitCode: number = EXIT.failed, hint?: string) {
    super(message)
    this.exitCode = exitCode
    this.hint = hint
  }
}

export interface OutputOptions {
  json: boolean
  verbose: boolean
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer)}\n`)
}

/** JSON for CIDs, bytes and bigints. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (typeof value === 'bigint') return value.toString()
  if (value !== null && typeof value === 'object' && (value as { asCID?: unknown }).asCID === value) return String(value)
  return value
}

export function reportError(err: unknown, verbose: boolean): number {
  const exitCode = err instanceof CliError ? err.exitCode : EXIT.failed
  const name = err instanceof Error ? err.name : 'Error'
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`tally: ${name === 'CliError' ? '' : `${name}: `}${message}\n`)
  if (err instanceof CliError && err.hint !== undefined) process.stderr.write(`hint: ${err.hint}\n`)
  if (verbose && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`)
  else if (!(err instanceof TallyError)) process.stderr.write('(run with --verbose for details)\n')
  return exitCode
}

/** A one-line progress display that redraws on a TTY and prints nothing when piped. */
export class Progress {
  readonly #enabled: boolean
  #last = 0
  constructor(
    readonly label: string,
    enabled = process.stderr.isTTY === true,
  ) {
    this.#enabled = enabled
  }

  update(done: number, total?: number): void {
    if (!this.#enabled) return
    const now = Date.now()
    if (now - this.#last < 100 && (total === undefined || done < total)) return
    this.#last = now
    const pct = total !== undefined && total > 0 ? ` ${Math.floor((done / total) * 100)}%` : ''
    process.stderr.write(`\r${this.label}: ${done.toLocaleString('en-US')}${total !== undefined ? `/${total.toLocaleString('en-US')}` : ''}${pct}\u001b[K`)
  }

  done(): void {
    if (this.#enabled) process.stderr.write('\r\u001b[K')
  }
}

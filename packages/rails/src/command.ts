import { spawn } from 'node:child_process'
import { RailConfigError } from './errors.ts'
import { assertRailName, boundText, checkRelease, failed, type Rail, type RailOutcome, type RailRelease, safeReference } from './rail.ts'

export interface CommandRailOptions {
  /** argv of the user's payment program; run without a shell. */
  command: string[]
  /** Kill the program (its whole process group) after this long; the release is then `failed`. */
  timeoutMs: number
  /** Extra environment; the daemon's own environment is not passed on, except PATH. */
  env?: Record<string, string>
  name?: string
}

/** Output kept per stream; the detail recorded is cut further to 1 KiB. */
const MAX_CAPTURE = 64 * 1024

/** The variables a payment program receives besides the release JSON on stdin. */
export function releaseEnv(rail: string, r: RailRelease): Record<string, string> {
  return {
    TALLY_RAIL: rail,
    TALLY_PAIR: r.pair,
    TALLY_DEAL: r.deal,
    TALLY_VOUCHER: r.voucher,
    TALLY_IDEMPOTENCY_KEY: r.voucher,
    TALLY_AMOUNT: String(r.delta.amount),
    TALLY_ASSET: r.delta.asset,
    TALLY_CUMULATIVE_AMOUNT: String(r.cumulative.amount),
    TALLY_PAYER: r.payer,
    TALLY_PAYEE: r.payee,
  }
}

/**
 * Hands each release to the user's own program: the release as JSON on
 * stdin, the key fields as TALLY_* variables (TALLY_IDEMPOTENCY_KEY is the
 * voucher CID, so a program asked twice for the same release can refuse
 * to pay twice). Exit 0 means paid; the first stdout line, when it looks
 * like an identifier, is the reference.
 */
export class CommandRail implements Rail {
  readonly name: string
  readonly #command: string[]
  readonly #timeoutMs: number
  readonly #env: Record<string, string>

  constructor(opts: CommandRailOptions) {
    if (
      !Array.isArray(opts.command) ||
      opts.command.length === 0 ||
      opts.command.some((a) => typeof a !== 'string' || a.includes('\0')) ||
      opts.command[0] === ''
    ) {
      throw new RailConfigError('command rail needs a non-empty argv')
    }
    if (!Number.isSafeInteger(opts.timeoutMs) || opts.timeoutMs < 1) throw new RailConfigError('command rail timeoutMs must be a positive integer')
    this.name = assertRailName(opts.name ?? 'command')
    this.#command = [...opts.command]
    this.#timeoutMs = opts.timeoutMs
    this.#env = { ...(opts.env ?? {}) }
  }

  async release(release: RailRelease): Promise<RailOutcome> {
    const checked = checkRelease(this.name, release)
    if (!checked.ok) return checked.outcome
    const r = checked.release
    const env: Record<string, string> = { ...this.#env, ...releaseEnv(this.name, r) }
    if (env['PATH'] === undefined && process.env['PATH'] !== undefined) env['PATH'] = process.env['PATH']
    return new Promise<RailOutcome>((resolve) => {
      let settled = false
      const done = (outcome: RailOutcome): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(outcome)
      }
      const child = spawn(this.#command[0]!, this.#command.slice(1), { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
      const out: Buffer[] = []
      const err: Buffer[] = []
      let outBytes = 0
      let errBytes = 0
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        try {
          process.kill(-child.pid!, 'SIGKILL')
        } catch {
          child.kill('SIGKILL')
        }
      }, this.#timeoutMs)
      child.stdout.on('data', (c: Buffer) => {
        if (outBytes < MAX_CAPTURE) out.push(c)
        outBytes += c.byteLength
      })
      child.stderr.on('data', (c: Buffer) => {
        if (errBytes < MAX_CAPTURE) err.push(c)
        errBytes += c.byteLength
      })
      child.stdin.on('error', () => {
        // the program need not read the release; a closed stdin is not a failure
      })
      child.once('error', (e) => done(failed(this.name, `cannot run ${this.#command[0]}: ${e.message}`)))
      child.once('close', (code, signal) => {
        const stdout = Buffer.concat(out).toString('utf8').trim()
        const stderr = Buffer.concat(err).toString('utf8').trim()
        const text = [stdout, stderr].filter((s) => s !== '').join('\n')
        if (timedOut) return done(failed(this.name, `timed out after ${this.#timeoutMs} ms${text === '' ? '' : `: ${text}`}`))
        if (code !== 0) return done(failed(this.name, `exit ${code ?? signal}${text === '' ? '' : `: ${text}`}`))
        done({ rail: this.name, status: 'ok', detail: boundText(text), reference: safeReference(stdout.split('\n')[0]?.trim()) })
      })
      child.stdin.end(JSON.stringify(r))
    })
  }
}

/**
 * Child processes of the real binaries for the demo and multi-process
 * tests: started with tsx, ready when they print their JSON ready line,
 * always reaped (SIGTERM, then SIGKILL) so nothing is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'

export interface Ready {
  peerId: string
  multiaddrs: string[]
  control?: string
  [k: string]: unknown
}

export class Proc {
  readonly child: ChildProcess
  readonly ready: Promise<Ready>
  readonly exited: Promise<number | null>
  readonly #log: WriteStream

  constructor(
    readonly name: string,
    entry: string,
    args: string[],
    logFile: string,
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number } = {},
  ) {
    this.#log = createWriteStream(logFile, { flags: 'a' })
    this.child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
      cwd: opts.cwd ?? process.cwd(),
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    all.add(this)
    this.child.stderr?.pipe(this.#log)
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
    this.exited.then(() => all.delete(this))
    const lines = createInterface({ input: this.child.stdout! })
    const stdout: string[] = []
    this.stdout = stdout
    this.ready = new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} not ready after ${opts.readyTimeoutMs ?? 60_000} ms (see ${logFile})`)),
        opts.readyTimeoutMs ?? 60_000,
      )
      lines.on('line', (line) => {
        stdout.push(line)
        this.#log.write(`[stdout] ${line}\n`)
        try {
          const j = JSON.parse(line) as Ready
          if (typeof j.peerId === 'string' && Array.isArray(j.multiaddrs)) {
            clearTimeout(timer)
            resolve(j)
          }
        } catch {}
      })
      this.exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`${name} exited with ${code} before it was ready (see ${logFile})`))
      })
    })
    this.ready.catch(() => {})
  }

  readonly stdout: string[]

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 8_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.kill('SIGTERM')
    const t = setTimeout(() => this.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(t)
  }
}

const all = new Set<Proc>()

/** Stop every process started here (used on exit and on error). */
export async function stopAll(): Promise<void> {
  await Promise.all([...all].map((p) => p.stop()))
}

/** Last-resort cleanup if the orchestrator itself is interrupted. */
export function killAllSync(): void {
  for (const p of all) p.kill('SIGKILL')
}

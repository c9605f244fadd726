/** What the multi-process benchmarks share: a child host driven over IPC, percentiles, the loopback TCP limit. */
import { type ChildProcess, fork } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

/** A child process running a bench host script; `call(op, args)` is answered over IPC (id 0 means ready). */
export class BenchHost {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  #next = 1

  constructor(script: string, name: string, execArgv: string[] = []) {
    this.child = fork(script, [], { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => {
        const err = new Error(`${name} bench host exited with ${code}`)
        reject(err)
        for (const waiter of this.#pending.values()) waiter.reject(err)
        this.#pending.clear()
      })
      this.child.on('message', (raw) => {
        const msg = raw as { id: number; ok: boolean; value?: unknown; error?: string }
        if (msg.id === 0) return resolve()
        const waiter = this.#pending.get(msg.id)
        this.#pending.delete(msg.id)
        if (msg.ok) waiter?.resolve(msg.value)
        else waiter?.reject(new Error(msg.error))
      })
    })
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ id, op, args })
    })
  }
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

/** Round trips of 64 bytes over a raw loopback TCP socket, in ms: the physical limit of any exchange here. */
export async function tcpRoundTrips(n: number): Promise<number[]> {
  const server = createServer((socket) => socket.on('data', (d) => socket.write(d)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const socket: Socket = connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  const payload = Buffer.alloc(64, 7)
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    await new Promise<void>((resolve) => {
      let got = 0
      const onData = (d: Buffer) => {
        got += d.byteLength
        if (got >= payload.byteLength) {
          socket.off('data', onData)
          resolve()
        }
      }
      socket.on('data', onData)
      socket.write(payload)
    })
    samples.push(performance.now() - start)
  }
  socket.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return samples
}

/** Operations a bench host answers: the child side of `BenchHost`. */
export type BenchOps = Record<string, (args: Record<string, unknown>) => Promise<unknown>>

/** Answer `BenchHost.call` messages with `ops`, then tell the parent this host is ready (id 0). */
export function serveBenchOps(ops: BenchOps): void {
  process.on('message', (raw) => {
    const msg = raw as { id: number; op: string; args?: Record<string, unknown> }
    const op = ops[msg.op]
    if (op === undefined) {
      process.send?.({ id: msg.id, ok: false, error: `unknown op ${msg.op}` })
      return
    }
    op(msg.args ?? {}).then(
      (value) => process.send?.({ id: msg.id, ok: true, value }),
      (err: unknown) => process.send?.({ id: msg.id, ok: false, error: `${(err as Error).name}: ${(err as Error).message}` }),
    )
  })
  process.send?.({ id: 0, ok: true })
}

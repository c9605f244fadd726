import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { runProbe } from './attest.ts'
import { assertChallengeParams, CHALLENGE_PRIME, type ChallengeAnswer, type ChallengeParams, challengeMatrix, decodeProduct } from './challenge.ts'
import { GpuSolverError } from './errors.ts'

/**
 * The GPU path of the compute challenge: a long-lived python worker with
 * torch on CUDA (so CUDA start-up is paid once, not per challenge).
 * Matrices are generated here exactly as on the CPU path and sent over
 * stdin; the worker multiplies them as float64 (exact, see
 * CHALLENGE_PRIME), reduces mod p and sends C back, so the answer is
 * byte-identical to `solveChallenge`.
 *
 * Frames: request u32le n, A, B (n² u32le each); reply u32le length then
 * C (n² u32le), or length 0xffffffff, u32le message length, UTF-8 error.
 */
const WORKER = `
import struct, sys
try:
    import torch
    assert torch.cuda.is_available(), 'torch.cuda.is_available() is False'
except Exception as e:
    sys.stdout.write('FAIL %s\\n' % str(e).replace('\\n', ' ')[:200]); sys.stdout.flush(); sys.exit(3)
P = ${CHALLENGE_PRIME}
dev = torch.device('cuda')
torch.backends.cuda.matmul.allow_tf32 = False
def product(a, b, n):
    ta = torch.frombuffer(bytearray(a), dtype=torch.int32).reshape(n, n).to(dev).to(torch.float64)
    tb = torch.frombuffer(bytearray(b), dtype=torch.int32).reshape(n, n).to(dev).to(torch.float64)
    tc = torch.remainder(ta @ tb, P).to(torch.int32).cpu().contiguous()
    try:
        return tc.numpy().tobytes()
    except Exception:
        return struct.pack('<%di' % (n * n), *tc.view(-1).tolist())
w = bytes(4 * 64 * 64)
product(w, w, 64)
torch.cuda.synchronize()
out = sys.stdout.buffer
out.write(b'READY ' + torch.cuda.get_device_name(0).encode()[:100] + b'\\n'); out.flush()
inp = sys.stdin.buffer
while True:
    hdr = inp.read(4)
    if len(hdr) < 4:
        break
    (n,) = struct.unpack('<I', hdr)
    size = 4 * n * n
    a = inp.read(size); b = inp.read(size)
    if len(a) < size or len(b) < size:
        break
    try:
        c = product(a, b, n)
        out.write(struct.pack('<I', len(c))); out.write(c)
    except Exception as e:
        msg = str(e).encode()[:500]
        out.write(struct.pack('<II', 0xffffffff, len(msg))); out.write(msg)
    out.flush()
`

/** True where `python -c "import torch; torch.cuda.is_available()"` says so. */
export async function torchCudaAvailable(python = 'python3'): Promise<boolean> {
  const res = await runProbe(python, ['-c', 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'], 60_000)
  return res.ok
}

function u32le(values: Float64Array): Buffer {
  const out = Buffer.alloc(values.length * 4)
  for (let i = 0; i < values.length; i++) out.writeUInt32LE(values[i]!, 4 * i)
  return out
}

export class GpuChallengeSolver {
  readonly device: string
  readonly #proc: ChildProcessWithoutNullStreams
  #buf: Buffer = Buffer.alloc(0)
  #waiter: (() => void) | null = null
  #busy = false
  #exited = false

  private constructor(proc: ChildProcessWithoutNullStreams, device: string, rest: Buffer) {
    this.#proc = proc
    this.device = device
    this.#buf = rest
    proc.stdout.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
      this.#waiter?.()
    })
    proc.once('exit', () => {
      this.#exited = true
      this.#waiter?.()
    })
  }

  /** Start the worker; throws `GpuSolverError` where python, torch or CUDA is missing. */
  static async start(opts: { python?: string; startTimeoutMs?: number } = {}): Promise<GpuChallengeSolver> {
    const proc = spawn(opts.python ?? 'python3', ['-c', WORKER], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
    let stderr = ''
    proc.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString()
    })
    const first = await new Promise<{ line: string; rest: Buffer }>((resolve, reject) => {
      let buf = Buffer.alloc(0)
      const timer = setTimeout(() => reject(new GpuSolverError('GPU worker did not start in time')), opts.startTimeoutMs ?? 120_000)
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c])
        const nl = buf.indexOf(10)
        if (nl < 0) return
        clearTimeout(timer)
        proc.stdout.off('data', onData)
        resolve({ line: buf.subarray(0, nl).toString(), rest: buf.subarray(nl + 1) })
      }
      proc.stdout.on('data', onData)
      proc.once('error', (err) => {
        clearTimeout(timer)
        reject(new GpuSolverError(`cannot start python: ${err.message}`, {}, { cause: err }))
      })
      proc.once('exit', (code) => {
        clearTimeout(timer)
        reject(new GpuSolverError(`GPU worker exited (${code}): ${stderr.trim().split('\n').pop() ?? ''}`.slice(0, 300)))
      })
    }).catch((err: unknown) => {
      proc.kill('SIGKILL')
      throw err
    })
    if (!first.line.startsWith('READY')) {
      proc.kill('SIGKILL')
      throw new GpuSolverError(`GPU worker unavailable: ${first.line.slice(0, 300)}`)
    }
    proc.removeAllListeners('exit')
    return new GpuChallengeSolver(proc, first.line.slice(6).trim(), first.rest)
  }

  async #read(bytes: number): Promise<Buffer> {
    while (this.#buf.length < bytes) {
      if (this.#exited) throw new GpuSolverError('GPU worker exited mid-answer')
      await new Promise<void>((r) => {
        this.#waiter = r
      })
      this.#waiter = null
    }
    const out = this.#buf.subarray(0, bytes)
    this.#buf = this.#buf.subarray(bytes)
    return out
  }

  /** Solve one challenge on the GPU; the answer is byte-identical to the CPU path's. */
  async solve(params: ChallengeParams): Promise<ChallengeAnswer> {
    assertChallengeParams(params)
    if (this.#busy) throw new GpuSolverError('GPU solver handles one challenge at a time')
    if (this.#exited) throw new GpuSolverError('GPU worker has exited')
    this.#busy = true
    try {
      const t0 = performance.now()
      const header = Buffer.alloc(4)
      header.writeUInt32LE(params.n)
      this.#proc.stdin.write(Buffer.concat([header, u32le(challengeMatrix(params, 'A')), u32le(challengeMatrix(params, 'B'))]))
      const len = (await this.#read(4)).readUInt32LE(0)
      if (len === 0xffffffff) {
        const msgLen = (await this.#read(4)).readUInt32LE(0)
        throw new GpuSolverError(`GPU worker failed: ${(await this.#read(Math.min(msgLen, 500))).toString()}`)
      }
      if (len !== 4 * params.n * params.n) throw new GpuSolverError(`GPU worker returned ${len} bytes, expected ${4 * params.n * params.n}`)
      const c = new Uint8Array(await this.#read(len))
      const durationMs = Math.max(0, Math.round(performance.now() - t0))
      if (decodeProduct(c, params.n) === null) throw new GpuSolverError('GPU worker returned an unreduced product')
      return { c, durationMs, solver: 'gpu' }
    } finally {
      this.#busy = false
    }
  }

  close(): void {
    this.#proc.stdin.end()
    this.#proc.kill('SIGTERM')
  }
}

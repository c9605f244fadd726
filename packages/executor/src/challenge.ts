import { createHash, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { ChallengeParamsError } from './errors.ts'

/**
 * The compute challenge monitors send providers (wire format in
 * docs/PROTOCOL.md, "Compute challenge"): multiply two n×n matrices over
 * GF(p) that both sides derive from a fresh seed. Answering costs n³
 * multiply-adds; checking costs O(k·n²) with Freivalds' method.
 */

/** p = 2^21 − 9, the largest prime below 2^21. With n ≤ 1024, n·(p−1)² < 2^53, so dot products are exact in float64 (CPU here, FP64 GEMM on a GPU). */
export const CHALLENGE_PRIME = 2_097_143
export const CHALLENGE_MIN_N = 8
export const CHALLENGE_MAX_N = 1024
export const CHALLENGE_SEED_BYTES = 32
const DOMAIN = 'tally/v1/challenge/'

export interface ChallengeParams {
  /** 32 random bytes chosen by the monitor. */
  seed: Uint8Array
  n: number
}

export interface ChallengeAnswer {
  /** The product C as n·n little-endian uint32, row-major, each < CHALLENGE_PRIME. */
  c: Uint8Array
  /** Time the solver took (generation + product), as the solver measured it. */
  durationMs: number
  solver: 'cpu' | 'gpu'
}

export function assertChallengeParams(p: ChallengeParams): void {
  if (!(p.seed instanceof Uint8Array) || p.seed.byteLength !== CHALLENGE_SEED_BYTES) {
    throw new ChallengeParamsError(
      `expected seed of length ${CHALLENGE_SEED_BYTES}, got ${p.seed instanceof Uint8Array ? `length=${p.seed.byteLength}` : typeof p.seed}`,
    )
  }
  if (!Number.isSafeInteger(p.n) || p.n < CHALLENGE_MIN_N || p.n > CHALLENGE_MAX_N) {
    throw new ChallengeParamsError(`expected n in [${CHALLENGE_MIN_N}, ${CHALLENGE_MAX_N}], got ${String(p.n)}`)
  }
}

/**
 * Matrix `which` (A or B) of a challenge: SHAKE128 of
 * `tally/v1/challenge/<which>` NUL seed u32be(n), read as n² little-endian
 * uint32 words, each reduced mod p, row-major.
 */
export function challengeMatrix(params: ChallengeParams, which: 'A' | 'B'): Float64Array {
  assertChallengeParams(params)
  const { n, seed } = params
  const nn = n * n
  const header = Buffer.alloc(4)
  header.writeUInt32BE(n)
  const stream = createHash('shake128', { outputLength: 4 * nn })
    .update(`${DOMAIN}${which}\0`)
    .update(seed)
    .update(header)
    .digest()
  const m = new Float64Array(nn)
  for (let i = 0; i < nn; i++) m[i] = stream.readUInt32LE(4 * i) % CHALLENGE_PRIME
  return m
}

/** C = A·B mod p (the reference CPU path). */
export function multiplyMod(a: Float64Array, b: Float64Array, n: number): Uint32Array {
  const p = CHALLENGE_PRIME
  const c = new Uint32Array(n * n)
  const row = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    row.fill(0)
    const ai = i * n
    for (let k = 0; k < n; k++) {
      const aik = a[ai + k]!
      if (aik === 0) continue
      const bk = k * n
      for (let j = 0; j < n; j++) row[j]! += aik * b[bk + j]!
    }
    for (let j = 0; j < n; j++) c[ai + j] = row[j]! % p
  }
  return c
}

/** The wire form of C: n·n little-endian uint32, row-major. */
export function encodeProduct(c: Uint32Array): Uint8Array {
  const out = new Uint8Array(c.length * 4)
  const view = new DataView(out.buffer)
  for (let i = 0; i < c.length; i++) view.setUint32(4 * i, c[i]!, true)
  return out
}

/** Parse C from its wire form; null when the length is wrong or an element is not reduced mod p. */
export function decodeProduct(bytes: Uint8Array, n: number): Uint32Array | null {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== 4 * n * n) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const c = new Uint32Array(n * n)
  for (let i = 0; i < c.length; i++) {
    const v = view.getUint32(4 * i, true)
    if (v >= CHALLENGE_PRIME) return null
    c[i] = v
  }
  return c
}

/** Solve a challenge on this CPU. */
export function solveChallenge(params: ChallengeParams): ChallengeAnswer {
  assertChallengeParams(params)
  const t0 = performance.now()
  const c = multiplyMod(challengeMatrix(params, 'A'), challengeMatrix(params, 'B'), params.n)
  const durationMs = Math.max(0, Math.round(performance.now() - t0))
  return { c: encodeProduct(c), durationMs, solver: 'cpu' }
}

function matVecMod(m: ArrayLike<number>, v: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let s = 0
    const o = i * n
    for (let j = 0; j < n; j++) s += m[o + j]! * v[j]!
    out[i] = s % CHALLENGE_PRIME
  }
  return out
}

/**
 * Freivalds' check of C = A·B: for `rounds` random vectors r, compare
 * A(Br) with Cr mod p. A wrong C passes one round with probability at
 * most 1/p ≈ 4.8e-7. Malformed C (wrong length, unreduced element) is
 * false, never an exception.
 */
export function checkChallenge(params: ChallengeParams, c: Uint8Array, rounds = 2, random: (bytes: number) => Uint8Array = randomBytes): boolean {
  assertChallengeParams(params)
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 64) throw new ChallengeParamsError(`expected rounds in [1, 64], got ${String(rounds)}`)
  const { n } = params
  const cm = decodeProduct(c, n)
  if (cm === null) return false
  const a = challengeMatrix(params, 'A')
  const b = challengeMatrix(params, 'B')
  for (let round = 0; round < rounds; round++) {
    const bytes = random(4 * n)
    const r = new Float64Array(n)
    for (let i = 0; i < n; i++) r[i] = (bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24)) >>> 0
    for (let i = 0; i < n; i++) r[i] = r[i]! % CHALLENGE_PRIME
    const abr = matVecMod(a, matVecMod(b, r, n), n)
    const cr = matVecMod(cm, r, n)
    for (let i = 0; i < n; i++) if (abr[i] !== cr[i]) return false
  }
  return true
}

/**
 * Slowest acceptable solve per hardware-class family: a fixed allowance
 * for transport and scheduling plus n³ multiply-adds at a minimum rate.
 * The CPU row is set from the reference CPU path (plain JS, one core),
 * measured at about 3.5e8 multiply-adds/s on the development machine,
 * with ~20× slack for slow and shared cores. The GPU row assumes FP64
 * GEMM in a warm worker; at n ≤ 256 a GPU's launch and transfer costs
 * dominate, so monitors should use n = 512 for GPU classes, where the
 * reference CPU path (≈0.35 s) no longer fits the GPU bound (177 ms).
 */
export const DURATION_RULES: ReadonlyArray<{ prefix: string; minMaddPerSecond: number; allowanceMs: number }> = [
  { prefix: 'gpu.', minMaddPerSecond: 5e9, allowanceMs: 150 },
  { prefix: 'cpu.', minMaddPerSecond: 2e7, allowanceMs: 250 },
]

export interface DurationJudgement {
  ok: boolean
  /** Slowest duration the class admits for this n; null for an unknown class. */
  maxMs: number | null
  reason: 'fits' | 'too-slow' | 'unknown-class' | 'bad-duration'
}

/**
 * Does `durationMs` fit the claimed hardware class? Judge the duration
 * the monitor itself measured (round trip minus ping RTT), not the one
 * the provider reports, which it could understate.
 */
export function judgeDuration(hardwareClass: string, n: number, durationMs: number): DurationJudgement {
  if (!Number.isSafeInteger(n) || n < CHALLENGE_MIN_N || n > CHALLENGE_MAX_N)
    throw new ChallengeParamsError(`expected n in [${CHALLENGE_MIN_N}, ${CHALLENGE_MAX_N}], got ${String(n)}`)
  const rule = DURATION_RULES.find((r) => hardwareClass.startsWith(r.prefix))
  if (rule === undefined) return { ok: false, maxMs: null, reason: 'unknown-class' }
  const maxMs = Math.ceil(rule.allowanceMs + (n ** 3 / rule.minMaddPerSecond) * 1000)
  if (!Number.isFinite(durationMs) || durationMs < 0) return { ok: false, maxMs, reason: 'bad-duration' }
  return durationMs <= maxMs ? { ok: true, maxMs, reason: 'fits' } : { ok: false, maxMs, reason: 'too-slow' }
}

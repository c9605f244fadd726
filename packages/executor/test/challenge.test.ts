import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import {
  CHALLENGE_PRIME,
  challengeMatrix,
  checkChallenge,
  decodeProduct,
  GpuChallengeSolver,
  judgeDuration,
  multiplyMod,
  solveChallenge,
  torchCudaAvailable,
} from '../src/index.ts'

const hasTorchCuda = await torchCudaAvailable()
const P = BigInt(CHALLENGE_PRIME)

/** Independent exact reference: BigInt arithmetic, no float64. */
function productBigInt(a: Float64Array, b: Float64Array, n: number): number[] {
  const c: number[] = []
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0n
      for (let k = 0; k < n; k++) s += BigInt(a[i * n + k]!) * BigInt(b[k * n + j]!)
      c.push(Number(s % P))
    }
  }
  return c
}

describe('compute challenge', () => {
  it('derives matrices deterministically from SHAKE128 of the seed', () => {
    const seed = new Uint8Array(32)
    const a = challengeMatrix({ seed, n: 8 }, 'A')
    const header = Buffer.alloc(4)
    header.writeUInt32BE(8)
    const stream = createHash('shake128', { outputLength: 256 }).update('tally/v1/challenge/A\0').update(seed).update(header).digest()
    expect(a[0]).toBe(stream.readUInt32LE(0) % CHALLENGE_PRIME)
    expect(a[63]).toBe(stream.readUInt32LE(252) % CHALLENGE_PRIME)
    expect(challengeMatrix({ seed, n: 8 }, 'B')).not.toEqual(a)
    expect(challengeMatrix({ seed, n: 9 }, 'A').subarray(0, 8)).not.toEqual(a.subarray(0, 8))
  })

  // The same digest comes out of an independent Python implementation of docs/PROTOCOL.md (hashlib.shake_128, big ints).
  it('pins the answer for a fixed seed (wire-format vector)', () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => i)
    const { c } = solveChallenge({ seed, n: 16 })
    expect(c.byteLength).toBe(16 * 16 * 4)
    expect(createHash('sha256').update(c).digest('hex')).toBe('0f3473f216aa1fea41d3e9a1b0b8e2e45187809dfbe516427541c68a5cccdbe7')
  })

  it('solves and checks at n = 256', () => {
    const params = { seed: randomBytes(32), n: 256 }
    const answer = solveChallenge(params)
    expect(answer.solver).toBe('cpu')
    expect(answer.c.byteLength).toBe(256 * 256 * 4)
    expect(checkChallenge(params, answer.c, 2)).toBe(true)
  })

  it('rejects a product with one element flipped, in any position', () => {
    const params = { seed: randomBytes(32), n: 64 }
    const { c } = solveChallenge(params)
    for (const idx of [0, 63, 64 * 32 + 7, 64 * 64 - 1]) {
      const bad = new Uint8Array(c)
      const view = new DataView(bad.buffer)
      view.setUint32(4 * idx, (view.getUint32(4 * idx, true) + 1) % CHALLENGE_PRIME, true)
      expect(checkChallenge(params, bad, 1), `index ${idx}`).toBe(false)
    }
  })

  it('rejects malformed answers without throwing', () => {
    const params = { seed: randomBytes(32), n: 16 }
    const { c } = solveChallenge(params)
    expect(checkChallenge(params, c.subarray(4), 1)).toBe(false)
    expect(checkChallenge(params, new Uint8Array(c.byteLength).fill(0xff), 1)).toBe(false)
    expect(checkChallenge({ ...params, seed: randomBytes(32) }, c, 1)).toBe(false)
    expect(decodeProduct(c, 17)).toBeNull()
  })

  it('refuses out-of-range parameters with ChallengeParamsError', () => {
    const name = expect.objectContaining({ name: 'ChallengeParamsError' })
    expect(() => solveChallenge({ seed: new Uint8Array(31), n: 16 })).toThrow(name)
    expect(() => solveChallenge({ seed: new Uint8Array(32), n: 4 })).toThrow(name)
    expect(() => solveChallenge({ seed: new Uint8Array(32), n: 2048 })).toThrow(name)
    expect(() => solveChallenge({ seed: new Uint8Array(32), n: 16.5 })).toThrow(name)
    expect(() => checkChallenge({ seed: new Uint8Array(32), n: 16 }, new Uint8Array(1024), 0)).toThrow(name)
  })

  it('property: the float64 product equals exact BigInt arithmetic, and Freivalds accepts it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 8, max: 20 }), (seed, n) => {
        const a = challengeMatrix({ seed, n }, 'A')
        const b = challengeMatrix({ seed, n }, 'B')
        expect(Array.from(multiplyMod(a, b, n))).toEqual(productBigInt(a, b, n))
        expect(checkChallenge({ seed, n }, solveChallenge({ seed, n }).c, 1)).toBe(true)
      }),
      { numRuns: 40 },
    )
  })

  it('property: the exactness bound holds at the largest n with the largest elements', () => {
    const n = 1024
    const max = CHALLENGE_PRIME - 1
    expect(n * max * max).toBeLessThan(2 ** 53)
    const a = new Float64Array(4 * 4).fill(max)
    expect(Array.from(multiplyMod(a, a, 4))).toEqual(productBigInt(a, a, 4))
  })

  it('property: any single corrupted element is caught', () => {
    const params = { seed: randomBytes(32), n: 12 }
    const { c } = solveChallenge(params)
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 143 }), fc.integer({ min: 1, max: CHALLENGE_PRIME - 1 }), (idx, delta) => {
        const bad = new Uint8Array(c)
        const view = new DataView(bad.buffer)
        view.setUint32(4 * idx, (view.getUint32(4 * idx, true) + delta) % CHALLENGE_PRIME, true)
        expect(checkChallenge(params, bad, 2)).toBe(false)
      }),
      { numRuns: 50 },
    )
  })

  it('judges durations against the class bounds', () => {
    const cpu = judgeDuration('cpu.x86_64', 256, 60)
    expect(cpu).toEqual({ ok: true, maxMs: Math.ceil(250 + (256 ** 3 / 2e7) * 1000), reason: 'fits' })
    expect(judgeDuration('cpu.x86_64', 256, 5000).reason).toBe('too-slow')
    expect(judgeDuration('gpu.h100', 512, 100).ok).toBe(true)
    // The reference CPU path at n = 512 (≈0.3 s) does not pass for a GPU.
    expect(judgeDuration('gpu.h100', 512, 300)).toMatchObject({ ok: false, reason: 'too-slow' })
    expect(judgeDuration('tpu.v5', 256, 1)).toEqual({ ok: false, maxMs: null, reason: 'unknown-class' })
    expect(judgeDuration('cpu.x86_64', 256, Number.NaN).reason).toBe('bad-duration')
    expect(() => judgeDuration('cpu.x86_64', 3, 1)).toThrow(expect.objectContaining({ name: 'ChallengeParamsError' }))
  })
})

describe.skipIf(!hasTorchCuda)('compute challenge on the GPU (python + torch + CUDA)', () => {
  let solver: GpuChallengeSolver | undefined
  afterAll(() => solver?.close())

  it('produces byte-identical answers to the CPU path', async () => {
    solver = await GpuChallengeSolver.start()
    expect(solver.device.length).toBeGreaterThan(0)
    for (const n of [8, 100, 256, 512]) {
      const params = { seed: randomBytes(32), n }
      const gpu = await solver.solve(params)
      expect(gpu.solver).toBe('gpu')
      expect(Buffer.from(gpu.c).equals(Buffer.from(solveChallenge(params).c)), `n=${n}`).toBe(true)
      expect(checkChallenge(params, gpu.c, 2)).toBe(true)
    }
  })
})

describe.skipIf(hasTorchCuda)('compute challenge GPU path where torch + CUDA are absent', () => {
  it('fails to start with GpuSolverError instead of hanging', async () => {
    await expect(GpuChallengeSolver.start({ startTimeoutMs: 60_000 })).rejects.toMatchObject({ name: 'GpuSolverError' })
    await expect(GpuChallengeSolver.start({ python: '/nonexistent/python3' })).rejects.toMatchObject({ name: 'GpuSolverError' })
  })
})

/**
 * Fuzzing every decoder and protocol entry point (issue 7, part 3). For
 * each target in test/fuzz/targets.ts: the seeds (valid encodings from the
 * real builders) decode; every committed corpus file in
 * test/fuzz/corpus/<target>/ replays with no violation; then
 * TALLY_FUZZ_RUNS mutated inputs (default 600, seed TALLY_FUZZ_SEED)
 * raise only typed errors and finish within the per-input bound. Prints
 * one JSON line of counts; with TALLY_RELIABILITY_OUT set, also writes it
 * to $TALLY_RELIABILITY_OUT/fuzz.json. Large mode: scripts/fuzz.ts.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { FuzzCounts, loadCorpus, runInput } from './fuzz/engine.ts'
import { inputArb } from './fuzz/mutate.ts'
import { closeTargets, targets } from './fuzz/targets.ts'

const RUNS = Number(process.env['TALLY_FUZZ_RUNS'] ?? 600)
const SEED = Number(process.env['TALLY_FUZZ_SEED'] ?? 7_000_003)
/** The slowest targets (CAR verify, the arbiter's decision) take a few ms per input on this machine: room for large runs. */
const TIMEOUT_MS = Math.max(60_000, RUNS * 40)
const counts = new FuzzCounts()
counts.targets = targets.length

afterAll(async () => {
  await closeTargets()
  const summary = counts.summary('fuzz')
  const line = JSON.stringify(summary)
  console.log(line)
  const out = process.env['TALLY_RELIABILITY_OUT']
  if (out !== undefined && out !== '') {
    await mkdir(out, { recursive: true })
    await writeFile(join(out, 'fuzz.json'), `${line}\n`)
  }
})

describe('fuzzed decoders and protocol entry points raise only typed errors', () => {
  targets.forEach((target, index) => {
    it(
      `${target.name}: seeds decode, the corpus replays, ${RUNS} mutated inputs`,
      async () => {
        const seeds = await target.seeds()
        expect(seeds.length).toBeGreaterThan(0)
        for (const s of seeds) {
          const o = await runInput(target, s)
          counts.add(target.name, o, s)
          // A seed that does not decode would leave the mutations stuck at the first check.
          expect(o.kind === 'ok' ? 'ok' : `${o.kind}: ${'reason' in o ? o.reason : o.name}`).toBe('ok')
        }

        const files = await loadCorpus(target.name)
        counts.corpus += files.length
        const failed: string[] = []
        for (const { file, bytes } of files) {
          const o = await runInput(target, bytes)
          counts.add(target.name, o, bytes)
          if (o.kind === 'violation') failed.push(`${file}: ${o.reason}`)
        }
        expect(failed).toEqual([])

        const pool = [...seeds, ...files.map((f) => f.bytes)]
        await fc.assert(
          fc.asyncProperty(inputArb(pool, target.focus), async (bytes) => {
            const o = await runInput(target, bytes)
            counts.add(target.name, o, bytes)
            if (o.kind === 'violation') throw new Error(`${target.name}: ${o.reason}`)
          }),
          { numRuns: RUNS, seed: SEED + index },
        )
      },
      TIMEOUT_MS,
    )
  })
})

/**
 * Large-mode fuzzing of every target in test/fuzz/targets.ts (the CI-size
 * run is test/fuzz.test.ts).
 *
 *   tsx scripts/fuzz.ts [--runs N] [--target name[,name]] [--minutes M] [--seed S] [--save] [--coverage]
 *
 * --runs N       mutated inputs per target (default 5000; with --minutes, the most per target)
 * --minutes M    time budget for the whole run, shared evenly by the targets
 * --target       only these targets
 * --seed S       fast-check seed (default: random, printed so a run can be repeated)
 * --save         add the seeds and every input with a new outcome (new error name or new
 *                success label, per target) to test/fuzz/corpus/<target>/ (at most 40 files
 *                and 48 KiB per target, or six times its largest seed), and each violating
 *                input as crash-<sha>.bin
 * --coverage     coverage-guided: V8 block coverage of packages/ and apps/ after each input;
 *                an input that runs a block never run before joins the mutation pool
 *
 * Prints progress, then the counts as one JSON line. Exits 1 when any input violated
 * (an untyped error escaped, or a decoder ran past the per-input bound).
 */
import { Session } from 'node:inspector/promises'
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { corpusFileName, FuzzCounts, type FuzzTarget, loadCorpus, type Outcome, outcomeKey, runInput, saveCorpusFile } from '../test/fuzz/engine.ts'
import { inputArb } from '../test/fuzz/mutate.ts'
import { closeTargets, targets } from '../test/fuzz/targets.ts'

const MAX_FILES = 40
/** Corpus bytes per target: 48 KiB, or room for six of its largest seed (the CAR exports); the whole corpus stays under 2 MB. */
const MIN_TARGET_BYTES = 48 * 1024
const BATCH = 200

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    minutes: { type: 'string' },
    target: { type: 'string', multiple: true },
    seed: { type: 'string' },
    save: { type: 'boolean', default: false },
    coverage: { type: 'boolean', default: false },
  },
})

const minutes = values.minutes === undefined ? undefined : Number(values.minutes)
const runs = values.runs === undefined ? (minutes === undefined ? 5000 : Number.MAX_SAFE_INTEGER) : Number(values.runs)
const seed = values.seed === undefined ? Math.floor(Math.random() * 0x7fffffff) : Number(values.seed)
const names = (values.target ?? []).flatMap((t) => t.split(','))
const chosen = names.length === 0 ? targets : targets.filter((t) => names.includes(t.name))
const unknown = names.filter((n) => !targets.some((t) => t.name === n))
if (unknown.length > 0 || !Number.isFinite(runs) || runs < 0 || (minutes !== undefined && !(minutes > 0))) {
  console.error(`usage: tsx scripts/fuzz.ts [--runs N] [--target name] [--minutes M] [--seed S] [--save] [--coverage]`)
  if (unknown.length > 0) console.error(`unknown target(s): ${unknown.join(', ')}; known: ${targets.map((t) => t.name).join(', ')}`)
  process.exit(2)
}

/** Blocks of our own code (packages/*\/src, apps/*\/src) run since the last call. */
class Coverage {
  readonly #session = new Session()
  readonly #seen = new Set<string>()

  async start(): Promise<void> {
    this.#session.connect()
    await this.#session.post('Profiler.enable')
    await this.#session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true })
  }

  /** How many blocks run since the last call were never run before. */
  async fresh(): Promise<number> {
    const { result } = await this.#session.post('Profiler.takePreciseCoverage')
    let n = 0
    for (const script of result) {
      if (!/\/(packages|apps)\/[^/]+\/src\//.test(script.url)) continue
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue
          const key = `${script.url}:${r.startOffset}:${r.endOffset}`
          if (!this.#seen.has(key)) {
            this.#seen.add(key)
            n++
          }
        }
      }
    }
    return n
  }

  get blocks(): number {
    return this.#seen.size
  }

  async stop(): Promise<void> {
    await this.#session.post('Profiler.stopPreciseCoverage').catch(() => undefined)
    this.#session.disconnect()
  }
}

const counts = new FuzzCounts()
counts.targets = chosen.length
const started = Date.now()
const deadline = minutes === undefined ? Number.POSITIVE_INFINITY : started + minutes * 60_000
const coverage = values.coverage ? new Coverage() : undefined
await coverage?.start()
const saved: Record<string, number> = {}
const outcomesByTarget: Record<string, Record<string, number>> = {}
let lastProgress = Date.now()

console.log(
  `fuzz: ${chosen.length} targets, seed ${seed}, ${minutes === undefined ? `${runs} runs per target` : `${minutes} min`}${values.save ? ', saving' : ''}${coverage ? ', coverage-guided' : ''}`,
)

async function fuzzTarget(target: FuzzTarget, index: number): Promise<void> {
  const until = minutes === undefined ? deadline : Date.now() + (deadline - Date.now()) / (chosen.length - index)
  const seeds = await target.seeds()
  const files = await loadCorpus(target.name)
  counts.corpus += files.length
  const pool = [...seeds, ...files.map((f) => f.bytes)]
  const known = new Set<string>()
  const outcomes: Record<string, number> = {}
  outcomesByTarget[target.name] = outcomes
  const stored = new Set(files.map((f) => f.file))
  let storedBytes = files.reduce((n, f) => n + f.bytes.byteLength, 0)
  const budget = Math.max(MIN_TARGET_BYTES, 6 * Math.max(...seeds.map((s) => s.byteLength)))
  saved[target.name] = 0

  const save = async (bytes: Uint8Array, prefix = '') => {
    if (!values.save) return
    const file = corpusFileName(bytes, prefix)
    if (stored.has(file)) return
    if (prefix === '' && (stored.size >= MAX_FILES || storedBytes + bytes.byteLength > budget)) return
    await saveCorpusFile(target.name, bytes, prefix)
    stored.add(file)
    storedBytes += bytes.byteLength
    saved[target.name] = (saved[target.name] ?? 0) + 1
  }

  const judge = async (bytes: Uint8Array, o: Outcome, fromPool: boolean) => {
    counts.add(target.name, o, bytes)
    const key = outcomeKey(o)
    outcomes[key] = (outcomes[key] ?? 0) + 1
    if (o.kind === 'error' && o.masked !== undefined && (outcomes[key] ?? 0) === 1) {
      console.log(
        `MASKED ${target.name}: ${o.name} hides a ${o.masked} (${o.cause})\n  input (${bytes.byteLength} bytes): ${Buffer.from(bytes.subarray(0, 512)).toString('hex')}`,
      )
    }
    if (o.kind === 'violation') {
      console.log(`VIOLATION ${target.name}: ${o.reason}\n  input (${bytes.byteLength} bytes): ${Buffer.from(bytes.subarray(0, 512)).toString('hex')}`)
      await save(bytes, 'crash-')
      return
    }
    const fresh = coverage === undefined ? 0 : await coverage.fresh()
    if (!known.has(key)) {
      known.add(key)
      if (!fromPool) {
        pool.push(bytes)
        await save(bytes)
      }
    } else if (fresh > 0 && !fromPool) pool.push(bytes)
  }

  for (const s of seeds) {
    await judge(s, await runInput(target, s), true)
    await save(s)
  }
  for (const f of files) await judge(f.bytes, await runInput(target, f.bytes), true)

  const arb = inputArb(pool, target.focus)
  let done = 0
  for (let batch = 0; done < runs && Date.now() < until; batch++) {
    const inputs = fc.sample(arb, { numRuns: Math.min(BATCH, runs - done), seed: seed + index * 1_000_003 + batch })
    for (const bytes of inputs) {
      await judge(bytes, await runInput(target, bytes), false)
      done++
      if (Date.now() >= until) break
    }
    if (Date.now() - lastProgress > 5_000) {
      lastProgress = Date.now()
      const rate = Math.round(counts.cases / ((Date.now() - started) / 1000))
      console.log(
        `  ${target.name}: ${done} inputs, ${Object.keys(outcomes).length} outcomes, pool ${pool.length}${coverage ? `, ${coverage.blocks} blocks` : ''}; total ${counts.cases} cases (${rate}/s), ${counts.violations} violations`,
      )
    }
  }
  const top = Object.entries(outcomes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ')
  console.log(`${target.name}: ${done} inputs; saved ${saved[target.name]}; ${top}`)
}

try {
  for (const [i, t] of chosen.entries()) await fuzzTarget(t, i)
} finally {
  await coverage?.stop()
  await closeTargets()
}

console.log(
  JSON.stringify(
    counts.summary('fuzz', {
      seed,
      seconds: Math.round((Date.now() - started) / 1000),
      ...(values.save ? { saved } : {}),
      ...(coverage ? { blocks: coverage.blocks } : {}),
      ...(Object.keys(counts.maskedByName).length > 0 ? { masked: counts.maskedByName } : {}),
      ...(counts.violations > 0 ? { violationList: counts.violationList } : {}),
    }),
  ),
)
process.exit(counts.violations > 0 ? 1 : 0)

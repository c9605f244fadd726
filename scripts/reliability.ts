/**
 * `pnpm reliability`: the reliability suites of docs/RELIABILITY.md at
 * their large size (CI runs them small as part of `pnpm test`): the crash
 * campaign, partitions, fuzzing, adversarial peers and disk faults. Each
 * suite reports its counts; the table at the end is what RELIABILITY.md
 * quotes. Exits 1 if any suite fails or counts a violation.
 *
 *   pnpm reliability                      every suite, large size
 *   pnpm reliability -- --only crash,fuzz  some suites
 *   pnpm reliability -- --size ci         the CI size (quick check of this script)
 *   pnpm reliability -- --seed 42         repeat a crash campaign's schedule
 */
import '@tally/core'
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { runCampaign } from './lib/campaign.ts'
import { killAllSync, stopAll } from './lib/processes.ts'

const root = resolve(import.meta.dirname, '..')
const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: 'large' },
    only: { type: 'string' },
    out: { type: 'string', default: join(root, 'out/reliability') },
    seed: { type: 'string' },
  },
})
if (args.size !== 'large' && args.size !== 'ci') {
  process.stderr.write('--size is large or ci\n')
  process.exit(2)
}
const large = args.size === 'large'
const out = resolve(args.out)
const t0 = Date.now()
const say = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)}s] ${msg}\n`)

interface Suite {
  name: string
  run: () => Promise<boolean>
}

/** A vitest run of some files, with the size and the counts directory in its environment. */
function vitest(files: string[], env: Record<string, string> = {}): () => Promise<boolean> {
  return () =>
    new Promise((done) => {
      const child = spawn(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...files], {
        cwd: root,
        env: { ...process.env, TALLY_SCALE: args.size, TALLY_RELIABILITY_OUT: join(out, 'counts'), ...env },
        stdio: ['ignore', 'inherit', 'inherit'],
      })
      child.once('exit', (code) => done(code === 0))
    })
}

const suites: Suite[] = [
  {
    name: 'crash',
    run: async () => {
      const dir = join(out, 'crash')
      await rm(dir, { recursive: true, force: true })
      await mkdir(dir, { recursive: true })
      const seed = Number(args.seed ?? Date.now() % 1_000_000)
      say(`crash campaign, seed ${seed} (repeat with --seed ${seed}); data in ${dir}`)
      const result = await runCampaign({
        out: dir,
        seed,
        providers: large ? 3 : 2,
        monitors: 3,
        rounds: large ? 8 : 2,
        roundGapMs: large ? 6_000 : 3_000,
        epochs: large ? 6 : 4,
        epochMs: 2_000,
        killEveryMs: [500, 2_500],
        downMs: [200, 1_500],
        deadlineMs: large ? 20 * 60_000 : 150_000,
        say: (m) => say(`  ${m}`),
      })
      await mkdir(join(out, 'counts'), { recursive: true })
      await writeFile(join(out, 'counts', 'crash-campaign.json'), `${JSON.stringify({ suite: 'crash-campaign', ...result })}\n`)
      for (const v of result.violations) say(`  VIOLATION ${v}`)
      return result.violations.length === 0
    },
  },
  { name: 'partitions', run: vitest(['test/partitions.test.ts']) },
  { name: 'fuzz', run: vitest(['./test/fuzz.test.ts', './test/fuzz-handlers.test.ts'], { TALLY_FUZZ_RUNS: large ? '20000' : '300' }) },
  { name: 'adversaries', run: vitest(['packages/node/test/adversaries']) },
  { name: 'disk', run: vitest(['packages/lineage/test/disk-faults.test.ts', 'packages/node/test/disk-faults.test.ts', 'test/disk-faults.test.ts']) },
]

async function main(): Promise<void> {
  const only = args.only?.split(',').map((s) => s.trim())
  const unknown = only?.filter((n) => !suites.some((s) => s.name === n)) ?? []
  if (unknown.length > 0) {
    process.stderr.write(`unknown suite ${unknown.join(', ')}; suites: ${suites.map((s) => s.name).join(', ')}\n`)
    process.exit(2)
  }
  await rm(join(out, 'counts'), { recursive: true, force: true })
  await mkdir(join(out, 'counts'), { recursive: true })
  const outcome: { name: string; ok: boolean; seconds: number }[] = []
  for (const s of suites) {
    if (only !== undefined && !only.includes(s.name)) continue
    const started = Date.now()
    say(`suite ${s.name} (${args.size})`)
    const ok = await s.run().catch((err: unknown) => {
      say(`suite ${s.name} failed: ${err instanceof Error ? err.message : String(err)}`)
      return false
    })
    await stopAll()
    outcome.push({ name: s.name, ok, seconds: Math.round((Date.now() - started) / 1000) })
  }

  // The counts every suite wrote, as one table.
  const rows: Record<string, unknown>[] = []
  for (const f of (await readdir(join(out, 'counts'))).sort()) {
    if (f.endsWith('.json')) rows.push(JSON.parse(await readFile(join(out, 'counts', f), 'utf8')) as Record<string, unknown>)
  }
  const lines = [`# Reliability run, ${new Date().toISOString()}, size ${args.size}`, '', '| suite | counts | violations |', '| --- | --- | --- |']
  let violations = 0
  for (const r of rows) {
    const v = Array.isArray(r['violations']) ? r['violations'].length : Number(r['violations'] ?? 0)
    violations += v
    const counts = Object.entries(r)
      .filter(([k]) => k !== 'suite' && k !== 'violations')
      .map(([k, x]) => `${k} ${typeof x === 'object' ? JSON.stringify(x) : String(x)}`)
      .join(', ')
    lines.push(`| ${String(r['suite'])} | ${counts} | ${v} |`)
  }
  lines.push('', ...outcome.map((o) => `- ${o.name}: ${o.ok ? 'passed' : 'FAILED'} in ${o.seconds} s`))
  const summary = `${lines.join('\n')}\n`
  await writeFile(join(out, 'summary.md'), summary)
  process.stdout.write(`\n${summary}\nwritten to ${join(out, 'summary.md')}\n`)
  if (violations > 0 || outcome.some((o) => !o.ok)) process.exitCode = 1
}

process.on('SIGINT', () => {
  killAllSync()
  process.exit(130)
})
process.on('uncaughtException', (err) => {
  process.stderr.write(`reliability: ${err.stack ?? err.message}\n`)
  killAllSync()
  process.exit(1)
})
main().catch(async (err: unknown) => {
  process.stderr.write(`reliability failed: ${err instanceof Error ? err.message : String(err)}\n`)
  await stopAll()
  process.exit(1)
})

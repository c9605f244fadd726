/**
 * `pnpm bench [area ...] [--json] [--quick]` runs the benchmarks in
 * scripts/bench/<area>.ts (all areas when none is named) and prints a
 * table, or one JSON object per line with --json.
 */
import '@tally/core'
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchResult } from './bench/result.ts'

interface BenchModule {
  run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]>
}

const here = join(dirname(fileURLToPath(import.meta.url)), 'bench')
const args = process.argv.slice(2).filter((a) => a !== '--')
const json = args.includes('--json')
const quick = args.includes('--quick')
const wanted = args.filter((a) => !a.startsWith('--'))

const available = (await readdir(here)).filter((f) => f.endsWith('.ts') && f !== 'result.ts').map((f) => f.replace(/\.ts$/, ''))
const areas = wanted.length === 0 ? available : available.filter((a) => wanted.some((w) => a === w || a.startsWith(`${w}-`)))
const unknown = wanted.filter((w) => !available.some((a) => a === w || a.startsWith(`${w}-`)))
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark area: ${unknown.join(', ')} (available: ${available.join(', ')})\n`)
  process.exit(2)
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2))
let failed = 0
for (const area of areas) {
  const mod = (await import(join(here, `${area}.ts`))) as BenchModule
  if (!json) process.stdout.write(`\n# ${area}\n`)
  const results = await mod.run({ json, quick })
  for (const r of results) {
    const met = r.target === undefined ? undefined : r.target.op === '>=' ? r.value >= r.target.value : r.value <= r.target.value
    if (met === false) failed++
    if (json) {
      process.stdout.write(`${JSON.stringify({ name: r.name, value: r.value, unit: r.unit, limit: r.limit })}\n`)
    } else {
      const target = r.target === undefined ? '' : `  target ${r.target.op} ${fmt(r.target.value)} ${met ? 'ok' : 'MISSED'}`
      const ratio = r.limit.unit === r.unit && r.limit.value !== 0 ? `  (${((r.value / r.limit.value) * 100).toFixed(1)}% of limit)` : ''
      process.stdout.write(
        `${r.name.padEnd(32)} ${fmt(r.value).padStart(12)} ${r.unit.padEnd(10)} limit ${r.limit.name}: ${fmt(r.limit.value)} ${r.limit.unit}${ratio}${target}\n`,
      )
    }
  }
}
if (!json && failed > 0) process.stdout.write(`\n${failed} figure(s) missed their target\n`)

import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildScenario, exportBytes } from '../apps/explorer/test/scenario.ts'

const root = resolve(import.meta.dirname, '..')
const cli = join(root, 'apps/cli/src/main.ts')
let dir = ''
let good = ''
let bytes: Uint8Array

function tally(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr })
    })
  })
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tally-cli-'))
  const scenario = await buildScenario()
  bytes = await exportBytes(scenario)
  good = join(dir, 'pair.car')
  await writeFile(good, bytes)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** `tally verify` and `tally inspect` as an auditor runs them: real processes, real exports. */
describe('tally verify / inspect', () => {
  it('exits 0 with a summary of pair, parties, chains, checkpoints and balances for a valid export', async () => {
    const r = await tally('verify', good)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^valid pair log/)
    expect(r.stdout).toMatch(/provider: +12D3KooW\w+ +entries \d+/)
    expect(r.stdout).toMatch(/checkpoints: \d+/)
    expect(r.stdout).toMatch(/balance USD: authorised \d+, paid \d+/)
    const j = await tally('--json', 'verify', good)
    const report = JSON.parse(j.stdout) as { ok: boolean; chains: { provider: { entries: number } }; settlement: { deals: number } }
    expect(report.ok).toBe(true)
    expect(report.chains.provider.entries).toBeGreaterThan(5)
    expect(report.settlement.deals).toBe(1)
  })

  it('exits 1 naming the first bad entry when one byte of the export changes', async () => {
    const bad = bytes.slice()
    const at = Math.floor(bad.byteLength * 0.6)
    bad[at] = (bad[at]! + 1) % 256
    const file = join(dir, 'tampered.car')
    await writeFile(file, bad)
    const r = await tally('--json', 'verify', file)
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout) as { ok: boolean; firstProblem: { code: string; author?: string; seq?: number; cid?: string } }
    expect(report.ok).toBe(false)
    expect(report.firstProblem.code).toMatch(/Error$/)
    expect(report.firstProblem.author ?? report.firstProblem.cid).toBeDefined()
    const human = await tally('verify', file)
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/INVALID pair log[\s\S]*first bad: (entry|block)/)
  })

  it('exits 2 for a file that cannot be opened or a usage error, with one clear line', async () => {
    const missing = await tally('verify', join(dir, 'nope.car'))
    expect(missing.code).toBe(2)
    expect(missing.stderr.trim().split('\n')).toHaveLength(1)
    expect(missing.stderr).toMatch(/cannot open/)
    expect((await tally('verify')).code).toBe(2)
    expect((await tally('no-such-command')).code).toBe(2)
  })

  it('inspect prints both chains as a timeline', async () => {
    const r = await tally('inspect', good)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/P#1 open/)
    expect(r.stdout).toMatch(/C#\d+ proposal/)
    expect(r.stdout).toMatch(/evaluation .*verdict=performed/)
    const j = JSON.parse((await tally('--json', 'inspect', good)).stdout) as { valid: boolean; entries: { kind: string }[] }
    expect(j.valid).toBe(true)
    expect(j.entries.map((e) => e.kind)).toContain('ruling')
  })
})

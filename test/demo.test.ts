import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '..')
let dir = ''

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true })
})

/** The main job, as a user runs it: `pnpm demo -- --json`, separate processes of the real binaries. */
describe('pnpm demo', () => {
  it('settles a fanned-out job across three providers, rules the dispute, verifies the exports and leaves no process behind', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-demo-'))
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'scripts/demo.ts'), '--json'], {
      cwd: root,
      env: { ...process.env, TALLY_DEMO_OUT: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const code = await new Promise<number | null>((r) => child.once('exit', r))
    expect(code, stderr.slice(-2000)).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      deals: { provider: string; jurisdiction: string; state: string; epochsPerformed: number; paid: number }[]
      disputes: { provider: string; status: string; rulings: { appeal: boolean }[] }[]
      exports: { verified: boolean }[]
      explorer: { status: number }
      killed: string
    }
    expect(summary.deals).toHaveLength(3)
    expect(new Set(summary.deals.map((d) => d.jurisdiction)).size).toBe(3)
    for (const d of summary.deals) expect(d.state).toBe('certified')
    expect(summary.disputes.length).toBeGreaterThan(0)
    for (const x of summary.disputes) {
      expect(x.status).toBe('final')
      expect(x.rulings.length).toBeGreaterThan(0)
    }
    expect(summary.disputes.some((x) => x.provider === summary.killed)).toBe(true)
    // The killed provider's workload ran through the outage, so it appeals; the appeal arbiter's ruling is the final one.
    expect(summary.disputes.some((x) => x.rulings.some((r) => r.appeal))).toBe(true)
    expect(summary.exports).toHaveLength(3)
    for (const e of summary.exports) expect(e.verified).toBe(true)
    expect(summary.explorer.status).toBe(200)
    // Nothing the demo started is still running.
    const { stdout: ps } = await promisify(execFile)('ps', ['-eo', 'args'])
    expect(ps.split('\n').filter((l) => l.includes(dir))).toEqual([])
  }, 420_000)
})

/**
 * The crash campaign at CI size (issue 7, part 1): real provider, consumer,
 * monitor and arbiter processes settle deals while one of them at a time
 * is SIGKILLed at a random moment and restarted. The invariants are
 * checked on the disks at the end; see scripts/lib/campaign.ts. The large
 * size runs from `pnpm reliability`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCampaign } from '../scripts/lib/campaign.ts'
import { stopAll } from '../scripts/lib/processes.ts'

let dir = ''

afterAll(async () => {
  await stopAll()
  if (dir !== '' && process.env['TALLY_KEEP'] === undefined) await rm(dir, { recursive: true, force: true })
})

describe('crash campaign', () => {
  it('loses nothing acknowledged, pays nothing twice and settles every deal across random SIGKILLs of every role', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-crash-'))
    const seed = Number(process.env['TALLY_SEED'] ?? Date.now() % 1_000_000)
    const result = await runCampaign({
      out: dir,
      seed,
      providers: 2,
      monitors: 3,
      rounds: 2,
      roundGapMs: 3_000,
      epochs: 4,
      epochMs: 2_000,
      killEveryMs: [500, 2_500],
      downMs: [200, 1_500],
      deadlineMs: 150_000,
      say: process.env['TALLY_VERBOSE'] !== undefined ? (m) => process.stderr.write(`[campaign] ${m}\n`) : undefined,
    })
    const line = JSON.stringify({ suite: 'crash-campaign', ...result, violations: result.violations.length })
    console.log(line)
    const out = process.env['TALLY_RELIABILITY_OUT']
    if (out !== undefined) {
      await mkdir(out, { recursive: true })
      await writeFile(join(out, 'crash-campaign.json'), `${JSON.stringify({ suite: 'crash-campaign', ...result })}\n`)
    }
    expect(result.violations, `seed ${seed}; data in ${dir}`).toEqual([])
    expect(result.killsTotal).toBeGreaterThan(0)
    expect(result.deals).toBeGreaterThanOrEqual(2)
    expect(result.deals).toBe(result.proposed)
    expect(result.settled).toBe(result.deals)
    expect(result.sampled).toBeGreaterThan(0)
    expect(result.payments).toBeGreaterThan(0)
  }, 420_000)
})

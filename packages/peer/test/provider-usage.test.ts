/**
 * The provider's usage claim after a stall of its own daemon (SIGSTOP, CPU
 * starvation): the executor's samples catch up only once the event loop
 * runs again, so an epoch reported the moment the daemon wakes must wait
 * for them, however late the clock says it is. Found by the partition
 * suite (test/partitions.test.ts): a paused provider's workload ran on,
 * yet it claimed no service for epochs it had not metered yet.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLog } from '@tally/daemon'
import type { CID } from '@tally/core'
import { MemoryStore } from '@tally/lineage'
import { afterAll, describe, expect, it } from 'vitest'
import { attestation, provider, TestPair, terms } from '../../deal/test/helpers.ts'
import { ProviderHooks } from '../src/provider-hooks.ts'

const EPOCH_MS = 1_000
let dir = ''
let running: { hooks: ProviderHooks; deal: Parameters<ProviderHooks['usage']>[0] } | undefined

afterAll(async () => {
  if (running !== undefined) await running.hooks.stopWorkload(running.deal)
  if (dir !== '') await rm(dir, { recursive: true, force: true })
})

/** A deal accepted now, running a real (idle) workload for six one-second epochs. */
function dealStartingNow() {
  const t = terms({ epochMs: EPOCH_MS, epochs: 6, maxEpochs: 6, collateral: { amount: 0, asset: 'USD' } })
  const p = new TestPair()
  const now = Date.now()
  const proposal = p.append('consumer', 'proposal', { terms: t }, now - 2)
  p.append('provider', 'acceptance', { deal: proposal.cid, offer: proposal.cid }, now)
  p.append('provider', 'attestation', { deal: proposal.cid, attestation: attestation(now, t.resources.class, t.resources.count) }, now + 1)
  p.append('consumer', 'manifest', { deal: proposal.cid, workload: { command: ['/usr/bin/sleep', '20'], env: {}, limits: { wallMs: 20_000 } } }, now + 2)
  return p.state.deals.get((proposal.cid as CID).toString())!
}

/** Block the event loop, as SIGSTOP does from the process's point of view: every timer fires late, all at once. */
function stall(untilMs: number): void {
  while (Date.now() < untilMs) {}
}

describe('provider usage claims after a stall of the daemon', () => {
  it('waits for the executor to catch up instead of claiming no service for an epoch the workload ran', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-provider-usage-'))
    const deal = dealStartingNow()
    const hooks = new ProviderHooks({
      identity: provider,
      store: new MemoryStore(),
      workDir: dir,
      offer: () => undefined,
      log: createLog('test', { level: 'error' }),
      // No monitors here: the claim rests on the executor alone.
      observations: undefined,
    })
    running = { hooks, deal }
    await hooks.startWorkload(deal)
    const start = deal.start!
    // Metered in real time up to late in epoch 1, then frozen until well after epoch 2 has ended: when the daemon
    // wakes, no sample of epoch 2 exists yet, though the workload ran all through it.
    await new Promise((r) => setTimeout(r, start + 2 * EPOCH_MS - 300 - Date.now()))
    expect((await hooks.usage(deal, 0))?.claimBp).toBe(10_000)
    stall(start + 3 * EPOCH_MS + 1_200)
    const first = await hooks.usage(deal, 2)
    // Not "served: no" (claimBp 0) while the samples are still to come: nothing yet, then the caught-up claim.
    expect(first?.claimBp).not.toBe(0)
    let u = first
    while (u === undefined) {
      await new Promise((r) => setTimeout(r, 20))
      u = await hooks.usage(deal, 2)
    }
    expect(u.claimBp).toBe(10_000)
    expect(u.metered.wallMs).toBeGreaterThan(0)
  }, 30_000)
})

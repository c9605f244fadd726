/**
 * @tally/deal over @tally/lineage's real pair log: two parties append and
 * ingest, each reduces what it stores; the export verifies offline with
 * the deal replay as verifyExport's hook, and an illegal transition the
 * consumer keeps in its own chain is named by verify.
 */
import type { EntryBlock, EntryKind } from '@tally/core'
import { describe, expect, it } from 'vitest'
import {
  buildAck,
  buildCertificate,
  buildClose,
  buildEvaluation,
  buildVoucher,
  initialState,
  type PairState,
  reduce,
  replay,
} from '../packages/deal/src/index.ts'
import {
  attestation,
  consumer,
  endOf,
  monitors,
  observation,
  provider,
  resetObservationSeqs,
  T0,
  terms,
  usageFigures,
  workload,
} from '../packages/deal/test/helpers.ts'
import { exportPairLogBytes, MemoryStore, PairLog, verifyExport } from '../packages/lineage/src/index.ts'

const now = () => T0 + 86_400_000

async function sync(from: PairLog, to: PairLog): Promise<void> {
  const have = to.heads()[from.role]?.seq ?? 0
  const blocks: EntryBlock[] = []
  for await (const b of from.range(from.me, have + 1)) blocks.push(b)
  if (blocks.length > 0) await to.ingest(blocks)
}

describe('deal over a real pair log', () => {
  it('settles, exports, verifies; an illegal voucher is flagged by verify', async () => {
    resetObservationSeqs()
    const pair = { provider: provider.peerId, consumer: consumer.peerId }
    const logs = {
      provider: await PairLog.open(new MemoryStore(), pair, provider, { now }),
      consumer: await PairLog.open(new MemoryStore(), pair, consumer, { now }),
    }
    // Each party reduces every entry it stores, its own and its counterparty's, as live validation.
    const states: Record<'provider' | 'consumer', PairState> = { provider: initialState(pair), consumer: initialState(pair) }
    for (const role of ['provider', 'consumer'] as const) {
      logs[role].subscribe((ev) => {
        states[role] = reduce(states[role], ev.block)
      })
    }
    const append = async (role: 'provider' | 'consumer', kind: EntryKind, body: unknown, time: number) => {
      const b = await logs[role].append(kind, body, { time })
      await sync(logs[role], logs[role === 'provider' ? 'consumer' : 'provider'])
      return b
    }

    const t = terms({ epochs: 2, maxEpochs: 2, appealArbiter: null })
    const proposal = await append('consumer', 'proposal', { terms: t }, T0 - 1000)
    const deal = proposal.cid
    await append('provider', 'acceptance', { deal, offer: deal }, T0)
    await append('provider', 'collateral', { deal, amount: t.collateral }, T0 + 1)
    await append('provider', 'attestation', { deal, attestation: attestation(T0) }, T0 + 2)
    await append('consumer', 'manifest', { deal, workload }, T0 + 3)
    for (const e of [0, 1]) {
      await append('provider', 'usage', { deal, epoch: e, ...usageFigures() }, endOf(e))
      for (const m of [monitors[0], monitors[1]]) await append('consumer', 'observation', { deal, observation: observation(m, e, 100) }, endOf(e) + 10)
      await append('consumer', 'evaluation', buildEvaluation(states.consumer, deal, e), endOf(e) + 20)
      await append('consumer', 'voucher', buildVoucher(states.consumer, deal), endOf(e) + 30)
      await append('provider', 'ack', buildAck(states.provider, deal), endOf(e) + 40)
    }
    await append('consumer', 'close', buildClose(deal, 'completed'), endOf(1) + 100)
    await append('provider', 'certificate', buildCertificate(provider, states.provider, deal, endOf(1) + 200), endOf(1) + 200)
    await append('consumer', 'certificate', buildCertificate(consumer, states.consumer, deal, endOf(1) + 300), endOf(1) + 300)
    expect(states.consumer.deals.get(deal.toString())?.status).toBe('certified')
    expect(states.provider.balances).toEqual(states.consumer.balances)

    const hook = (timeline: EntryBlock[]) => replay(timeline).problems
    const good = await verifyExport(await exportPairLogBytes(logs.consumer), { replay: hook })
    expect(good.problems).toEqual([])
    expect(good.ok).toBe(true)

    // The consumer keeps a decreasing voucher in its own chain; the provider's reducer refuses it, verify names it.
    const bad = await logs.consumer.append('voucher', { deal, amount: { amount: 1, asset: 'USD' }, authorisedBy: [] }, { time: endOf(1) + 400 })
    expect(() => reduce(states.provider, bad)).toThrow(expect.objectContaining({ name: 'DealClosedError' }))
    const report = await verifyExport(await exportPairLogBytes(logs.consumer), { replay: hook })
    expect(report.ok).toBe(false)
    expect(report.firstProblem).toMatchObject({ code: 'DealClosedError', cid: bad.cid.toString() })
    await logs.provider.close()
    await logs.consumer.close()
  })
})

import { encode } from '@tally/core'
import { buildEvaluation, buildEvidenceAnswer, buildEvidenceRequest, buildRuling, type DealState } from '@tally/deal'
import { afterEach, describe, expect, it } from 'vitest'
import { decideCase, type Decision } from '../src/decide.ts'
import { usageFigures } from '../../../packages/deal/test/helpers.ts'
import { appealArbiter, arbiter, divergenceCase, endOf, monitors, observation, outsider, Scenario, silentCase, terms } from './scenario.ts'

let open: Scenario | undefined
afterEach(async () => {
  await open?.close()
  open = undefined
})

const ctx = (now: number, id = arbiter) => ({ arbiter: id.peerId, identity: id, now })

function ruled(d: Decision) {
  if (d.type !== 'ruling') throw new Error(`expected a ruling, got ${d.type}${d.type === 'refusal' ? ` ${d.code}: ${d.message}` : ''}`)
  return d
}

describe('decideCase: arbitration policy v1 over a real record', () => {
  it('rules a divergence dispute against the provider; the ruling is deterministic and the reducer accepts it', async () => {
    const { s, deal, dispute } = await divergenceCase()
    open = s
    const record = await s.record()
    const c = { pair: s.pair, deal, dispute, appeal: false }
    const d = ruled(await decideCase(record, c, ctx(endOf(1) + 500)))
    const body = d.ruling.body
    expect(d.ruling.by).toBe(arbiter.peerId)
    expect(body.epochs).toEqual([1])
    expect(body.award.toProvider).toEqual({ amount: 0, asset: 'USD' })
    // ⌊500 bonded × 1 proven epoch / 3-epoch term⌋
    expect(body.award.collateralToConsumer).toEqual({ amount: 166, asset: 'USD' })
    expect(body.appealOf).toBeNull()
    expect(body.issuedAt).toBe(s.state.time)
    const ep1 = (s.deal(deal) as DealState).epochs.get('1')!
    expect(body.relied.map(String)).toEqual([ep1.usage!.cid, ...ep1.observations.map((o) => o.cid)].map(String))
    expect(body.reasons).toMatch(/down: not performed/)
    expect(d.findings).toMatchObject([{ epoch: 1, performed: false, proven: true, amount: 0 }])

    // Same record, another clock and a second run: byte-identical ruling.
    const again = ruled(await decideCase(await s.record('provider'), c, ctx(endOf(1) + 99_999)))
    expect(encode(again.ruling)).toEqual(encode(d.ruling))

    // Both halves accept it: the consumer relays, the provider's reducer validates on ingest.
    await s.append('consumer', 'ruling', buildRuling(deal, d.ruling), endOf(1) + 1000)
    for (const role of ['provider', 'consumer'] as const) {
      const disp = s.states[role].deals.get(deal.toString())?.disputes.get(dispute.toString())
      expect(disp?.status).toBe('ruled')
    }
  })

  it('refuses a deal that names another arbiter, a tampered record, the wrong stage and unknown disputes', async () => {
    const { s, deal, dispute } = await divergenceCase({ arbiter: outsider.peerId })
    open = s
    const record = await s.record()
    const c = { pair: s.pair, deal, dispute, appeal: false }
    expect(await decideCase(record, c, ctx(endOf(2)))).toMatchObject({ type: 'refusal', code: 'not-arbiter' })

    const tampered = record.slice()
    tampered[Math.floor(tampered.byteLength * 0.6)]! ^= 0x01
    const bad = await decideCase(tampered, c, ctx(endOf(2), outsider))
    expect(bad).toMatchObject({ type: 'refusal', code: 'invalid-record' })
    expect(bad.type === 'refusal' && bad.message).toMatch(/does not verify: \w+Error/)

    // The appeal arbiter has nothing to decide while the dispute is not appealed.
    expect(await decideCase(record, { ...c, appeal: true }, ctx(endOf(2), appealArbiter))).toMatchObject({ type: 'refusal', code: 'not-appealed' })
    expect(await decideCase(record, { ...c, dispute: deal }, ctx(endOf(2), outsider))).toMatchObject({ type: 'refusal', code: 'unknown-dispute' })
    expect(await decideCase(record, { ...c, pair: { ...s.pair, consumer: outsider.peerId } }, ctx(endOf(2), outsider))).toMatchObject({
      type: 'refusal',
      code: 'wrong-pair',
    })
    expect(await decideCase(record.subarray(0, 40), c, ctx(endOf(2), outsider))).toMatchObject({ type: 'refusal', code: 'invalid-record' })
  })

  it('asks the provider once when no contract monitor reported, then rules on what the answer brought', async () => {
    const { s, deal, dispute } = await silentCase()
    open = s
    const c = { pair: s.pair, deal, dispute, appeal: false }
    const now = endOf(1) + 200
    const asked = await decideCase(await s.record(), c, ctx(now))
    if (asked.type !== 'evidence-request') throw new Error(`expected an evidence request, got ${asked.type}`)
    expect(asked.request.body).toMatchObject({ party: 'provider', issuedAt: now, deadline: now + 30_000 })
    expect(asked.request.body.question).toMatch(/epoch 1/)

    // Relayed (by both parties: two copies of one document) but unanswered: the arbiter waits.
    const req = await s.append('consumer', 'evidence-request', buildEvidenceRequest(deal, asked.request), endOf(1) + 300)
    await s.append('provider', 'evidence-request', buildEvidenceRequest(deal, asked.request), endOf(1) + 310)
    expect(await decideCase(await s.record(), c, ctx(now + 1000))).toMatchObject({ type: 'refusal', code: 'evidence-pending' })

    // The provider attaches two contract monitors' late observations (up) and answers naming them.
    const obs = await s.observe(deal, 1, [100, 100, null], endOf(1) + 400, 'provider')
    const answer = await s.append(
      'provider',
      'evidence-answer',
      buildEvidenceAnswer(
        deal,
        req.cid,
        'monitor gossip was delayed',
        obs.map((b) => b.cid),
      ),
      endOf(1) + 500,
    )
    // One copy answered settles the request; the other copy still open does not hold the case up.
    expect(s.deal(deal).openRequests).toHaveLength(1)
    const d = ruled(await decideCase(await s.record(), c, ctx(now + 2000)))
    expect(d.ruling.body.award.toProvider.amount).toBe(1000)
    expect(d.ruling.body.award.collateralToConsumer.amount).toBe(0)
    expect(d.ruling.body.relied.map(String)).toEqual(expect.arrayContaining([...obs.map((b) => b.cid), answer.cid].map(String)))
    await s.append('consumer', 'ruling', buildRuling(deal, d.ruling), endOf(1) + 600)
  })

  it('rules against a provider that lets the evidence request time out (missing: hold), without forfeiting collateral', async () => {
    const { s, deal, dispute } = await silentCase()
    open = s
    const c = { pair: s.pair, deal, dispute, appeal: false }
    const now = endOf(1) + 200
    const asked = await decideCase(await s.record(), c, ctx(now))
    if (asked.type !== 'evidence-request') throw new Error('expected an evidence request')
    const req = await s.append('consumer', 'evidence-request', buildEvidenceRequest(deal, asked.request), endOf(1) + 300)
    await s.append('consumer', 'timeout', { deal, duty: 'evidence-answer', ref: req.cid, epoch: null }, asked.request.body.deadline)
    const d = ruled(await decideCase(await s.record(), c, ctx(now + 60_000)))
    expect(d.ruling.body.award).toEqual({ toProvider: { amount: 0, asset: 'USD' }, collateralToConsumer: { amount: 0, asset: 'USD' } })
    expect(d.ruling.body.reasons).toMatch(/burden of proof/)
  })

  it('weighs challenges, splits and the envelope: a failed challenge votes down, an even split goes by the metered figures', async () => {
    const s = await Scenario.open()
    open = s
    const deal = await s.activeDeal(terms({ epochs: 4, maxEpochs: 4 }))
    const failed = [{ kind: 'identity' as const, ok: false, durationMs: 3 }]
    // Epoch 0: all three monitors measured 100 %, but two of them had the identity challenge fail; the rule ignores challenges, so it evaluates performed.
    await s.append('provider', 'usage', { deal, epoch: 0, ...usageFigures() }, endOf(0))
    await s.append('consumer', 'observation', { deal, observation: observation(monitors[0], 0, 100) }, endOf(0) + 1)
    for (const m of [monitors[1], monitors[2]]) {
      await s.append('consumer', 'observation', { deal, observation: observation(m, 0, 100, { challenges: failed }) }, endOf(0) + 2)
    }
    expect(buildEvaluation(s.state, deal, 0).verdict).toBe('performed')
    const d0 = await s.append('consumer', 'dispute', { deal, epochs: [0], reason: 'the provider failed identity challenges' }, endOf(0) + 10)
    // Epoch 1: one monitor up, one down, quorum 2: split, disputed by itself; the executor metered the whole epoch.
    await s.append('provider', 'usage', { deal, epoch: 1, ...usageFigures() }, endOf(1))
    await s.observe(deal, 1, [100, 10, null], endOf(1) + 1)
    const e1 = await s.append('consumer', 'evaluation', buildEvaluation(s.state, deal, 1), endOf(1) + 30)
    // Epoch 2: monitors down, but the consumer's workload used more memory than its manifest allowed.
    await s.append(
      'provider',
      'usage',
      { deal, epoch: 2, ...usageFigures(), metered: { wallMs: 60_000, cpuMs: 1, maxRssBytes: 2 ** 31, gpuMs: null } },
      endOf(2),
    )
    await s.observe(deal, 2, [5, 5, null], endOf(2) + 1)
    const e2 = await s.append('consumer', 'evaluation', buildEvaluation(s.state, deal, 2), endOf(2) + 30)
    const record = await s.record()
    const judge = async (dispute: typeof d0.cid) => ruled(await decideCase(record, { pair: s.pair, deal, dispute, appeal: false }, ctx(endOf(3))))

    const r0 = await judge(d0.cid)
    expect(r0.findings).toMatchObject([{ epoch: 0, performed: false, proven: true }])
    expect(r0.ruling.body.award.collateralToConsumer.amount).toBe(125)
    expect(r0.ruling.body.reasons).toMatch(/with a failed challenge \(down/)
    const r1 = await judge(e1.cid)
    expect(r1.findings).toMatchObject([{ epoch: 1, performed: true, amount: 1000 }])
    expect(r1.ruling.body.reasons).toMatch(/evenly split; the executor metered the workload for 100.00%/)
    const r2 = await judge(e2.cid)
    expect(r2.findings).toMatchObject([{ epoch: 2, performed: false, proven: false }])
    expect(r2.ruling.body.award.collateralToConsumer.amount).toBe(0)
    expect(r2.ruling.body.reasons).toMatch(/exceeded its manifest's envelope/)
  })
})

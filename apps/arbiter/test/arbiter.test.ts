import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encode, type Identity } from '@tally/core'
import { createLog, Metrics } from '@tally/daemon'
import {
  buildAck,
  buildAppeal,
  buildCertificate,
  buildClose,
  buildEvaluation,
  buildEvidenceAnswer,
  buildEvidenceRequest,
  buildRuling,
  buildVoucher,
  duties,
  type Ruling,
} from '@tally/deal'
import { caseIdOf, createTallyNode, localNetwork, multiaddr, submitCase, type TallyNode } from '@tally/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Arbiter } from '../src/arbiter.ts'
import { arbiterSettingsSchema } from '../src/config.ts'
import {
  appealArbiter,
  arbiter,
  consumer,
  divergenceCase,
  endOf,
  observation,
  monitors,
  outsider,
  provider,
  type Scenario,
  silentCase,
  thinEvidenceCase,
} from './scenario.ts'
import { usageFigures } from '../../../packages/deal/test/helpers.ts'

const quiet = createLog('arbiter-test', { level: 'error', write: () => {} })

describe('the arbiter over real libp2p on loopback', () => {
  const dirs: string[] = []
  const nodes: TallyNode[] = []
  const scenarios: Scenario[] = []
  let first: Arbiter
  let appeals: Arbiter
  let metrics: Metrics
  let parties: Record<'provider' | 'consumer', TallyNode>
  let stranger: TallyNode

  async function node(identity: Identity): Promise<TallyNode> {
    const n = await createTallyNode({ identity, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], network: localNetwork(), bootTimeoutMs: 5_000 })
    nodes.push(n)
    return n
  }

  async function openArbiter(identity: Identity, mode: 'first-instance' | 'appeal' | 'both', m?: Metrics): Promise<Arbiter> {
    const dir = await mkdtemp(join(tmpdir(), 'tally-arbiter-'))
    dirs.push(dir)
    const a = await Arbiter.open({
      node: await node(identity),
      dataDir: dir,
      settings: arbiterSettingsSchema.parse({ mode }),
      log: quiet,
      ...(m === undefined ? {} : { metrics: m }),
    })
    await a.start()
    return a
  }

  const addr = (a: Arbiter) => multiaddr(a.node.multiaddrs().find((x) => x.startsWith('/ip4/127.0.0.1/'))!)

  beforeAll(async () => {
    metrics = new Metrics('arbiter', arbiter.peerId)
    first = await openArbiter(arbiter, 'first-instance', metrics)
    appeals = await openArbiter(appealArbiter, 'appeal')
    parties = { provider: await node(provider), consumer: await node(consumer) }
    stranger = await node(outsider)
  })

  afterAll(async () => {
    await Promise.allSettled([first.stop(), appeals.stop()])
    await Promise.allSettled(nodes.map((n) => n.stop()))
    await Promise.allSettled(scenarios.map((s) => s.close()))
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  async function track<T extends { s: Scenario }>(p: Promise<T>): Promise<T> {
    const v = await p
    scenarios.push(v.s)
    return v
  }

  it('rules a dispute that opened by itself; both halves accept the ruling and settlement follows it', async () => {
    const { s, deal, dispute } = await track(divergenceCase())
    const req = { pair: s.pair, deal, dispute, appeal: false, record: await s.record() }
    const out = await submitCase(parties.consumer.libp2p, addr(first), req)
    if (out.type !== 'ruling') throw new Error(`expected a ruling, got ${out.type}`)
    expect(out.ruling.by).toBe(arbiter.peerId)
    expect(out.ruling.body.award).toEqual({ toProvider: { amount: 0, asset: 'USD' }, collateralToConsumer: { amount: 166, asset: 'USD' } })

    // The consumer relays it; the provider's reducer validates it on ingest.
    const ruling = await s.append('consumer', 'ruling', buildRuling(deal, out.ruling), endOf(1) + 1000)
    for (const role of ['provider', 'consumer'] as const) {
      expect(s.states[role].deals.get(deal.toString())?.disputes.get(dispute.toString())?.status).toBe('ruled')
    }
    // The provider asking again gets the same ruling back, byte for byte, from the case store.
    const again = await submitCase(parties.provider.libp2p, addr(first), { ...req, record: await s.record('provider') })
    expect(again.type === 'ruling' && encode(again.ruling)).toEqual(encode(out.ruling))

    // Epoch 2 comes after the appeal window: the ruling is final and the bonded collateral is awarded.
    await s.append('provider', 'usage', { deal, epoch: 2, ...usageFigures() }, endOf(2) + 2_000)
    await s.observe(deal, 2, [100, 100, null], endOf(2) + 2_010)
    await s.append('consumer', 'evaluation', buildEvaluation(s.state, deal, 2), endOf(2) + 2_030)
    await s.append('consumer', 'voucher', buildVoucher(s.state, deal), endOf(2) + 2_040)
    await s.append('provider', 'ack', buildAck(s.states.provider, deal), endOf(2) + 2_050)
    await s.append('consumer', 'close', buildClose(deal, 'completed'), endOf(2) + 3_000)
    await s.append('provider', 'certificate', buildCertificate(provider, s.states.provider, deal, endOf(2) + 3_100), endOf(2) + 3_100)
    await s.append('consumer', 'certificate', buildCertificate(consumer, s.states.consumer, deal, endOf(2) + 3_200), endOf(2) + 3_200)
    for (const role of ['provider', 'consumer'] as const) {
      const d = s.states[role].deals.get(deal.toString())!
      expect(d.status).toBe('certified')
      expect(d.disputes.get(dispute.toString())?.final?.cid.equals(ruling.cid)).toBe(true)
      expect(d.finalRulings.map(String)).toEqual([ruling.cid.toString()])
    }
    expect(s.states.provider.balances).toEqual(s.states.consumer.balances)
    expect(s.state.balances['USD']).toMatchObject({ authorised: 2000, paid: 2000, held: 0, collateralBonded: 500, collateralAwarded: 166 })

    const c = first.store.get(out.caseId)
    expect(c).toMatchObject({ status: 'ruled', submissions: 2, submittedBy: [consumer.peerId, provider.peerId], appeal: false })
    expect(c?.ruling?.collateralToConsumer.amount).toBe(166)
    const text = await metrics.render()
    expect(text).toMatch(/tally_arbiter_cases_ruled_total\{[^}]*stage="first-instance"[^}]*\} 1/)
    expect(text).toMatch(/tally_arbiter_cases_received_total\{[^}]*\} 2/)
  })

  it('refuses a stranger, a deal that names another arbiter, a tampered record and a stage it does not hear', async () => {
    // The same deal as the first test (the scenario is deterministic), whose case is ruled: a tampered record is still refused.
    const { s, deal, dispute } = await track(divergenceCase())
    const record = await s.record()
    const req = { pair: s.pair, deal, dispute, appeal: false, record }
    await expect(submitCase(stranger.libp2p, addr(first), req)).rejects.toMatchObject({ name: 'CaseRefusedError', code: 'not-a-party' })
    const tampered = record.slice()
    tampered[record.byteLength - 100]! ^= 0x40
    await expect(submitCase(parties.provider.libp2p, addr(first), { ...req, record: tampered })).rejects.toMatchObject({ code: 'invalid-record' })
    const id = caseIdOf(s.pair, deal, dispute, false)
    expect(first.store.get(id)).toMatchObject({ status: 'ruled', refusal: { code: 'invalid-record' } })
    // The case keeps the record its ruling rests on, not the tampered one.
    expect(await first.store.readFile(id, 'record.car')).toEqual(record)
    // The appeal-only arbiter does not hear first-instance cases.
    await expect(submitCase(parties.provider.libp2p, addr(appeals), req)).rejects.toMatchObject({ code: 'not-arbiter' })

    const other = await track(divergenceCase({ nonce: 'names-another-arbiter', arbiter: outsider.peerId }))
    const foreign = { pair: other.s.pair, deal: other.deal, dispute: other.dispute, appeal: false, record: await other.s.record() }
    await expect(submitCase(parties.consumer.libp2p, addr(first), foreign)).rejects.toMatchObject({ code: 'not-arbiter' })
    const refused = first.store.get(caseIdOf(foreign.pair, foreign.deal, foreign.dispute, false))
    expect(refused).toMatchObject({ status: 'refused', refusal: { code: 'not-arbiter' } })
  })

  it('an appeal decided by the appeal arbiter supersedes the first ruling, and the consumer pays the award', async () => {
    const { s, deal, dispute } = await track(thinEvidenceCase())
    const req = { pair: s.pair, deal, dispute, appeal: false, record: await s.record() }
    const r1 = await submitCase(parties.consumer.libp2p, addr(first), req)
    if (r1.type !== 'ruling') throw new Error('expected a ruling')
    expect(r1.ruling.body.award.toProvider.amount).toBe(0)
    expect(r1.ruling.body.award.collateralToConsumer.amount).toBe(166)
    const r1Entry = await s.append('consumer', 'ruling', buildRuling(deal, r1.ruling), endOf(1) + 12_000)

    // The provider appeals and brings the two other monitors' observations, which saw it up.
    await s.append('provider', 'appeal', buildAppeal(deal, r1Entry.cid, 'two monitors saw me up; their observations arrived late'), endOf(1) + 13_000)
    for (const m of [monitors[1], monitors[2]]) {
      await s.append('provider', 'observation', { deal, observation: observation(m, 1, 100) }, endOf(1) + 13_100)
    }
    const appealReq = { ...req, appeal: true, record: await s.record('provider') }
    await expect(submitCase(parties.provider.libp2p, addr(first), appealReq)).rejects.toMatchObject({ code: 'not-arbiter' })
    const r2 = await submitCase(parties.provider.libp2p, addr(appeals), appealReq)
    if (r2.type !== 'ruling') throw new Error('expected an appeal ruling')
    const body = r2.ruling.body
    expect(r2.ruling.by).toBe(appealArbiter.peerId)
    expect(body.appealOf?.equals(r1Entry.cid)).toBe(true)
    expect(body.award).toEqual({ toProvider: { amount: 1000, asset: 'USD' }, collateralToConsumer: { amount: 0, asset: 'USD' } })
    expect(body.reasons).toMatch(/On appeal by the provider/)

    const r2Entry = await s.append('provider', 'ruling', buildRuling(deal, r2.ruling as Ruling), endOf(1) + 14_000)
    for (const role of ['provider', 'consumer'] as const) {
      const d = s.states[role].deals.get(deal.toString())!
      const disp = d.disputes.get(dispute.toString())!
      expect(disp.status).toBe('final')
      expect(disp.final?.cid.equals(r2Entry.cid)).toBe(true)
      expect(disp.rulings).toHaveLength(2)
      expect(d.collateralAwarded).toBe(0)
    }
    // Settlement follows the final ruling: the consumer's duties include a voucher naming it.
    const due = duties(s.state, 'consumer', endOf(1) + 14_500).find((x) => x.type === 'voucher')
    expect(due?.type === 'voucher' && due.authorisedBy.map(String)).toContain(r2Entry.cid.toString())
    const voucher = buildVoucher(s.state, deal)
    expect(voucher.amount.amount).toBe(2000)
    await s.append('consumer', 'voucher', voucher, endOf(1) + 15_000)
    await s.append('provider', 'ack', buildAck(s.states.provider, deal), endOf(1) + 15_100)
    expect(s.state.balances['USD']).toMatchObject({ authorised: 2000, paid: 2000, acknowledged: 2000, held: 0, collateralAwarded: 0 })
    expect(appeals.store.get(r2.caseId)).toMatchObject({ status: 'ruled', appeal: true })
  })

  it('asks the provider for evidence once, waits for the answer, then rules', async () => {
    const { s, deal, dispute } = await track(silentCase())
    const req = { pair: s.pair, deal, dispute, appeal: false }
    const asked = await submitCase(parties.consumer.libp2p, addr(first), { ...req, record: await s.record() })
    if (asked.type !== 'evidence-request') throw new Error(`expected an evidence request, got ${asked.type}`)
    expect(asked.request.body.party).toBe('provider')
    // Not relayed yet: asking again gets the same request, not a second one.
    const twice = await submitCase(parties.consumer.libp2p, addr(first), { ...req, record: await s.record() })
    expect(twice.type === 'evidence-request' && encode(twice.request)).toEqual(encode(asked.request))

    const reqEntry = await s.append('consumer', 'evidence-request', buildEvidenceRequest(deal, asked.request), endOf(1) + 300)
    await expect(submitCase(parties.consumer.libp2p, addr(first), { ...req, record: await s.record() })).rejects.toMatchObject({ code: 'evidence-pending' })
    expect(first.store.get(asked.caseId)?.status).toBe('evidence-requested')

    const obs = await s.observe(deal, 1, [100, null, 100], endOf(1) + 400, 'provider')
    await s.append(
      'provider',
      'evidence-answer',
      buildEvidenceAnswer(
        deal,
        reqEntry.cid,
        'late observations attached',
        obs.map((b) => b.cid),
      ),
      endOf(1) + 500,
    )
    const ruled = await submitCase(parties.provider.libp2p, addr(first), { ...req, record: await s.record('provider') })
    if (ruled.type !== 'ruling') throw new Error('expected a ruling')
    expect(ruled.ruling.body.award.toProvider.amount).toBe(1000)
    await s.append('provider', 'ruling', buildRuling(deal, ruled.ruling), endOf(1) + 600)
    expect(first.store.get(ruled.caseId)).toMatchObject({ status: 'ruled', submissions: 4 })
  })
})

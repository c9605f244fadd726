import type { CID, EntryBlock } from '@tally/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  buildAck,
  buildEvaluation,
  buildVoucher,
  certificateSummary,
  type ContractTerms,
  type DealState,
  type EvidenceRule,
  evaluateEpoch,
  type ObservationEvidence,
  type PairState,
  PMap,
  recomputeBalances,
  reduce,
  replay,
  rulingBodyFor,
  signRuling,
} from '../src/index.ts'
import { activeDeal, arbiter, endOf, monitors, observation, outsider, resetObservationSeqs, TestPair, terms, usageFigures } from './helpers.ts'

const monitorPeers = monitors.map((m) => m.peerId)

const ruleArb: fc.Arbitrary<EvidenceRule> = fc
  .record({
    weights: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    quorumPick: fc.nat(),
    minBp: fc.constantFrom(0, 5000, 9900, 9900, 10_000),
    latency: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: null }),
    identity: fc.constantFrom('ignore' as const, 'require' as const),
    usage: fc.constantFrom('required' as const, 'ignored' as const),
    missing: fc.constantFrom('hold' as const, 'pay' as const, 'refund' as const),
    payment: fc.constantFrom('full' as const, 'pro-rata' as const),
  })
  .map((r) => {
    const total = r.weights[0] + r.weights[1] + r.weights[2]
    return {
      version: 1 as const,
      monitors: monitorPeers.map((peer, i) => ({ peer, weight: r.weights[i] as number })),
      quorum: 1 + (r.quorumPick % total),
      availability: { minBp: r.minBp },
      latency: r.latency === null ? null : { maxP95Us: r.latency },
      challenges: { identity: r.identity, compute: 'ignore' as const },
      usage: r.usage,
      missing: r.missing,
      payment: r.payment,
    }
  })

const observationArb: fc.Arbitrary<ObservationEvidence> = fc
  .record({
    m: fc.integer({ min: 0, max: 2 }),
    sent: fc.integer({ min: 1, max: 1000 }),
    okFrac: fc.integer({ min: 0, max: 1000 }),
    p95: fc.integer({ min: 0, max: 200_000 }),
    challenges: fc.array(fc.record({ kind: fc.constantFrom('identity' as const, 'compute' as const), ok: fc.boolean() }), { maxLength: 3 }),
  })
  .map((o) => {
    const ok = Math.floor((o.sent * o.okFrac) / 1000)
    return { monitor: monitorPeers[o.m] as string, samples: { sent: o.sent, ok }, latencyP95Us: ok === 0 ? null : o.p95, challenges: o.challenges }
  })

const evidenceArb = fc.record({
  usage: fc.option(fc.record({ claimBp: fc.integer({ min: 0, max: 10_000 }) }), { nil: null }),
  observations: fc.array(observationArb, { maxLength: 8 }),
})

describe('evaluateEpoch properties', () => {
  it('is deterministic, order-independent and within bounds', () => {
    fc.assert(
      fc.property(ruleArb, evidenceArb, fc.nat(), (rule, evidence, rot) => {
        const v = evaluateEpoch(rule, evidence)
        expect(evaluateEpoch(rule, evidence)).toEqual(v)
        const n = evidence.observations.length
        const rotated = { ...evidence, observations: evidence.observations.map((_, i) => evidence.observations[(i + rot) % n] as ObservationEvidence) }
        expect(evaluateEpoch(rule, rotated)).toEqual(v)
        expect(v.payBp).toBeGreaterThanOrEqual(0)
        expect(v.payBp + v.holdBp).toBeLessThanOrEqual(10_000)
        if (v.verdict === 'not-performed') expect(v.payBp + v.holdBp).toBe(0)
        if (v.verdict === 'disputed') expect([v.payBp, v.holdBp]).toEqual([0, 10_000])
        // Divergence: a served claim against a monitor quorum for down is never paid outright.
        if (v.claim === 'served' && v.monitors === 'down') expect(v.verdict).toBe('disputed')
        if (v.verdict === 'performed') expect(v.monitors).toBe('up')
      }),
      { numRuns: 500 },
    )
  })
})

describe('PMap', () => {
  it('behaves like a Map and never changes an old version', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 300 }), (ops) => {
        let m = PMap.empty<number>()
        const ref = new Map<string, number>()
        const versions: [PMap<number>, Map<string, number>][] = []
        for (const [k, v] of ops) {
          m = m.set(k, v)
          ref.set(k, v)
          versions.push([m, new Map(ref)])
        }
        for (const [pm, snapshot] of versions) {
          expect(pm.size).toBe(snapshot.size)
          for (const [k, v] of snapshot) expect(pm.get(k)).toBe(v)
          expect(new Map(pm.entries())).toEqual(snapshot)
        }
      }),
      { numRuns: 100 },
    )
  })
})

interface EpochPlan {
  claimBp: number | null
  obs: { m: number; ok: number }[]
  dispute: boolean
  award: number
  pay: boolean
  ack: boolean
  bogus: { amount: number; picks: number[] }
}

const planArb: fc.Arbitrary<EpochPlan> = fc.record({
  claimBp: fc.option(fc.constantFrom(9000, 9950, 10_000), { nil: null }),
  obs: fc.array(fc.record({ m: fc.integer({ min: 0, max: 3 }), ok: fc.constantFrom(0, 50, 99, 100, 100, 100) }), { maxLength: 4 }),
  dispute: fc.boolean(),
  award: fc.integer({ min: 0, max: 1000 }),
  pay: fc.boolean(),
  ack: fc.boolean(),
  bogus: fc.record({ amount: fc.integer({ min: 0, max: 1500 }), picks: fc.array(fc.nat({ max: 3 }), { maxLength: 2 }) }),
})

/** The figures two replicas must agree on. */
function projection(state: PairState) {
  return {
    balances: state.balances,
    heads: [state.heads.provider?.cid.toString(), state.heads.consumer?.cid.toString()],
    deals: state.dealOrder.map((id) => {
      const d = state.deals.get(id.toString()) as DealState
      return { status: d.status, paid: d.paid, authorised: d.authorised, held: d.held, counts: d.counts, summary: certificateSummary(state, d) }
    }),
  }
}

/** Drive one deal through a random but legal lifecycle, with a random illegal voucher attempt per epoch. */
function runLifecycle(rule: EvidenceRule, plans: EpochPlan[]) {
  resetObservationSeqs()
  const t: ContractTerms = terms({ rule, epochs: plans.length, maxEpochs: plans.length, appealArbiter: null })
  const p = new TestPair()
  const id = activeDeal(p, t)
  const states: PairState[] = [p.state]
  const amounts = new Map<string, number>() // authority CID -> amount its entry states
  const named = new Set<string>()
  const authorityCids: CID[] = []
  const push = (b: EntryBlock) => {
    states.push(p.state)
    return b
  }
  plans.forEach((plan, e) => {
    const end = endOf(e)
    if (plan.claimBp !== null) push(p.append('provider', 'usage', { deal: id, epoch: e, ...usageFigures(plan.claimBp) }, end))
    plan.obs.forEach((o, i) => {
      const m = o.m === 3 ? outsider : monitors[o.m as 0 | 1 | 2]
      push(p.append(i % 2 === 0 ? 'consumer' : 'provider', 'observation', { deal: id, observation: observation(m, e, o.ok) }, end + 10 + i))
    })
    const evBody = buildEvaluation(p.state, id, e)
    const ev = push(p.append('consumer', 'evaluation', evBody, end + 20_000))
    amounts.set(ev.cid.toString(), evBody.amount.amount)
    authorityCids.push(ev.cid)
    const ep = (p.state.deals.get(id.toString()) as DealState).epochs.get(String(e))
    let disputeId: CID | null = ep?.dispute === null || ep === undefined ? null : ev.cid
    if (disputeId === null && plan.dispute) disputeId = push(p.append('consumer', 'dispute', { deal: id, epochs: [e], reason: 'random' }, end + 20_001)).cid
    if (disputeId !== null) {
      const body = rulingBodyFor(p.state, id, disputeId, { toProvider: plan.award, collateralToConsumer: 0, reasons: 'r', relied: [], issuedAt: end + 20_002 })
      const r = push(p.append('provider', 'ruling', { deal: id, ruling: signRuling(arbiter, body) }, end + 20_002))
      amounts.set(r.cid.toString(), plan.award)
      authorityCids.push(r.cid)
    }
    // A random release attempt: accepted only if the authorities it names cover it.
    const pool = [...authorityCids, ...p.log.map((b) => b.cid)]
    const bogus = { deal: id, amount: { amount: plan.bogus.amount, asset: 'USD' }, authorisedBy: plan.bogus.picks.map((i) => pool[i % pool.length] as CID) }
    const block = p.sign('consumer', 'voucher', bogus, end + 20_003)
    let accepted = true
    try {
      reduce(p.state, block)
    } catch {
      accepted = false
    }
    if (accepted) {
      push(p.append('consumer', 'voucher', bogus, end + 20_003))
      checkNamed(bogus.authorisedBy, bogus.amount.amount)
    }
    if (plan.pay) {
      const v = buildVoucher(p.state, id)
      if (v.amount.amount > (p.state.deals.get(id.toString()) as DealState).paid) {
        push(p.append('consumer', 'voucher', v, end + 20_004))
        checkNamed(v.authorisedBy, v.amount.amount)
      }
    }
    const deal = p.state.deals.get(id.toString()) as DealState
    if (plan.ack && deal.unacked.length > 0) push(p.append('provider', 'ack', buildAck(p.state, id), end + 20_005))
  })
  return { p, states }

  // Invariant 1: what a voucher releases never exceeds what the authorities named so far state.
  function checkNamed(cids: readonly CID[], amount: number) {
    for (const c of cids) {
      const s = c.toString()
      if (!amounts.has(s)) throw new Error(`voucher named ${s}, which is no evaluation or ruling`)
      named.add(s)
    }
    let cover = 0
    for (const s of named) cover += amounts.get(s) ?? 0
    if (amount > cover) throw new Error(`voucher of ${amount} exceeds ${cover} named`)
  }
}

describe('deal reducer properties over random legal lifecycles', () => {
  it('cumulative payment never decreases, never exceeds authorisation, and replay equals live reduction', () => {
    fc.assert(
      fc.property(ruleArb, fc.array(planArb, { minLength: 1, maxLength: 4 }), (rule, plans) => {
        const { p, states } = runLifecycle(rule, plans)
        let last = 0
        for (const s of states) {
          const d = s.deals.get(s.dealOrder[0]?.toString() ?? '')
          if (d === undefined) continue
          expect(d.paid).toBeGreaterThanOrEqual(last)
          expect(d.paid).toBeLessThanOrEqual(d.namedTotal)
          expect(d.namedTotal).toBeLessThanOrEqual(d.authorised)
          last = d.paid
        }
        expect(p.state.balances).toEqual(recomputeBalances(p.state))
        const r = replay(p.log, p.state.pair)
        expect(r.problems).toEqual([])
        expect(projection(r.state)).toEqual(projection(p.state))
        // Determinism: a second replay gives the same again.
        expect(projection(replay(p.log, p.state.pair).state)).toEqual(projection(r.state))
      }),
      { numRuns: 40 },
    )
  })
})

import type { CID } from '@tally/core'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  buildAck,
  buildCertificate,
  buildEvaluation,
  buildVoucher,
  certificateSummary,
  type DealState,
  recomputeBalances,
  replay,
  rulingBodyFor,
  signEvidenceRequest,
  signRuling,
} from '../src/index.ts'
import {
  activeDeal,
  appealArbiter,
  arbiter,
  attestation,
  EPOCH,
  endOf,
  monitors,
  observation,
  outsider,
  provider,
  resetObservationSeqs,
  T0,
  TestPair,
  terms,
  usageFigures,
  workload,
} from './helpers.ts'

const dealOf = (p: TestPair, id: CID): DealState => p.state.deals.get(id.toString()) as DealState

beforeEach(() => resetObservationSeqs())

describe('negotiation', () => {
  it('proposal, counter, counter, acceptance: the latest offer becomes the contract', () => {
    const p = new TestPair()
    const proposal = p.append('consumer', 'proposal', { terms: terms() }, T0 - 5000)
    const id = proposal.cid
    expect(dealOf(p, id).status).toBe('negotiating')
    const c1 = p.append('provider', 'counter', { deal: id, offer: proposal.cid, terms: terms({ price: { amount: 1500, asset: 'USD' } }) }, T0 - 4000)
    const c2 = p.append('consumer', 'counter', { deal: id, offer: c1.cid, terms: terms({ price: { amount: 1200, asset: 'USD' } }) }, T0 - 3000)
    // Accepting a superseded offer is refused.
    expect(p.reject('provider', 'acceptance', { deal: id, offer: c1.cid }, T0).name).toBe('StaleOfferError')
    // The party that made the offer cannot accept it.
    expect(p.reject('consumer', 'acceptance', { deal: id, offer: c2.cid }, T0).name).toBe('WrongPartyError')
    p.append('provider', 'acceptance', { deal: id, offer: c2.cid }, T0)
    const d = dealOf(p, id)
    expect(d.status).toBe('active')
    expect(d.terms?.price.amount).toBe(1200)
    expect(d.start).toBe(T0)
    expect(d.offers).toHaveLength(3)
  })

  it('reject ends a negotiation; later answers are refused', () => {
    const p = new TestPair()
    const proposal = p.append('consumer', 'proposal', { terms: terms() }, T0)
    p.append('provider', 'reject', { deal: proposal.cid, offer: proposal.cid, reason: 'no capacity' }, T0 + 1)
    expect(dealOf(p, proposal.cid).status).toBe('rejected')
    expect(p.reject('provider', 'acceptance', { deal: proposal.cid, offer: proposal.cid }, T0 + 2).name).toBe('DealNotActiveError')
  })

  it('only the consumer proposes; terms are checked', () => {
    const p = new TestPair()
    expect(p.reject('provider', 'proposal', { terms: terms() }, T0).name).toBe('WrongPartyError')
    expect(p.reject('consumer', 'proposal', { terms: terms({ arbiter: provider.peerId }) }, T0).name).toBe('InvalidTermsError')
    const r = terms().rule
    expect(p.reject('consumer', 'proposal', { terms: terms({ rule: { ...r, quorum: 4 } }) }, T0).name).toBe('InvalidTermsError')
    expect(p.reject('consumer', 'proposal', { terms: terms({ epochs: 5, maxEpochs: 4 }) }, T0).name).toBe('InvalidTermsError')
    expect(p.reject('consumer', 'proposal', { terms: terms({ epochMs: 31 * 86_400_000, epochs: null, maxEpochs: 10_000 }) }, T0).name).toBe('InvalidTermsError')
    expect(p.reject('consumer', 'proposal', { terms: terms({ price: { amount: 2 ** 52, asset: 'USD' } }) }, T0).name).toBe('InvalidTermsError')
    expect(p.reject('consumer', 'proposal', { terms: { ...terms(), price: { amount: 1.5, asset: 'USD' } } }, T0).name).toBe('SchemaError')
    expect(p.reject('consumer', 'proposal', { terms: { ...terms(), extra: 1 } }, T0).name).toBe('SchemaError')
  })

  it('an unanswered offer lapses after the answer deadline', () => {
    const p = new TestPair()
    const proposal = p.append('consumer', 'proposal', { terms: terms() }, T0)
    const body = { deal: proposal.cid, duty: 'acceptance', ref: proposal.cid, epoch: null }
    expect(p.reject('consumer', 'timeout', body, T0 + 29_999).name).toBe('TimeoutPrematureError')
    expect(p.reject('provider', 'timeout', body, T0 + 30_000).name).toBe('WrongPartyError')
    p.append('consumer', 'timeout', body, T0 + 30_000)
    expect(dealOf(p, proposal.cid).status).toBe('lapsed')
  })
})

describe('a whole deal, every kind', () => {
  it('runs from proposal to countersigned certificate with a dispute, a ruling and an appeal', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    p.append('consumer', 'note', 'free text is ignored', T0 + 4)
    const start = dealOf(p, id)
    expect(start.collateralBonded).toBe(500)
    expect(start.attestation?.source).toBe('nvidia-smi')

    // Epochs 0 and 1: performed, paid and acknowledged.
    for (const e of [0, 1]) {
      p.append('provider', 'usage', { deal: id, epoch: e, ...usageFigures() }, endOf(e))
      const o1 = observation(monitors[0], e, 100)
      p.append('provider', 'observation', { deal: id, observation: o1 }, endOf(e) + 100)
      p.append('consumer', 'observation', { deal: id, observation: observation(monitors[1], e, 100) }, endOf(e) + 200)
      // The same observation attached again by the other party is the same evidence.
      p.append('consumer', 'observation', { deal: id, observation: o1 }, endOf(e) + 300)
      const ev = buildEvaluation(p.state, id, e)
      expect(ev.verdict).toBe('performed')
      expect(ev.evidence).toHaveLength(3)
      p.append('consumer', 'evaluation', ev, endOf(e) + 400)
      const v = p.append('consumer', 'voucher', buildVoucher(p.state, id), endOf(e) + 500)
      p.append('provider', 'ack', buildAck(p.state, id), endOf(e) + 600)
      p.append('consumer', 'rail-result', { deal: id, voucher: v.cid, rail: 'ledger', status: 'ok', detail: 'in the log', reference: null }, endOf(e) + 700)
    }
    let d = dealOf(p, id)
    expect(d.paid).toBe(2000)
    expect(d.acknowledged).toBe(2000)
    expect(d.railSettled).toBe(2000)
    expect(d.counts.performed).toBe(2)

    // Epoch 2: provider claims service, two monitors saw it down: disputed by itself, payment held.
    p.append('provider', 'usage', { deal: id, epoch: 2, ...usageFigures() }, endOf(2))
    p.append('consumer', 'observation', { deal: id, observation: observation(monitors[0], 2, 10) }, endOf(2) + 100)
    p.append('consumer', 'observation', { deal: id, observation: observation(monitors[1], 2, 20) }, endOf(2) + 200)
    const ev2 = buildEvaluation(p.state, id, 2)
    expect(ev2.verdict).toBe('disputed')
    const evaluation2 = p.append('consumer', 'evaluation', ev2, endOf(2) + 300)
    d = dealOf(p, id)
    const disputeId = evaluation2.cid
    expect(d.openDisputes).toEqual([disputeId.toString()])
    expect(d.held).toBe(1000)
    expect(p.state.balances.USD?.held).toBe(1000)

    // The arbiter asks the provider for its logs; the provider answers.
    const reqDoc = signEvidenceRequestFor(p, id, disputeId, endOf(2) + 10_000)
    const req = p.append('consumer', 'evidence-request', { deal: id, request: reqDoc }, endOf(2) + 1000)
    expect(p.reject('consumer', 'evidence-answer', { deal: id, request: req.cid, answer: 'no', refs: [] }, endOf(2) + 1100).name).toBe('WrongPartyError')
    p.append('provider', 'evidence-answer', { deal: id, request: req.cid, answer: 'logs attached', refs: [evaluation2.cid] }, endOf(2) + 1200)

    // First-instance ruling: nothing to the provider, 200 of collateral to the consumer.
    const r1doc = signRuling(
      arbiter,
      rulingBodyFor(p.state, id, disputeId, {
        toProvider: 0,
        collateralToConsumer: 200,
        reasons: 'monitors agree it was down',
        relied: [evaluation2.cid],
        issuedAt: endOf(2) + 2000,
      }),
    )
    const r1 = p.append('provider', 'ruling', { deal: id, ruling: r1doc }, endOf(2) + 2000)
    // Not final while it can be appealed: a voucher cannot name it.
    expect(p.reject('consumer', 'voucher', { deal: id, amount: { amount: 2000, asset: 'USD' }, authorisedBy: [r1.cid] }, endOf(2) + 2100).name).toBe(
      'RulingNotFinalError',
    )
    p.append('provider', 'appeal', { deal: id, ruling: r1.cid, reason: 'monitor m1 was partitioned' }, endOf(2) + 3000)
    // The first arbiter cannot decide the appeal.
    const wrong = signRuling(
      arbiter,
      rulingBodyFor(p.state, id, disputeId, { toProvider: 1000, collateralToConsumer: 0, reasons: 'x', relied: [], issuedAt: endOf(2) + 4000 }),
    )
    expect(p.reject('provider', 'ruling', { deal: id, ruling: wrong }, endOf(2) + 4000).name).toBe('UnnamedArbiterError')
    const r2doc = signRuling(
      appealArbiter,
      rulingBodyFor(p.state, id, disputeId, {
        toProvider: 600,
        collateralToConsumer: 0,
        reasons: 'partial outage',
        relied: [evaluation2.cid],
        issuedAt: endOf(2) + 5000,
      }),
    )
    expect(r2doc.body.appealOf?.equals(r1.cid)).toBe(true)
    const r2 = p.append('consumer', 'ruling', { deal: id, ruling: r2doc }, endOf(2) + 5000)
    d = dealOf(p, id)
    expect(d.openDisputes).toEqual([])
    expect(d.disputes.get(disputeId.toString())?.final?.cid.equals(r2.cid)).toBe(true)
    expect(d.held).toBe(0)
    expect(d.authorised).toBe(2600)
    expect(d.collateralAwarded).toBe(0)
    expect(d.counts.disputed).toBe(1)

    // Epoch 3: performed; the voucher names the evaluation and the final ruling.
    p.append('provider', 'usage', { deal: id, epoch: 3, ...usageFigures() }, endOf(3))
    p.append('consumer', 'observation', { deal: id, observation: observation(monitors[0], 3, 100) }, endOf(3) + 100)
    p.append('consumer', 'observation', { deal: id, observation: observation(monitors[2], 3, 100) }, endOf(3) + 200)
    p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 3), endOf(3) + 300)
    const vb = buildVoucher(p.state, id)
    expect(vb.amount.amount).toBe(3600)
    expect(vb.authorisedBy.map(String)).toContain(r2.cid.toString())
    p.append('consumer', 'voucher', vb, endOf(3) + 400)
    p.append('provider', 'ack', buildAck(p.state, id), endOf(3) + 500)

    // Close and certify, both sides.
    expect(p.reject('provider', 'certificate', buildCertificate(provider, p.state, id, endOf(3) + 550), endOf(3) + 550).name).toBe('CertificatePrematureError')
    p.append('consumer', 'close', { deal: id, reason: 'completed', note: '' }, endOf(3) + 600)
    expect(p.reject('provider', 'collateral', { deal: id, amount: { amount: 1, asset: 'USD' } }, endOf(3) + 650).name).toBe('DealClosedError')
    p.append('provider', 'certificate', buildCertificate(provider, p.state, id, endOf(3) + 700), endOf(3) + 700)
    expect(dealOf(p, id).status).toBe('closed')
    p.append('consumer', 'certificate', buildCertificate(p.ids.consumer, p.state, id, endOf(3) + 800), endOf(3) + 800)
    d = dealOf(p, id)
    expect(d.status).toBe('certified')
    const summary = certificateSummary(p.state, d)
    expect(summary.epochs).toEqual({ total: 4, performed: 3, notPerformed: 0, disputed: 1, insufficient: 0 })
    expect(summary.paid.amount).toBe(3600)
    expect(summary.rulings.map(String)).toEqual([r2.cid.toString()])
    // After certification only acks and rail results are taken.
    expect(p.reject('consumer', 'dispute', { deal: id, epochs: [3], reason: 'late' }, endOf(3) + 900).name).toBe('DealClosedError')

    // Balances: incremental figures equal a recomputation; replay of the log equals live reduction.
    expect(p.state.balances).toEqual(recomputeBalances(p.state))
    expect(p.state.balances.USD).toMatchObject({
      authorised: 3600,
      paid: 3600,
      acknowledged: 3600,
      held: 0,
      due: 0,
      collateralBonded: 500,
      collateralAwarded: 0,
    })
    const again = replay(p.log, p.state.pair)
    expect(again.problems).toEqual([])
    expect(again.state.balances).toEqual(p.state.balances)
    expect(certificateSummary(again.state, again.state.deals.get(id.toString()) as DealState)).toEqual(summary)
  })
})

function signEvidenceRequestFor(p: TestPair, deal: CID, dispute: CID, deadline: number) {
  return signEvidenceRequest(arbiter, {
    pair: p.state.pairId,
    deal,
    dispute,
    party: 'provider',
    question: 'send the workload logs',
    deadline,
    issuedAt: deadline - 9000,
  })
}

describe('execution entries', () => {
  it('attestation checks class and count and must be the provider’s', () => {
    const p = new TestPair()
    const proposal = p.append('consumer', 'proposal', { terms: terms({ resources: { class: 'gpu.h100', count: 2 } }) }, T0 - 1)
    p.append('provider', 'acceptance', { deal: proposal.cid, offer: proposal.cid }, T0)
    const id = proposal.cid
    expect(p.reject('provider', 'attestation', { deal: id, attestation: attestation(T0, 'gpu.h100', 1) }, T0 + 1).name).toBe('AttestationMismatchError')
    expect(p.reject('provider', 'attestation', { deal: id, attestation: attestation(T0, 'gpu.a100', 2) }, T0 + 1).name).toBe('AttestationMismatchError')
    expect(p.reject('provider', 'attestation', { deal: id, attestation: attestation(T0, 'gpu.h100', 2, monitors[0]) }, T0 + 1).name).toBe('WrongPartyError')
    expect(p.reject('consumer', 'attestation', { deal: id, attestation: attestation(T0, 'gpu.h100', 2) }, T0 + 1).name).toBe('WrongPartyError')
    const tampered = { ...attestation(T0, 'gpu.h100', 2) }
    tampered.body = { ...tampered.body, time: tampered.body.time + 1 }
    expect(p.reject('provider', 'attestation', { deal: id, attestation: tampered }, T0 + 1).name).toBe('SignatureError')
    p.append('provider', 'attestation', { deal: id, attestation: attestation(T0, 'gpu.h100', 2) }, T0 + 1)
    expect(dealOf(p, id).attestation).not.toBeNull()
  })

  it('usage needs attestation, manifest, collateral, an ended epoch, once per epoch; metering is totalled', () => {
    const p = new TestPair()
    const proposal = p.append('consumer', 'proposal', { terms: terms() }, T0 - 1)
    const id = proposal.cid
    p.append('provider', 'acceptance', { deal: id, offer: proposal.cid }, T0)
    const usage = (e: number) => ({ deal: id, epoch: e, ...usageFigures() })
    expect(p.reject('provider', 'usage', usage(0), endOf(0)).name).toBe('MissingAttestationError')
    p.append('provider', 'attestation', { deal: id, attestation: attestation() }, T0 + 1)
    expect(p.reject('provider', 'usage', usage(0), endOf(0)).name).toBe('MissingManifestError')
    p.append('consumer', 'manifest', { deal: id, workload }, T0 + 2)
    expect(p.reject('provider', 'usage', usage(0), endOf(0)).name).toBe('CollateralMissingError')
    expect(p.reject('provider', 'collateral', { deal: id, amount: { amount: 500, asset: 'EUR' } }, T0 + 3).name).toBe('AssetMismatchError')
    p.append('provider', 'collateral', { deal: id, amount: { amount: 200, asset: 'USD' } }, T0 + 3)
    p.append('provider', 'collateral', { deal: id, amount: { amount: 300, asset: 'USD' } }, T0 + 4)
    expect(p.reject('provider', 'usage', usage(0), endOf(0) - 1).name).toBe('EpochNotEndedError')
    expect(p.reject('provider', 'usage', usage(4), endOf(4)).name).toBe('EpochOutOfRangeError')
    expect(p.reject('consumer', 'usage', usage(0), endOf(0)).name).toBe('WrongPartyError')
    p.append('provider', 'usage', { ...usage(0), metered: { wallMs: EPOCH, cpuMs: 1, maxRssBytes: 2 ** 31, gpuMs: 7 } }, endOf(0))
    expect(p.reject('provider', 'usage', usage(0), endOf(0) + 1).name).toBe('DuplicateUsageError')
    p.append('provider', 'usage', usage(2), endOf(2))
    const d = dealOf(p, id)
    expect(d.nextUsage).toBe(1)
    expect(d.usageEnd).toBe(3)
    expect(d.metered.gpuMs).toBe(7 + EPOCH)
    expect(d.overEnvelopeEpochs).toBe(1)
    expect(p.reject('consumer', 'manifest', { deal: id, workload }, endOf(2)).name).toBe('ManifestAfterStartError')
    expect(p.reject('provider', 'usage', { ...usage(1), logsHash: 'zz' }, endOf(2)).name).toBe('SchemaError')
  })

  it('observations: subject, window, unnamed monitors kept apart, equivocation refused', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    const o = observation(monitors[0], 0, 100)
    expect(
      p.reject('consumer', 'observation', { deal: id, observation: observation(monitors[0], 0, 100, { subject: monitors[1].peerId }) }, endOf(0)).name,
    ).toBe('ObservationSubjectError')
    expect(p.reject('consumer', 'observation', { deal: id, observation: observation(monitors[0], 7, 100) }, endOf(0)).name).toBe('ObservationWindowError')
    expect(p.reject('consumer', 'observation', { deal: id, observation: observation(monitors[0], 0, 100, { start: T0 - 3 * EPOCH }) }, endOf(0)).name).toBe(
      'ObservationWindowError',
    )
    p.append('consumer', 'observation', { deal: id, observation: o }, endOf(0))
    // Same monitor, same seq, different content: the monitor equivocated.
    const twin = observation(monitors[0], 0, 90, { seq: o.body.seq })
    expect(p.reject('provider', 'observation', { deal: id, observation: twin }, endOf(0) + 1).name).toBe('ObservationConflictError')
    const foreign = p.append('provider', 'observation', { deal: id, observation: observation(monitors[0], 0, 100, {}) }, endOf(0) + 2)
    const outsiderObs = p.append('provider', 'observation', { deal: id, observation: observation(outsider, 0, 100) }, endOf(0) + 3)
    const ep = dealOf(p, id).epochs.get('0')
    expect(ep?.observations).toHaveLength(2)
    expect(ep?.foreign.map(String)).toEqual([outsiderObs.cid.toString()])
    expect(foreign).toBeDefined()
  })
})

import { type CID, Identity, signEntry, toBlock } from '@tally/core'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  buildAck,
  buildCertificate,
  buildEvaluation,
  buildVoucher,
  type DealState,
  replay,
  rulingBodyFor,
  signCertificate,
  signEvidenceRequest,
  signRuling,
} from '../src/index.ts'
import {
  activeDeal,
  arbiter,
  attestation,
  endOf,
  monitors,
  observation,
  outsider,
  provider,
  resetObservationSeqs,
  seed,
  T0,
  TestPair,
  terms,
  usageFigures,
} from './helpers.ts'

beforeEach(() => resetObservationSeqs())

/** A deal with epoch `e` served, observed by m0 and m1 (up unless given), not yet evaluated. */
function served(p: TestPair, id: CID, e: number, okPct = 100): void {
  p.append('provider', 'usage', { deal: id, epoch: e, ...usageFigures() }, endOf(e))
  p.append('consumer', 'observation', { deal: id, observation: observation(monitors[0], e, okPct) }, endOf(e) + 10)
  p.append('consumer', 'observation', { deal: id, observation: observation(monitors[1], e, okPct) }, endOf(e) + 20)
}

/** Served, evaluated, paid and acknowledged. */
function settled(p: TestPair, id: CID, e: number): void {
  served(p, id, e)
  p.append('consumer', 'evaluation', buildEvaluation(p.state, id, e), endOf(e) + 30)
  p.append('consumer', 'voucher', buildVoucher(p.state, id), endOf(e) + 40)
  p.append('provider', 'ack', buildAck(p.state, id), endOf(e) + 50)
}

/**
 * The "bad input": the cheating author keeps the entry in its own
 * chain; the counterparty refuses it live, and replaying the export flags
 * exactly that entry and reaches the same balances as the honest side.
 */
function expectFlagged(p: TestPair, kind: Parameters<TestPair['force']>[1], role: Parameters<TestPair['force']>[0], body: unknown, time: number, code: string) {
  const live = p.state
  const { block, error } = p.force(role, kind, body, time)
  expect(error.name).toBe(code)
  const r = replay(p.log, p.state.pair)
  expect(r.problems).toHaveLength(1)
  expect(r.problems[0]).toMatchObject({ code, kind, seq: block.entry.seq, author: block.entry.author })
  expect(r.problems[0]?.cid).toBe(block.cid.toString())
  expect(r.state.balances).toEqual(live.balances)
}

const dealOf = (p: TestPair, id: CID) => p.state.deals.get(id.toString()) as DealState

describe('bad input from the issue: refused live, flagged by replay', () => {
  it('a release with no authorising evaluation', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    expectFlagged(p, 'voucher', 'consumer', { deal: id, amount: { amount: 1000, asset: 'USD' }, authorisedBy: [] }, endOf(0) + 100, 'PaymentNotAuthorizedError')
  })

  it('a release naming something that is not an evaluation', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    const usage = dealOf(p, id).epochs.get('0')?.usage?.cid as CID
    expectFlagged(
      p,
      'voucher',
      'consumer',
      { deal: id, amount: { amount: 1000, asset: 'USD' }, authorisedBy: [usage] },
      endOf(0) + 100,
      'PaymentNotAuthorizedError',
    )
  })

  it('a voucher that decreases', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    settled(p, id, 0)
    expectFlagged(p, 'voucher', 'consumer', { deal: id, amount: { amount: 999, asset: 'USD' }, authorisedBy: [] }, endOf(0) + 100, 'VoucherDecreaseError')
  })

  it('a voucher that exceeds what is authorised', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 30)
    const body = buildVoucher(p.state, id)
    expectFlagged(p, 'voucher', 'consumer', { ...body, amount: { amount: 1001, asset: 'USD' } }, endOf(0) + 100, 'VoucherExceedsAuthorizedError')
  })

  it('a ruling from an arbiter the contract does not name', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    const ev = p.append('consumer', 'dispute', { deal: id, epochs: [0], reason: 'output was corrupt' }, endOf(0) + 30)
    const body = rulingBodyFor(p.state, id, ev.cid, { toProvider: 0, collateralToConsumer: 500, reasons: 'x', relied: [], issuedAt: endOf(0) + 40 })
    const impostor = Identity.fromSeed(seed(66))
    expectFlagged(p, 'ruling', 'consumer', { deal: id, ruling: signRuling(impostor, body) }, endOf(0) + 50, 'UnnamedArbiterError')
  })

  it('evidence from a monitor outside the contract, counted', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    p.append('provider', 'usage', { deal: id, epoch: 0, ...usageFigures() }, endOf(0))
    p.append('provider', 'observation', { deal: id, observation: observation(monitors[0], 0, 100) }, endOf(0) + 10)
    const foreign = p.append('provider', 'observation', { deal: id, observation: observation(outsider, 0, 100) }, endOf(0) + 20)
    const honest = buildEvaluation(p.state, id, 0)
    expect(honest.verdict).toBe('insufficient') // only one named monitor of quorum 2
    // Counting the outsider would reach quorum: illegal.
    const cheat = { ...honest, evidence: [...honest.evidence, foreign.cid], verdict: 'performed', amount: { amount: 1000, asset: 'USD' } }
    expectFlagged(p, 'evaluation', 'provider', cheat, endOf(0) + 20_000, 'UnnamedMonitorError')
  })

  it('an attestation after the workload started', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    p.append('provider', 'usage', { deal: id, epoch: 0, ...usageFigures() }, endOf(0))
    expectFlagged(p, 'attestation', 'provider', { deal: id, attestation: attestation(endOf(0)) }, endOf(0) + 10, 'AttestationAfterStartError')
  })
})

describe('evaluations are recomputed', () => {
  it('refuses a verdict or amount the rule does not give', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    const good = buildEvaluation(p.state, id, 0)
    expect(p.reject('provider', 'evaluation', { ...good, verdict: 'disputed' }, endOf(0) + 30).name).toBe('EvaluationMismatchError')
    expect(p.reject('provider', 'evaluation', { ...good, amount: { amount: 1200, asset: 'USD' } }, endOf(0) + 30).name).toBe('EvaluationMismatchError')
    expect(p.reject('provider', 'evaluation', { ...good, amount: { amount: 1000, asset: 'EUR' } }, endOf(0) + 30).name).toBe('AssetMismatchError')
    expect(p.reject('provider', 'evaluation', { ...good, evidence: [good.evidence[0], good.evidence[0]] }, endOf(0) + 30).name).toBe('EvaluationMismatchError')
    expect(p.reject('provider', 'evaluation', { ...good, epoch: 1 }, endOf(1)).name).toBe('UnknownEvidenceError')
    expect(p.reject('provider', 'evaluation', { ...good, evidence: [id] }, endOf(0) + 30).name).toBe('UnknownEvidenceError')
    expect(p.reject('provider', 'evaluation', { ...good, rule: 2 }, endOf(0) + 30).name).toBe('SchemaError')
    expect(p.reject('provider', 'evaluation', good, endOf(0) - 1).name).toBe('EpochNotEndedError')
    p.append('provider', 'evaluation', good, endOf(0) + 30)
    // A concurring duplicate by the other side is accepted (vouchers may name either) …
    const dup = p.append('consumer', 'evaluation', good, endOf(0) + 31)
    p.append('consumer', 'voucher', { deal: id, amount: { amount: 1000, asset: 'USD' }, authorisedBy: [dup.cid] }, endOf(0) + 32)
    // … a different one is not.
    p.append('provider', 'observation', { deal: id, observation: observation(monitors[2], 0, 100) }, endOf(0) + 33)
    expect(p.reject('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 34).name).toBe('EpochAlreadyEvaluatedError')
  })

  it('must count every admissible piece of evidence its author had seen, but not what it had not', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    const all = buildEvaluation(p.state, id, 0)
    const [usage, o1] = all.evidence as [CID, CID, CID]
    const partial = buildEvaluation(p.state, id, 0, [usage, o1])
    expect(partial.verdict).toBe('insufficient')
    // The provider had seen both observations (the consumer attached them before): leaving one out is refused.
    expect(p.reject('provider', 'evaluation', partial, endOf(0) + 20_000).name).toBe('EvaluationIncompleteError')
    // A provider that had not yet seen the consumer's last observation may evaluate without it.
    expect(() => p.append('provider', 'evaluation', partial, endOf(0) + 20_000, { blind: true })).not.toThrow()
  })

  it('verdicts resting on missing evidence wait for the grace period', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    p.append('consumer', 'observation', { deal: id, observation: observation(monitors[0], 0, 100) }, endOf(0) + 10)
    p.append('consumer', 'observation', { deal: id, observation: observation(monitors[1], 0, 100) }, endOf(0) + 20)
    const noUsage = buildEvaluation(p.state, id, 0)
    expect(noUsage.verdict).toBe('not-performed')
    expect(p.reject('consumer', 'evaluation', noUsage, endOf(0) + 9_999).name).toBe('EvaluationTooEarlyError')
    p.append('consumer', 'evaluation', noUsage, endOf(0) + 10_000)
    expect(dealOf(p, id).counts.notPerformed).toBe(1)
  })

  it('an insufficient verdict under hold reopens when more evidence arrives', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    p.append('provider', 'usage', { deal: id, epoch: 0, ...usageFigures() }, endOf(0))
    p.append('consumer', 'observation', { deal: id, observation: observation(monitors[0], 0, 100) }, endOf(0) + 10)
    const first = p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 10_000)
    expect(dealOf(p, id).held).toBe(1000)
    expect(p.reject('consumer', 'voucher', { deal: id, amount: { amount: 1, asset: 'USD' }, authorisedBy: [first.cid] }, endOf(0) + 10_001).name).toBe(
      'PaymentNotAuthorizedError',
    )
    p.append('provider', 'observation', { deal: id, observation: observation(monitors[1], 0, 100) }, endOf(0) + 11_000)
    p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 12_000)
    const d = dealOf(p, id)
    expect(d.held).toBe(0)
    expect(d.authorised).toBe(1000)
    expect(d.counts).toMatchObject({ performed: 1, insufficient: 0 })
    expect(d.authorities.get(first.cid.toString())?.status).toBe('superseded')
  })
})

describe('chain and party checks', () => {
  it('replay finds the pair in the open entries when not told', () => {
    const p = new TestPair(undefined, undefined, { open: true })
    const id = activeDeal(p)
    settled(p, id, 0)
    const r = replay(p.log)
    expect(r.problems).toEqual([])
    expect(r.state.balances).toEqual(p.state.balances)
    expect(() => replay(p.log.slice(2))).toThrow(/open entry/)
  })

  it('refuses foreign pairs, non-parties, gaps and unknown deals', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    const other = toBlock({ consumer: 'x', provider: 'y', type: 'tally-pair' }).cid
    const forged = signEntry(p.ids.consumer, { ...p.sign('consumer', 'note', 'x', T0 + 10).entry, pair: other })
    expect(() => replayOne(p, forged)).toThrow()
    const stranger = Identity.fromSeed(seed(77))
    const byStranger = signEntry(stranger, {
      v: 1,
      pair: p.state.pairId,
      author: stranger.peerId,
      seq: 1,
      prev: null,
      seen: null,
      time: T0,
      kind: 'note',
      body: null,
    })
    const block = p.sign('consumer', 'note', 'x', T0 + 10)
    const gap = signEntry(p.ids.consumer, { ...block.entry, seq: block.entry.seq + 1 })
    const r = replay([...p.log, forged, byStranger, gap], p.state.pair)
    expect(r.problems.map((x) => x.code)).toEqual(['WrongPairError', 'NotAPartyError', 'OutOfOrderError'])
    expect(p.reject('consumer', 'manifest', { deal: other, workload: {} }, T0 + 10).name).toBe('SchemaError')
    expect(p.reject('consumer', 'dispute', { deal: other, epochs: [0], reason: 'x' }, T0 + 10).name).toBe('UnknownDealError')
    expect(p.reject('consumer', 'collateral', { deal: id, amount: { amount: 1, asset: 'USD' } }, T0 + 10).name).toBe('WrongPartyError')
  })
})

function replayOne(p: TestPair, block: ReturnType<TestPair['sign']>) {
  const r = replay([...p.log, block], p.state.pair)
  if (r.problems.length > 0) throw new Error(r.problems[0]?.code)
}

describe('payment entries', () => {
  it('acks must match, once; rail results must name the contract rail', () => {
    const p = new TestPair()
    const id = activeDeal(p, terms({ rail: 'http' }))
    served(p, id, 0)
    p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 30)
    const v = p.append('consumer', 'voucher', buildVoucher(p.state, id), endOf(0) + 40)
    expect(p.reject('provider', 'ack', { deal: id, voucher: v.cid, amount: { amount: 999, asset: 'USD' } }, endOf(0) + 50).name).toBe('AckMismatchError')
    expect(p.reject('provider', 'ack', { deal: id, voucher: id, amount: { amount: 1000, asset: 'USD' } }, endOf(0) + 50).name).toBe('UnknownVoucherError')
    expect(p.reject('consumer', 'ack', buildAck(p.state, id), endOf(0) + 50).name).toBe('WrongPartyError')
    p.append('provider', 'ack', buildAck(p.state, id), endOf(0) + 50)
    expect(p.reject('provider', 'ack', buildAck(p.state, id), endOf(0) + 60).name).toBe('AlreadyAcknowledgedError')
    const rr = { deal: id, voucher: v.cid, rail: 'http', status: 'failed', detail: 'HTTP 503', reference: null }
    expect(p.reject('consumer', 'rail-result', { ...rr, rail: 'command' }, endOf(0) + 70).name).toBe('RailMismatchError')
    expect(p.reject('consumer', 'rail-result', { ...rr, detail: 'x'.repeat(1025) }, endOf(0) + 70).name).toBe('SchemaError')
    p.append('consumer', 'rail-result', rr, endOf(0) + 70)
    expect(dealOf(p, id).railSettled).toBe(0)
    p.append('consumer', 'rail-result', { ...rr, status: 'ok', detail: 'HTTP 200', reference: 'tx-1' }, endOf(0) + 80)
    expect(dealOf(p, id).railSettled).toBe(1000)
    expect(p.reject('consumer', 'rail-result', { ...rr, status: 'ok' }, endOf(0) + 90).name).toBe('RailMismatchError')
  })

  it('a paid epoch can no longer be disputed; a disputed one cannot be paid from its evaluation', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    settled(p, id, 0)
    expect(p.reject('provider', 'dispute', { deal: id, epochs: [0], reason: 'x' }, endOf(1)).name).toBe('DisputeReleasedEpochError')
    served(p, id, 1)
    const ev = p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 1), endOf(1) + 30)
    p.append('consumer', 'dispute', { deal: id, epochs: [1], reason: 'results were wrong' }, endOf(1) + 40)
    expect(p.reject('provider', 'dispute', { deal: id, epochs: [1], reason: 'x' }, endOf(1) + 50).name).toBe('EpochAlreadyDisputedError')
    expect(p.reject('consumer', 'voucher', { deal: id, amount: { amount: 2000, asset: 'USD' }, authorisedBy: [ev.cid] }, endOf(1) + 60).name).toBe(
      'PaymentNotAuthorizedError',
    )
    expect(dealOf(p, id).held).toBe(1000)
    expect(p.reject('consumer', 'dispute', { deal: id, epochs: [3], reason: 'x' }, endOf(3)).name).toBe('EpochOutOfRangeError')
  })
})

describe('rulings', () => {
  it('must fit the dispute and the contract; duplicates and late appeals are refused', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    const d = p.append('consumer', 'dispute', { deal: id, epochs: [0], reason: 'x' }, endOf(0) + 30)
    const at = endOf(0) + 100
    const body = rulingBodyFor(p.state, id, d.cid, { toProvider: 400, collateralToConsumer: 100, reasons: 'split', relied: [d.cid], issuedAt: at })
    const refuse = (b: typeof body) => p.reject('consumer', 'ruling', { deal: id, ruling: signRuling(arbiter, b) }, at).name
    expect(refuse({ ...body, award: { ...body.award, toProvider: { amount: 1001, asset: 'USD' } } })).toBe('RulingMismatchError')
    expect(refuse({ ...body, award: { ...body.award, collateralToConsumer: { amount: 501, asset: 'USD' } } })).toBe('RulingMismatchError')
    expect(refuse({ ...body, epochs: [0, 1] })).toBe('RulingMismatchError')
    expect(refuse({ ...body, pair: id })).toBe('RulingMismatchError')
    expect(refuse({ ...body, dispute: id })).toBe('UnknownDisputeError')
    expect(refuse({ ...body, relied: [toBlock('nowhere').cid] })).toBe('UnknownReferenceError')
    expect(refuse({ ...body, appealOf: d.cid })).toBe('UnnamedArbiterError')
    const tampered = signRuling(arbiter, body)
    expect(p.reject('consumer', 'ruling', { deal: id, ruling: { ...tampered, body: { ...tampered.body, reasons: 'edited' } } }, at).name).toBe('SignatureError')
    const r1 = p.append('consumer', 'ruling', { deal: id, ruling: signRuling(arbiter, body) }, at)
    expect(refuse(body)).toBe('DuplicateRulingError')
    expect(p.reject('provider', 'appeal', { deal: id, ruling: r1.cid, reason: 'late' }, at + 60_001).name).toBe('AppealDeadlineError')
    // Any entry after the appeal window, even a note, makes the ruling final; then it pays and awards collateral.
    p.append('provider', 'note', 'tick', at + 60_001)
    expect(dealOf(p, id).collateralAwarded).toBe(100)
    expect(p.reject('provider', 'appeal', { deal: id, ruling: r1.cid, reason: 'late' }, at + 60_000).name).toBe('AppealDeadlineError')
    p.append('consumer', 'voucher', { deal: id, amount: { amount: 400, asset: 'USD' }, authorisedBy: [r1.cid] }, at + 60_003)
    const deal = dealOf(p, id)
    expect(deal.paid).toBe(400)
    expect(deal.collateralAwarded).toBe(100)
    expect(p.state.balances.USD).toMatchObject({ collateralBonded: 500, collateralAwarded: 100, held: 0 })
  })

  it('without an appeal arbiter a ruling is final at once', () => {
    const p = new TestPair()
    const id = activeDeal(p, terms({ appealArbiter: null }))
    served(p, id, 0, 0)
    const ev = p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 30)
    expect(dealOf(p, id).openDisputes).toEqual([ev.cid.toString()])
    const body = rulingBodyFor(p.state, id, ev.cid, {
      toProvider: 1000,
      collateralToConsumer: 0,
      reasons: 'monitors were wrong',
      relied: [],
      issuedAt: endOf(0) + 40,
    })
    const r = p.append('provider', 'ruling', { deal: id, ruling: signRuling(arbiter, body) }, endOf(0) + 40)
    expect(p.reject('consumer', 'appeal', { deal: id, ruling: r.cid, reason: 'x' }, endOf(0) + 50).name).toBe('AppealDeadlineError')
    p.append('consumer', 'voucher', buildVoucher(p.state, id), endOf(0) + 60)
    expect(dealOf(p, id).paid).toBe(1000)
  })

  it('evidence requests must come from the arbiter and be answered once', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    const d = p.append('consumer', 'dispute', { deal: id, epochs: [0], reason: 'x' }, endOf(0) + 30)
    const req = {
      pair: p.state.pairId,
      deal: id,
      dispute: d.cid,
      party: 'provider' as const,
      question: 'logs?',
      deadline: endOf(0) + 5000,
      issuedAt: endOf(0) + 40,
    }
    expect(p.reject('consumer', 'evidence-request', { deal: id, request: signEvidenceRequest(monitors[0], req) }, endOf(0) + 50).name).toBe(
      'UnnamedArbiterError',
    )
    const r = p.append('consumer', 'evidence-request', { deal: id, request: signEvidenceRequest(arbiter, req) }, endOf(0) + 50)
    expect(p.reject('consumer', 'timeout', { deal: id, duty: 'evidence-answer', ref: r.cid, epoch: null }, endOf(0) + 4999).name).toBe('TimeoutPrematureError')
    p.append('consumer', 'timeout', { deal: id, duty: 'evidence-answer', ref: r.cid, epoch: null }, endOf(0) + 5000)
    expect(p.reject('provider', 'evidence-answer', { deal: id, request: r.cid, answer: 'late', refs: [] }, endOf(0) + 5001).name).toBe('AlreadyAnsweredError')
  })
})

describe('timeouts and closing', () => {
  it('an unanswered voucher is deemed acknowledged', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 30)
    const v = p.append('consumer', 'voucher', buildVoucher(p.state, id), endOf(0) + 40)
    const claim = { deal: id, duty: 'ack', ref: v.cid, epoch: null }
    expect(p.reject('consumer', 'timeout', claim, endOf(0) + 40 + 29_999).name).toBe('TimeoutPrematureError')
    p.append('consumer', 'timeout', claim, endOf(0) + 40 + 30_000)
    expect(dealOf(p, id).acknowledged).toBe(1000)
    expect(p.reject('provider', 'ack', buildAck(p.state, id), endOf(0) + 40 + 30_001).name).toBe('AlreadyAcknowledgedError')
    expect(p.reject('consumer', 'timeout', claim, endOf(0) + 40 + 30_002).name).toBe('NothingOutstandingError')
  })

  it('a provider that stops reporting usage is cut off at that epoch', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    settled(p, id, 0)
    const claim = { deal: id, duty: 'usage', ref: null, epoch: 1 }
    expect(p.reject('consumer', 'timeout', claim, endOf(1) + 29_999).name).toBe('TimeoutPrematureError')
    expect(p.reject('consumer', 'timeout', { ...claim, epoch: 0 }, endOf(1) + 30_000).name).toBe('NothingOutstandingError')
    p.append('consumer', 'timeout', claim, endOf(1) + 30_000)
    const d = dealOf(p, id)
    expect(d).toMatchObject({ status: 'closed', defaulted: 'provider' })
    expect(d.close?.endEpoch).toBe(1)
    expect(p.reject('provider', 'usage', { deal: id, epoch: 1, ...usageFigures() }, endOf(1) + 30_001).name).toBe('DealClosedError')
  })

  it('a consumer that stops paying ends service; what is authorised stays due', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    served(p, id, 0)
    const ev = p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 30)
    const claim = { deal: id, duty: 'voucher', ref: ev.cid, epoch: null }
    expect(p.reject('provider', 'timeout', claim, endOf(0) + 30 + 29_999).name).toBe('TimeoutPrematureError')
    p.append('provider', 'timeout', claim, endOf(0) + 30 + 30_000)
    expect(dealOf(p, id)).toMatchObject({ status: 'closed', defaulted: 'consumer' })
    expect(p.state.balances.USD?.due).toBe(1000)
  })

  it('completion needs the whole term elapsed; close is once', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    expect(p.reject('consumer', 'close', { deal: id, reason: 'completed', note: '' }, endOf(3) - 1).name).toBe('CloseNotCompleteError')
    p.append('provider', 'close', { deal: id, reason: 'terminated', note: 'maintenance' }, endOf(0) + 5)
    const d = dealOf(p, id)
    expect(d.close?.endEpoch).toBe(2) // epoch 1 was running and may finish
    expect(p.reject('consumer', 'close', { deal: id, reason: 'terminated', note: '' }, endOf(0) + 6).name).toBe('DealClosedError')
    expect(p.reject('consumer', 'observation', { deal: id, observation: observation(monitors[0], 2, 100) }, endOf(2)).name).toBe('ObservationWindowError')
  })

  it('a certificate must state what the record shows and be signed by its appender', () => {
    const p = new TestPair()
    const id = activeDeal(p, terms({ epochs: 1, maxEpochs: 1 }))
    settled(p, id, 0)
    p.append('consumer', 'close', { deal: id, reason: 'completed', note: '' }, endOf(0) + 100)
    const good = buildCertificate(provider, p.state, id, endOf(0) + 200)
    const wrongPaid = buildCertificateWith(p, id, { paid: { amount: 999, asset: 'USD' } })
    expect(p.reject('provider', 'certificate', wrongPaid, endOf(0) + 200).name).toBe('CertificateMismatchError')
    expect(p.reject('consumer', 'certificate', good, endOf(0) + 200).name).toBe('CertificateMismatchError')
    const staleHeads = buildCertificate(provider, p.state, id, endOf(0) + 200, { provider: null, consumer: null })
    expect(p.reject('provider', 'certificate', staleHeads, endOf(0) + 200).name).toBe('CertificateMismatchError')
    p.append('provider', 'certificate', good, endOf(0) + 200)
    expect(p.reject('provider', 'certificate', buildCertificate(provider, p.state, id, endOf(0) + 300), endOf(0) + 300).name).toBe('DealClosedError')
  })
})

function buildCertificateWith(p: TestPair, id: CID, over: object) {
  const c = buildCertificate(provider, p.state, id, endOf(0) + 200)
  return { deal: id, certificate: signCertificate(provider, { ...c.certificate.body, ...over }) }
}

import { encode, toBlock } from '@tally/core'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  assertAdvances,
  assertFresh,
  buildEvaluation,
  buildRailResult,
  buildVoucher,
  DEAL_KINDS,
  decodeBody,
  decodeObservation,
  decodeObservationBytes,
  epochOfWindow,
  MAX_OBSERVATION_BYTES,
  type ObservationBody,
  railRelease,
  signObservation,
  truncateUtf8,
  validateObservation,
} from '../src/index.ts'
import { activeDeal, endOf, EPOCH, monitors, observation, provider, resetObservationSeqs, T0, TestPair, terms, usageFigures } from './helpers.ts'

beforeEach(() => resetObservationSeqs())

const body = (over: Partial<ObservationBody> = {}): ObservationBody => ({
  subject: provider.peerId,
  seq: 1,
  window: { start: T0, end: T0 + 10_000 },
  samples: { sent: 10, ok: 9 },
  availabilityBp: 9000,
  latencyUs: { p50: 100, p95: 200, p99: 300 },
  challenges: [{ kind: 'identity', ok: true, durationMs: 12 }],
  credential: null,
  issuedAt: T0 + 10_000,
  ...over,
})

const name = (f: () => unknown): string => {
  try {
    f()
  } catch (err) {
    return (err as Error).name
  }
  return 'none'
}

describe('observation documents', () => {
  it('round-trip through bytes with the signature checked', () => {
    const doc = signObservation(monitors[0], body())
    const bytes = encode(doc)
    expect(decodeObservationBytes(bytes)).toEqual(doc)
    const tampered = encode({ ...doc, body: { ...doc.body, samples: { sent: 10, ok: 10 }, availabilityBp: 10_000 } })
    expect(name(() => decodeObservationBytes(tampered))).toBe('SignatureError')
  })

  it('refuse inconsistent or malformed bodies with SchemaError', () => {
    const bad: Partial<ObservationBody>[] = [
      { availabilityBp: 9500 },
      { samples: { sent: 10, ok: 11 } },
      { samples: { sent: 0, ok: 0 }, availabilityBp: 0, latencyUs: null },
      { samples: { sent: 10, ok: 0 }, availabilityBp: 0 },
      { latencyUs: null },
      { latencyUs: { p50: 300, p95: 200, p99: 100 } },
      { window: { start: T0, end: T0 } },
      { issuedAt: T0 },
      { seq: 0 },
      { subject: 'not-a-peer' },
    ]
    for (const over of bad) expect(name(() => signObservation(monitors[0], body(over)))).toBe('SchemaError')
    expect(name(() => signObservation(monitors[0], { ...body(), extra: 1 } as ObservationBody))).toBe('SchemaError')
    expect(name(() => decodeObservation({ type: 'observation', by: monitors[0].peerId, body: body() }))).toBe('SchemaError')
    expect(name(() => decodeObservation('observation'))).toBe('SchemaError')
    const ruling = signObservation(monitors[0], body())
    expect(name(() => decodeObservation({ ...ruling, type: 'ruling' }))).toBe('SignatureError')
  })

  it('are size-bounded', () => {
    const big = signObservation(
      monitors[0],
      body({ challenges: Array.from({ length: 32 }, () => ({ kind: 'compute' as const, ok: true, durationMs: 1, detail: 'x'.repeat(256) })) }),
    )
    const bytes = encode(big)
    expect(bytes.byteLength).toBeGreaterThan(MAX_OBSERVATION_BYTES)
    expect(name(() => decodeObservationBytes(bytes))).toBe('DecodeError')
  })

  it('freshness and sequence take the reader’s clock as an argument', () => {
    const doc = signObservation(monitors[0], body({ seq: 5 }))
    const at = doc.body.issuedAt
    expect(() => assertFresh(doc, { now: at })).not.toThrow()
    expect(name(() => assertFresh(doc, { now: at + 5 * 60_000 + 1 }))).toBe('ObservationStaleError')
    expect(name(() => assertFresh(doc, { now: at - 30_001 }))).toBe('ObservationStaleError')
    expect(() => assertAdvances(doc, 4)).not.toThrow()
    expect(name(() => assertAdvances(doc, 5))).toBe('ObservationSequenceError')
    expect(validateObservation(encode(doc), { now: at, lastSeq: 1 }).body.seq).toBe(5)
  })

  it('belong to the epoch holding their window midpoint', () => {
    expect(epochOfWindow({ start: T0, end: T0 + EPOCH }, T0, EPOCH)).toBe(0)
    expect(epochOfWindow({ start: T0 + EPOCH - 10, end: T0 + EPOCH + 30 }, T0, EPOCH)).toBe(1)
    expect(epochOfWindow({ start: T0 - 30, end: T0 + 10 }, T0, EPOCH)).toBeNull()
    expect(epochOfWindow({ start: T0, end: T0 + EPOCH + 1 }, T0, EPOCH)).toBeNull()
  })
})

describe('entry bodies', () => {
  it('decode strictly: unknown kinds, extra fields, floats and wrong types are typed errors', () => {
    expect(name(() => decodeBody('checkpoint', {}))).toBe('UnknownKindError')
    expect(name(() => decodeBody('voucher', { deal: toBlock(1).cid, amount: { amount: 1, asset: 'USD' }, authorisedBy: [], extra: true }))).toBe('SchemaError')
    expect(name(() => decodeBody('voucher', { deal: toBlock(1).cid, amount: { amount: 0.5, asset: 'USD' }, authorisedBy: [] }))).toBe('SchemaError')
    expect(name(() => decodeBody('ack', { deal: 'bafy', voucher: toBlock(1).cid, amount: { amount: 1, asset: 'USD' } }))).toBe('SchemaError')
    expect(name(() => decodeBody('dispute', { deal: toBlock(1).cid, epochs: [2, 1], reason: '' }))).toBe('SchemaError')
    expect(name(() => decodeBody('observation', { deal: toBlock(1).cid, observation: { type: 'observation' } }))).toBe('SchemaError')
    for (const kind of DEAL_KINDS) expect(name(() => decodeBody(kind, null))).toBe('SchemaError')
  })
})

describe('payment rails', () => {
  it('a voucher becomes a rail release; outcomes become bounded rail-result bodies', () => {
    const p = new TestPair()
    const id = activeDeal(p, terms({ rail: 'command' }))
    for (const e of [0, 1]) {
      p.append('provider', 'usage', { deal: id, epoch: e, ...usageFigures() }, endOf(e))
      for (const m of [monitors[0], monitors[1]]) p.append('consumer', 'observation', { deal: id, observation: observation(m, e, 100) }, endOf(e) + 1)
      p.append('consumer', 'evaluation', buildEvaluation(p.state, id, e), endOf(e) + 2)
    }
    const v = p.append('consumer', 'voucher', buildVoucher(p.state, id), endOf(1) + 3)
    const req = railRelease(p.state, id, v.cid, v.bytes)
    expect(req).toMatchObject({ deal: id.toString(), voucher: v.cid.toString(), payer: p.ids.consumer.peerId, payee: provider.peerId })
    expect(req).toMatchObject({ cumulative: { amount: 2000, asset: 'USD' }, delta: { amount: 2000, asset: 'USD' } })
    expect(Buffer.from(req.voucherBytesBase64, 'base64').equals(Buffer.from(v.bytes))).toBe(true)
    const rr = buildRailResult(id, v.cid, { rail: 'command', status: 'failed', detail: 'é'.repeat(1000), reference: null })
    expect(new TextEncoder().encode(rr.detail).byteLength).toBeLessThanOrEqual(1024)
    p.append('consumer', 'rail-result', rr, endOf(1) + 4)
    expect(p.state.deals.get(id.toString())?.unsettledOnRail).toHaveLength(1)
    p.append('consumer', 'rail-result', buildRailResult(id, v.cid, { rail: 'command', status: 'ok', detail: 'exit 0', reference: 'r-1' }), endOf(1) + 5)
    expect(p.state.deals.get(id.toString())?.unsettledOnRail).toHaveLength(0)
    expect(truncateUtf8('aé', 2)).toBe('a')
  })
})

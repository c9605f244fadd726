import type { EntryBlock } from '@tally/core'
import { type DealBody, decodeBody, PASS_THROUGH_KINDS } from './bodies/index.ts'
import { cidEq } from './cid.ts'
import type { PartyRole } from './contract.ts'
import { NotAPartyError, OutOfOrderError, WrongPairError } from './errors.ts'
import { counterpart, type PairState } from './state.ts'
import { answerEvidenceRequest, appeal, finalizeDue, raiseDispute, relayEvidenceRequest, relayRuling } from './transitions/adjudicate.ts'
import type { Outcome, Step } from './transitions/common.ts'
import { certify, claimTimeout, closeDeal } from './transitions/end.ts'
import { evaluate } from './transitions/evaluate.ts'
import { attachObservation, attest, bond, declareManifest, recordUsage } from './transitions/execute.ts'
import { accept, counter, propose, reject } from './transitions/negotiate.ts'
import { ack, issueVoucher, recordRailResult } from './transitions/pay.ts'

const PASS_THROUGH: ReadonlySet<string> = new Set(PASS_THROUGH_KINDS)

/**
 * Check that `block` extends its author's chain in this pair: right pair,
 * a party as author, next seq, prev = the author's head, seen = an entry of
 * the counterparty already reduced. (Signatures and hashes are
 * @tally/lineage's; the reducer trusts blocks it is given to be authentic.)
 */
export function chainStep(state: PairState, block: EntryBlock): Step {
  const e = block.entry
  if (!cidEq(e.pair, state.pairId)) throw new WrongPairError(`entry belongs to pair ${e.pair}, not ${state.pairId}`, { pair: e.pair.toString() })
  let role: PartyRole
  if (e.author === state.pair.provider) role = 'provider'
  else if (e.author === state.pair.consumer) role = 'consumer'
  else throw new NotAPartyError(`entry author ${e.author} is not a party of this pair`, { author: e.author })
  const head = state.heads[role]
  const expected = (head?.seq ?? 0) + 1
  if (e.seq !== expected) throw new OutOfOrderError(`${role} entry seq ${e.seq}, expected ${expected}`, { seq: e.seq, expected })
  if (head === null ? e.prev !== null : e.prev === null || !cidEq(e.prev, head.cid)) {
    throw new OutOfOrderError(`${role} entry #${e.seq} does not link to the previous entry`, { seq: e.seq })
  }
  if (e.seen !== null) {
    const seen = state.entries.get(e.seen.toString())
    if (seen === undefined || seen.role !== counterpart(role)) {
      throw new OutOfOrderError(`${role} entry #${e.seq} has seen ${e.seen}, which is not an earlier ${counterpart(role)} entry`, { seq: e.seq })
    }
  }
  return { state, block, role, time: e.time, cid: block.cid, key: block.cid.toString() }
}

/** Record the entry's place in its chain, and which deal (if any) it changed. */
export function recordEntry(step: Step, state: PairState, deal: string | null, counted: boolean): PairState {
  const e = step.block.entry
  return {
    ...state,
    heads: { ...state.heads, [step.role]: { seq: e.seq, cid: step.cid } },
    entries: state.entries.set(step.key, { cid: step.cid, role: step.role, seq: e.seq, kind: e.kind, time: e.time, deal }),
    time: counted ? Math.max(state.time, e.time) : state.time,
    count: state.count + 1,
  }
}

function apply(step: Step, d: DealBody): Outcome {
  switch (d.kind) {
    case 'proposal':
      return propose(step, d.body)
    case 'counter':
      return counter(step, d.body)
    case 'acceptance':
      return accept(step, d.body)
    case 'reject':
      return reject(step, d.body)
    case 'collateral':
      return bond(step, d.body)
    case 'attestation':
      return attest(step, d.body)
    case 'manifest':
      return declareManifest(step, d.body)
    case 'usage':
      return recordUsage(step, d.body)
    case 'observation':
      return attachObservation(step, d.body)
    case 'evaluation':
      return evaluate(step, d.body)
    case 'voucher':
      return issueVoucher(step, d.body)
    case 'ack':
      return ack(step, d.body)
    case 'rail-result':
      return recordRailResult(step, d.body)
    case 'dispute':
      return raiseDispute(step, d.body)
    case 'evidence-request':
      return relayEvidenceRequest(step, d.body)
    case 'evidence-answer':
      return answerEvidenceRequest(step, d.body)
    case 'ruling':
      return relayRuling(step, d.body)
    case 'appeal':
      return appeal(step, d.body)
    case 'certificate':
      return certify(step, d.body)
    case 'timeout':
      return claimTimeout(step, d.body)
    case 'close':
      return closeDeal(step, d.body)
  }
}

/**
 * The deal state machine: the pair's state after `block`, or a typed
 * rejection (a `DealRejection` subclass, `SchemaError`, `SignatureError`
 * for an embedded document, `UnknownKindError`). Pure: never mutates
 * `state`, reads no clock; time comes from entries.
 */
export function reduce(state: PairState, block: EntryBlock): PairState {
  const step = chainStep(state, block)
  const kind = block.entry.kind
  const body = PASS_THROUGH.has(kind) ? null : decodeBody(kind, block.entry.body)
  // Time passing, as any entry shows it, can make rulings final before the entry itself applies.
  const s = finalizeDue(state, block.entry.time)
  if (body === null) return recordEntry(step, s, null, true)
  const out = apply({ ...step, state: s }, body)
  return recordEntry(step, out.state, out.deal, true)
}

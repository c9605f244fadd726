import { type CID, type Identity, type Money, parseWith } from '@tally/core'
import type { Attestation } from './attestation.ts'
import type { AppealBody, DisputeBody, EvidenceAnswerBody } from './bodies/disputes.ts'
import type { CloseBody, TimeoutBody, TimeoutDuty } from './bodies/ending.ts'
import { type ManifestBody, type UsageBody, usageBodySchema, type Workload, workloadSchema } from './bodies/execution.ts'
import type { AcceptanceBody, CounterBody, ProposalBody, RejectBody } from './bodies/negotiation.ts'
import type { AckBody, EvaluationBody, VoucherBody } from './bodies/settlement.ts'
import { type Certificate, signCertificate } from './certificate.ts'
import { checkTerms, type ContractTerms } from './contract.ts'
import { DealNotActiveError, UnknownDealError, UnknownDisputeError, UnknownVoucherError } from './errors.ts'
import { admissibleEvidence, resolveEvidence } from './evidence.ts'
import type { Observation } from './observation.ts'
import type { EvidenceRequest, Ruling, RulingBody } from './ruling.ts'
import type { DealState, Offer, PairState } from './state.ts'
import { certificateSummary } from './summary.ts'
import { evaluateEpoch, settleVerdict } from './verdict.ts'

/**
 * Body builders: each returns the body of one entry kind, ready for the
 * pair log's `append(kind, body)`. Those that take the state compute what
 * the reducer will check, so a daemon that follows `duties` appends legal
 * entries.
 */

function dealIn(state: PairState, deal: CID): DealState {
  const d = state.deals.get(deal.toString())
  if (d === undefined) throw new UnknownDealError(`no deal ${deal} in this pair log`, { deal: deal.toString() })
  return d
}

function termsOf(d: DealState): ContractTerms {
  if (d.terms === null) throw new DealNotActiveError(`deal ${d.key} has no contract (${d.status})`)
  return d.terms
}

function latest(d: DealState): Offer {
  return d.offers[d.offers.length - 1] as Offer
}

export function buildProposal(terms: ContractTerms): ProposalBody {
  return { terms: checkTerms(terms) }
}

export function buildCounter(state: PairState, deal: CID, terms: ContractTerms): CounterBody {
  return { deal, offer: latest(dealIn(state, deal)).cid, terms: checkTerms(terms, state.pair) }
}

export function buildAcceptance(state: PairState, deal: CID): AcceptanceBody {
  return { deal, offer: latest(dealIn(state, deal)).cid }
}

export function buildReject(state: PairState, deal: CID, reason: string): RejectBody {
  return { deal, offer: latest(dealIn(state, deal)).cid, reason }
}

/** The collateral still to bond (or `amount` if given). */
export function buildCollateral(state: PairState, deal: CID, amount?: number): { deal: CID; amount: Money } {
  const d = dealIn(state, deal)
  const t = termsOf(d)
  return { deal, amount: { amount: amount ?? Math.max(0, t.collateral.amount - d.collateralBonded), asset: t.collateral.asset } }
}

export function buildAttestation(deal: CID, attestation: Attestation): { deal: CID; attestation: Attestation } {
  return { deal, attestation }
}

export function buildManifest(deal: CID, workload: Workload): ManifestBody {
  return { deal, workload: parseWith(workloadSchema, workload, 'workload') }
}

export function buildUsage(deal: CID, epoch: number, figures: Omit<UsageBody, 'deal' | 'epoch'>): UsageBody {
  return parseWith(usageBodySchema, { deal, epoch, ...figures }, 'usage body')
}

export function buildObservation(deal: CID, observation: Observation): { deal: CID; observation: Observation } {
  return { deal, observation }
}

/**
 * The evaluation of `epoch` over `evidence` (default: all admissible
 * evidence the state holds, which is what the reducer requires of an
 * author who has seen it), with the verdict and amount the rule gives.
 */
export function buildEvaluation(state: PairState, deal: CID, epoch: number, evidence?: readonly CID[]): EvaluationBody {
  const d = dealIn(state, deal)
  const t = termsOf(d)
  const cids = evidence === undefined ? admissibleEvidence(d, epoch) : [...evidence]
  const resolved = resolveEvidence(state, d, epoch, cids)
  const verdict = evaluateEpoch(t.rule, resolved.evidence)
  return { deal, epoch, rule: t.rule.version, evidence: cids, verdict: verdict.verdict, amount: settleVerdict(verdict, t.price).amount }
}

/** The next cumulative voucher: everything named so far plus every unnamed authority. */
export function buildVoucher(state: PairState, deal: CID): VoucherBody {
  const d = dealIn(state, deal)
  const t = termsOf(d)
  let amount = d.namedTotal
  const authorisedBy: CID[] = []
  for (const key of d.pending) {
    const a = d.authorities.get(key)
    if (a === undefined) continue
    amount += a.amount
    authorisedBy.push(a.cid)
  }
  return { deal, amount: { amount, asset: t.price.asset }, authorisedBy }
}

/** Acknowledge `voucher` (default: the oldest not yet acknowledged, else the latest). */
export function buildAck(state: PairState, deal: CID, voucher?: CID): AckBody {
  const d = dealIn(state, deal)
  const t = termsOf(d)
  const first = d.unacked[0]
  const v = voucher !== undefined ? d.vouchers.get(voucher.toString()) : first !== undefined ? d.vouchers.get(first) : d.lastVoucher
  if (v == null) throw new UnknownVoucherError(`deal ${d.key} has no ${voucher === undefined ? 'voucher' : `voucher ${voucher}`}`)
  return { deal, voucher: v.cid, amount: { amount: v.amount, asset: t.price.asset } }
}

export function buildDispute(deal: CID, epochs: readonly number[], reason: string): DisputeBody {
  return { deal, epochs: [...new Set(epochs)].sort((a, b) => a - b), reason }
}

export function buildEvidenceRequest(deal: CID, request: EvidenceRequest): { deal: CID; request: EvidenceRequest } {
  return { deal, request }
}

export function buildEvidenceAnswer(deal: CID, request: CID, answer: string, refs: readonly CID[] = []): EvidenceAnswerBody {
  return { deal, request, answer, refs: [...refs] }
}

/**
 * The body an arbiter signs (with `signRuling`) for a dispute in this
 * state: pair, deal, the dispute's epochs and, for an appeal, the ruling
 * entry appealed.
 */
export function rulingBodyFor(
  state: PairState,
  deal: CID,
  dispute: CID,
  decision: { toProvider: number; collateralToConsumer: number; reasons: string; relied: readonly CID[]; issuedAt: number },
): RulingBody {
  const d = dealIn(state, deal)
  const t = termsOf(d)
  const disp = d.disputes.get(dispute.toString())
  if (disp === undefined) throw new UnknownDisputeError(`no dispute ${dispute} in deal ${d.key}`)
  const appealOf = disp.status === 'appealed' ? (disp.rulings[0]?.cid ?? null) : null
  return {
    pair: state.pairId,
    deal,
    dispute,
    epochs: [...disp.epochs],
    award: {
      toProvider: { amount: decision.toProvider, asset: t.price.asset },
      collateralToConsumer: { amount: decision.collateralToConsumer, asset: t.collateral.asset },
    },
    reasons: decision.reasons,
    relied: [...decision.relied],
    appealOf,
    issuedAt: decision.issuedAt,
  }
}

export function buildRuling(deal: CID, ruling: Ruling): { deal: CID; ruling: Ruling } {
  return { deal, ruling }
}

export function buildAppeal(deal: CID, ruling: CID, reason: string): AppealBody {
  return { deal, ruling, reason }
}

/** The CIDs of both chains' heads as the state holds them. */
export function headsOf(state: PairState): { provider: CID | null; consumer: CID | null } {
  return { provider: state.heads.provider?.cid ?? null, consumer: state.heads.consumer?.cid ?? null }
}

/**
 * The signer's completion certificate: the summary the record gives, and
 * its heads (default: the state's, i.e. its own last entry and the
 * counterparty's last one it holds), which must still be its heads when it
 * appends.
 */
export function buildCertificate(
  party: Identity,
  state: PairState,
  deal: CID,
  issuedAt: number,
  heads: { provider: CID | null; consumer: CID | null } = headsOf(state),
): { deal: CID; certificate: Certificate } {
  const summary = certificateSummary(state, dealIn(state, deal))
  return { deal, certificate: signCertificate(party, { ...summary, heads, issuedAt }) }
}

export function buildTimeout(deal: CID, duty: TimeoutDuty, ref: CID | null, epoch: number | null = null): TimeoutBody {
  return { deal, duty, ref, epoch }
}

export function buildClose(deal: CID, reason: CloseBody['reason'], note = ''): CloseBody {
  return { deal, reason, note }
}

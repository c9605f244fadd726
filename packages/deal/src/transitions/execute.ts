import { bytesEqual, type CID } from '@tally/core'
import { type Attestation, attestedUnits } from '../attestation.ts'
import type { CollateralBody, ManifestBody, UsageBody } from '../bodies/execution.ts'
import {
  AttestationAfterStartError,
  AttestationMismatchError,
  CollateralMissingError,
  DealClosedError,
  DuplicateUsageError,
  EpochNotEndedError,
  EpochOutOfRangeError,
  ManifestAfterStartError,
  MissingAttestationError,
  MissingManifestError,
  ObservationConflictError,
  ObservationLimitError,
  ObservationSubjectError,
  ObservationWindowError,
  WrongPartyError,
} from '../errors.ts'
import { putDeal, putEpoch } from '../ledger.ts'
import { epochOfWindow, type Observation, observationEvidence } from '../observation.ts'
import { monitorWeight } from '../rule.ts'
import { type DealState, epochEnd, epochLimit, epochOf } from '../state.ts'
import { type Outcome, requireAsset, requireDeal, requireRole, requireServing, requireSettling, type Step } from './common.ts'

/**
 * Most observations the reducer keeps per epoch from the contract's monitors,
 * and, counted apart, from monitors it does not name. Apart, so that a party
 * attaching outsiders' reports (Sybil identities cost nothing) can never use
 * up the room the named monitors' evidence needs.
 */
export const MAX_OBSERVATIONS_PER_EPOCH = 256
export const MAX_FOREIGN_OBSERVATIONS_PER_EPOCH = 256

/** collateral: the provider bonds (more) collateral in the contract's collateral asset. */
export function bond(step: Step, body: CollateralBody): Outcome {
  requireRole(step, 'provider', 'collateral')
  const deal = requireDeal(step, body.deal)
  const terms = requireServing(deal, 'collateral')
  requireAsset(body.amount, terms.collateral.asset, 'collateral')
  return { state: putDeal(step.state, { ...deal, collateralBonded: deal.collateralBonded + body.amount.amount }), deal: deal.key }
}

/** attestation: the provider's signed hardware facts, before the workload starts. */
export function attest(step: Step, body: { deal: CID; attestation: Attestation }): Outcome {
  requireRole(step, 'provider', 'an attestation')
  const deal = requireDeal(step, body.deal)
  const terms = requireServing(deal, 'attestations')
  if (deal.started) throw new AttestationAfterStartError(`deal ${deal.key} already has usage; the attestation had to come first`, { deal: deal.key })
  const doc = body.attestation
  if (doc.by !== step.state.pair.provider) throw new WrongPartyError(`attestation signed by ${doc.by}, not the provider`, { by: doc.by })
  const facts = doc.body.facts
  if (facts.hardwareClass !== terms.resources.class) {
    throw new AttestationMismatchError(`attested class ${facts.hardwareClass} is not the contracted ${terms.resources.class}`, { deal: deal.key })
  }
  const units = attestedUnits(doc.body)
  if (units < terms.resources.count) {
    throw new AttestationMismatchError(`attested ${units} units of ${facts.hardwareClass}, the contract needs ${terms.resources.count}`, { deal: deal.key })
  }
  const next: DealState = { ...deal, attestation: { cid: step.cid, hardwareClass: facts.hardwareClass, source: facts.classSource } }
  return { state: putDeal(step.state, next), deal: deal.key }
}

/** manifest: the consumer's workload and envelope, before the workload starts (the last one counts). */
export function declareManifest(step: Step, body: ManifestBody): Outcome {
  requireRole(step, 'consumer', 'a manifest')
  const deal = requireDeal(step, body.deal)
  requireServing(deal, 'manifests')
  if (deal.started) throw new ManifestAfterStartError(`deal ${deal.key} already has usage; the manifest can no longer change`, { deal: deal.key })
  return { state: putDeal(step.state, { ...deal, manifest: { cid: step.cid, workload: body.workload } }), deal: deal.key }
}

function requireEpochInRange(deal: DealState, epoch: number, what: string): void {
  const limit = epochLimit(deal)
  if (epoch < limit) return
  if (deal.close !== null && epoch < (deal.terms?.epochs ?? deal.terms?.maxEpochs ?? 0)) {
    throw new DealClosedError(`deal ${deal.key} closed before epoch ${epoch}; no ${what} for it`, { deal: deal.key, epoch })
  }
  throw new EpochOutOfRangeError(`epoch ${epoch} is beyond the deal's ${limit} epochs`, { deal: deal.key, epoch, limit })
}

/** usage: the provider's metered figures for one ended epoch. */
export function recordUsage(step: Step, body: UsageBody): Outcome {
  requireRole(step, 'provider', 'usage')
  let deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal, 'usage')
  const e = body.epoch
  requireEpochInRange(deal, e, 'usage')
  if (deal.attestation === null) throw new MissingAttestationError(`deal ${deal.key} has no hardware attestation before its first usage`, { deal: deal.key })
  if (deal.manifest === null) throw new MissingManifestError(`deal ${deal.key} has no manifest`, { deal: deal.key })
  if (deal.collateralBonded < terms.collateral.amount) {
    throw new CollateralMissingError(`provider bonded ${deal.collateralBonded} of ${terms.collateral.amount} ${terms.collateral.asset} collateral`, {
      deal: deal.key,
    })
  }
  const end = epochEnd(deal, e)
  if (step.time < end) throw new EpochNotEndedError(`usage for epoch ${e} at ${step.time}, before it ends at ${end}`, { deal: deal.key, epoch: e })
  const ep = epochOf(deal, e)
  if (ep.usage !== null) throw new DuplicateUsageError(`epoch ${e} already has usage ${ep.usage.cid}`, { deal: deal.key, epoch: e })
  const limits = deal.manifest.workload.limits
  const m = body.metered
  const overEnvelope = (limits.memoryBytes !== undefined && m.maxRssBytes > limits.memoryBytes) || (limits.cpuMs !== undefined && m.cpuMs > limits.cpuMs)
  deal = putEpoch(deal, { ...ep, usage: { cid: step.cid, seq: step.block.entry.seq, time: step.time, claimBp: body.claimBp, metered: { ...m }, overEnvelope } })
  let nextUsage = deal.nextUsage
  while (deal.epochs.get(String(nextUsage))?.usage != null) nextUsage++
  deal = {
    ...deal,
    started: true,
    nextUsage,
    usageCount: deal.usageCount + 1,
    usageEnd: Math.max(deal.usageEnd, e + 1),
    metered: { wallMs: deal.metered.wallMs + m.wallMs, cpuMs: deal.metered.cpuMs + m.cpuMs, gpuMs: deal.metered.gpuMs + (m.gpuMs ?? 0) },
    overEnvelopeEpochs: deal.overEnvelopeEpochs + (overEnvelope ? 1 : 0),
  }
  return { state: putDeal(step.state, deal), deal: deal.key }
}

/**
 * observation: either party attaches a monitor's signed observation; it
 * belongs to the epoch holding its window's midpoint. Observations from
 * monitors the contract does not name are kept apart and never counted.
 */
export function attachObservation(step: Step, body: { deal: CID; observation: Observation }): Outcome {
  const deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal, 'observations')
  const obs = body.observation
  if (obs.body.subject !== step.state.pair.provider) {
    throw new ObservationSubjectError(`observation is about ${obs.body.subject}, not this pair's provider`, { subject: obs.body.subject })
  }
  const e = epochOfWindow(obs.body.window, deal.start ?? 0, terms.epochMs)
  if (e === null || e >= epochLimit(deal)) {
    throw new ObservationWindowError(`observation window ${obs.body.window.start}..${obs.body.window.end} falls in no epoch of deal ${deal.key}`, {
      deal: deal.key,
    })
  }
  const ep = epochOf(deal, e)
  const named = monitorWeight(terms.rule, obs.by) > 0
  if (named ? ep.observations.length >= MAX_OBSERVATIONS_PER_EPOCH : ep.foreign.length >= MAX_FOREIGN_OBSERVATIONS_PER_EPOCH) {
    const limit = named ? MAX_OBSERVATIONS_PER_EPOCH : MAX_FOREIGN_OBSERVATIONS_PER_EPOCH
    throw new ObservationLimitError(`epoch ${e} already holds ${limit} observations from ${named ? 'named' : 'unnamed'} monitors`, {
      deal: deal.key,
      epoch: e,
    })
  }
  let next = ep
  if (!named) {
    next = { ...ep, foreign: [...ep.foreign, step.cid] }
  } else {
    const key = `${obs.by}#${obs.body.seq}`
    const same = ep.observations.find((o) => o.key === key)
    if (same !== undefined && !bytesEqual(same.sig, obs.sig)) {
      throw new ObservationConflictError(`monitor ${obs.by} signed two different observations with seq ${obs.body.seq}`, { monitor: obs.by, seq: obs.body.seq })
    }
    const record = { cid: step.cid, role: step.role, seq: step.block.entry.seq, key, monitor: obs.by, sig: obs.sig, evidence: observationEvidence(obs) }
    next = { ...ep, observations: [...ep.observations, record] }
  }
  return { state: putDeal(step.state, putEpoch(deal, next)), deal: deal.key }
}

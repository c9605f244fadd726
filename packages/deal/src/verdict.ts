import { z } from 'zod'
import { type Money, type PeerIdString, parseWith, schema } from '@tally/core'
import { UnnamedMonitorError } from './errors.ts'
import { applyBp, BP_ONE, bp } from './money.ts'
import { type EvidenceRule, monitorWeight } from './rule.ts'

export const VERDICTS = ['performed', 'not-performed', 'disputed', 'insufficient'] as const
export type VerdictKind = (typeof VERDICTS)[number]

/** What one counted observation contributes to an epoch's evaluation. */
export interface ObservationEvidence {
  monitor: PeerIdString
  samples: { sent: number; ok: number }
  /** p95 latency over the window; null when no sample succeeded. */
  latencyP95Us: number | null
  challenges: readonly { kind: 'identity' | 'compute'; ok: boolean }[]
}

/** The provider's usage claim for the epoch: the availability it says it delivered. */
export interface UsageEvidence {
  claimBp: number
}

/** Exactly the evidence an evaluation counts for one epoch. */
export interface EpochEvidence {
  usage: UsageEvidence | null
  observations: readonly ObservationEvidence[]
}

export const epochEvidenceSchema = z.strictObject({
  usage: z.strictObject({ claimBp: bp }).nullable(),
  observations: z
    .array(
      z
        .strictObject({
          monitor: schema.peerId,
          samples: z.strictObject({ sent: schema.uint.min(1), ok: schema.uint }),
          latencyP95Us: schema.uint.nullable(),
          challenges: z.array(z.strictObject({ kind: z.enum(['identity', 'compute']), ok: z.boolean() })).max(32),
        })
        .refine((o) => o.samples.ok <= o.samples.sent, 'samples.ok exceeds samples.sent'),
    )
    .max(4096),
})

/** Validate untrusted epoch evidence (test vectors, tools). */
export function decodeEpochEvidence(value: unknown): EpochEvidence {
  return parseWith(epochEvidenceSchema, value, 'epoch evidence')
}

/** How a monitor voted on the epoch after combining all its counted observations. */
export interface MonitorVote {
  monitor: PeerIdString
  weight: number
  availabilityBp: number
  latencyP95Us: number | null
  up: boolean
}

export type MonitorOutcome = 'up' | 'down' | 'split' | 'missing'
export type UsageClaim = 'served' | 'not-served' | 'none' | 'ignored'
export type VerdictReason =
  | 'agreed-up'
  | 'monitors-up'
  | 'provider-admits-down'
  | 'no-usage'
  | 'monitors-down'
  | 'divergence'
  | 'monitors-split'
  | 'insufficient-evidence'

export interface Verdict {
  verdict: VerdictKind
  reason: VerdictReason
  /** Share of the epoch's price authorised for the provider now. */
  payBp: number
  /** Share of the epoch's price held back pending more evidence or a ruling. */
  holdBp: number
  /** Availability the pro-rata amount is based on; null when not performed. */
  basisBp: number | null
  monitors: MonitorOutcome
  claim: UsageClaim
  weight: { up: number; down: number; quorum: number }
  votes: readonly MonitorVote[]
  /** True when the verdict rests on evidence that is missing (so it waits for the grace period). */
  absenceDriven: boolean
}

/** Under `require`, at least one challenge of `kind` ran and every one passed. */
function challengePassed(rule: EvidenceRule, list: readonly ObservationEvidence[], kind: 'identity' | 'compute'): boolean {
  if (rule.challenges[kind] === 'ignore') return true
  let ran = 0
  for (const o of list) {
    for (const c of o.challenges) {
      if (c.kind !== kind) continue
      if (!c.ok) return false
      ran++
    }
  }
  return ran > 0
}

type VerdictBase = Pick<Verdict, 'monitors' | 'claim' | 'weight' | 'votes'>

function notPerformed(base: VerdictBase, reason: VerdictReason, absenceDriven: boolean): Verdict {
  return { ...base, verdict: 'not-performed', reason, payBp: 0, holdBp: 0, basisBp: null, absenceDriven }
}

function disputed(base: VerdictBase, reason: VerdictReason): Verdict {
  return { ...base, verdict: 'disputed', reason, payBp: 0, holdBp: BP_ONE, basisBp: null, absenceDriven: false }
}

/** Combine each named monitor's observations into one vote (rule order). */
export function monitorVotes(rule: EvidenceRule, observations: readonly ObservationEvidence[]): MonitorVote[] {
  const byMonitor = new Map<string, ObservationEvidence[]>()
  for (const o of observations) {
    const list = byMonitor.get(o.monitor)
    if (list === undefined) byMonitor.set(o.monitor, [o])
    else list.push(o)
  }
  for (const peer of byMonitor.keys()) {
    if (monitorWeight(rule, peer) === 0) {
      throw new UnnamedMonitorError(`evidence from monitor ${peer}, which the contract does not name, cannot be counted`, { monitor: peer })
    }
  }
  const votes: MonitorVote[] = []
  for (const m of rule.monitors) {
    const list = byMonitor.get(m.peer)
    if (list === undefined) continue
    let sent = 0
    let ok = 0
    let p95: number | null = null
    for (const o of list) {
      sent += o.samples.sent
      ok += o.samples.ok
      if (o.latencyP95Us !== null && (p95 === null || o.latencyP95Us > p95)) p95 = o.latencyP95Us
    }
    const availabilityBp = sent === 0 ? 0 : Math.floor((ok * BP_ONE) / sent)
    const latencyOk = rule.latency === null || (p95 !== null && p95 <= rule.latency.maxP95Us)
    const challengesOk = challengePassed(rule, list, 'identity') && challengePassed(rule, list, 'compute')
    votes.push({
      monitor: m.peer,
      weight: m.weight,
      availabilityBp,
      latencyP95Us: p95,
      up: availabilityBp >= rule.availability.minBp && latencyOk && challengesOk,
    })
  }
  return votes
}

/**
 * Apply rule v1 to exactly `evidence`. Pure and deterministic: integer
 * arithmetic only, monitors combined in the rule's order. Throws
 * `UnnamedMonitorError` if the evidence includes a monitor the rule does
 * not name. The table is documented in docs/EVIDENCE-RULES.md.
 */
export function evaluateEpoch(rule: EvidenceRule, evidence: EpochEvidence): Verdict {
  const votes = monitorVotes(rule, evidence.observations)
  let up = 0
  let down = 0
  for (const v of votes) {
    if (v.up) up += v.weight
    else down += v.weight
  }
  const q = rule.quorum
  let monitors: MonitorOutcome
  if (up >= q && down < q) monitors = 'up'
  else if (down >= q && up < q) monitors = 'down'
  else if (up + down >= q) monitors = 'split'
  else monitors = 'missing'

  const claim: UsageClaim =
    rule.usage === 'ignored' ? 'ignored' : evidence.usage === null ? 'none' : evidence.usage.claimBp >= rule.availability.minBp ? 'served' : 'not-served'

  const base: VerdictBase = { monitors, claim, weight: { up, down, quorum: q }, votes }

  // The provider's own word settles an epoch against it, whatever the monitors say.
  if (claim === 'none') return notPerformed(base, 'no-usage', true)
  if (claim === 'not-served') return notPerformed(base, 'provider-admits-down', false)

  if (monitors === 'split') return disputed(base, 'monitors-split')
  if (monitors === 'down') return claim === 'served' ? disputed(base, 'divergence') : notPerformed(base, 'monitors-down', false)
  if (monitors === 'up') {
    let basis = BP_ONE
    if (rule.payment === 'pro-rata') {
      let weighted = 0
      let weights = 0
      for (const v of votes) {
        weighted += v.weight * v.availabilityBp
        weights += v.weight
      }
      basis = Math.floor(weighted / weights)
      if (evidence.usage !== null && claim === 'served') basis = Math.min(basis, evidence.usage.claimBp)
    }
    return {
      ...base,
      verdict: 'performed',
      reason: claim === 'served' ? 'agreed-up' : 'monitors-up',
      payBp: basis,
      holdBp: 0,
      basisBp: basis,
      absenceDriven: false,
    }
  }
  // Too little monitor weight reported to decide either way.
  const payBp = rule.missing === 'pay' ? (rule.payment === 'pro-rata' && evidence.usage !== null && claim === 'served' ? evidence.usage.claimBp : BP_ONE) : 0
  const holdBp = rule.missing === 'hold' ? BP_ONE : 0
  return { ...base, verdict: 'insufficient', reason: 'insufficient-evidence', payBp, holdBp, basisBp: null, absenceDriven: true }
}

/** The money a verdict implies for an epoch priced at `price`. */
export function settleVerdict(verdict: Pick<Verdict, 'payBp' | 'holdBp'>, price: Money): { amount: Money; held: Money } {
  return {
    amount: { amount: applyBp(price.amount, verdict.payBp), asset: price.asset },
    held: { amount: applyBp(price.amount, verdict.holdBp), asset: price.asset },
  }
}

import { z } from 'zod'
import { schema } from '@tally/core'
import { bp } from './money.ts'

/** The rule language version this package evaluates. A contract pins it; other versions are refused. */
export const RULE_VERSION = 1
export const MAX_MONITORS = 64
/** Bound on one monitor's weight, so total weights stay small integers. */
export const MAX_MONITOR_WEIGHT = 1_000_000

export const namedMonitorSchema = z.strictObject({ peer: schema.peerId, weight: schema.uint.min(1).max(MAX_MONITOR_WEIGHT) })

/**
 * Evidence rule v1: declarative data inside the contract. See
 * docs/EVIDENCE-RULES.md for the semantics of every field.
 */
export const evidenceRuleSchema = z.strictObject({
  version: z.literal(RULE_VERSION),
  /** The only monitors whose observations count, with their voting weights. */
  monitors: z.array(namedMonitorSchema).min(1).max(MAX_MONITORS),
  /** Weight needed for the monitors to decide an epoch up or down. */
  quorum: schema.uint.min(1),
  /** A monitor votes up when its availability over the epoch is at least this. */
  availability: z.strictObject({ minBp: bp }),
  /** …and, when set, its p95 latency is at most this; null: latency is not judged. */
  latency: z.strictObject({ maxP95Us: schema.uint }).nullable(),
  /** `require`: a monitor votes up only if it ran at least one challenge of the kind and all passed. */
  challenges: z.strictObject({ identity: z.enum(['ignore', 'require']), compute: z.enum(['ignore', 'require']) }),
  /** `required`: the provider's usage claim must agree with the monitors; `ignored`: monitors alone decide. */
  usage: z.enum(['required', 'ignored']),
  /** What an epoch with too little evidence pays: held, paid in full, or refunded. */
  missing: z.enum(['hold', 'pay', 'refund']),
  /** Performed epochs pay the full price, or pro rata to the measured availability. */
  payment: z.enum(['full', 'pro-rata']),
})
export type EvidenceRule = z.infer<typeof evidenceRuleSchema>
export type NamedMonitor = z.infer<typeof namedMonitorSchema>

/** The weight the rule gives `peer`, or 0 when it is not a named monitor. */
export function monitorWeight(rule: EvidenceRule, peer: string): number {
  for (const m of rule.monitors) if (m.peer === peer) return m.weight
  return 0
}

export function totalWeight(rule: EvidenceRule): number {
  let w = 0
  for (const m of rule.monitors) w += m.weight
  return w
}

/** Semantic checks beyond the schema; returns the first problem or null. */
export function ruleProblem(rule: EvidenceRule): string | null {
  const seen = new Set<string>()
  for (const m of rule.monitors) {
    if (seen.has(m.peer)) return `monitor ${m.peer} is named twice`
    seen.add(m.peer)
  }
  const total = totalWeight(rule)
  if (rule.quorum > total) return `quorum ${rule.quorum} exceeds the monitors' total weight ${total}`
  return null
}

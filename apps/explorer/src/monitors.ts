import type { EntryBlock } from '@tally/core'
import { epochOfWindow, monitorWeight, observationBodySchema, type PairState } from '@tally/deal'
import type { MonitorSeries, ObservationPoint, Role } from './view.ts'

/** Points kept per monitor (the newest); a plot of more shows nothing more to a person. */
export const MAX_POINTS_PER_MONITOR = 2000

interface Attached {
  deal?: unknown
  observation?: { by?: unknown; body?: unknown }
}

/**
 * Each monitor's observations over time, as the pair log holds them. An
 * observation both parties attached is one point. Bodies are read with the
 * observation schema; signatures were checked when the entries were
 * stored, and verification reports any that fail.
 */
export function monitorSeries(timeline: readonly EntryBlock[], state: PairState, role: (author: string) => Role): MonitorSeries[] {
  const byMonitor = new Map<string, Map<number, ObservationPoint>>()
  const weights = new Map<string, number>()
  for (const b of timeline) {
    if (b.entry.kind !== 'observation') continue
    const body = b.entry.body as Attached | null
    const doc = body?.observation
    const parsed = observationBodySchema.safeParse(doc?.body)
    if (!parsed.success || typeof doc?.by !== 'string') continue
    const monitor = doc.by
    const o = parsed.data
    const dealKey = body?.deal !== undefined && body.deal !== null ? String(body.deal) : ''
    const deal = state.deals.get(dealKey)
    let epoch: number | null = null
    if (deal?.terms != null) {
      epoch = epochOfWindow(o.window, deal.start ?? 0, deal.terms.epochMs)
      weights.set(monitor, Math.max(weights.get(monitor) ?? 0, monitorWeight(deal.terms.rule, monitor)))
    }
    let points = byMonitor.get(monitor)
    if (points === undefined) byMonitor.set(monitor, (points = new Map()))
    const by = role(b.entry.author)
    const held = points.get(o.seq)
    if (held !== undefined) {
      if (!held.attachedBy.includes(by)) held.attachedBy.push(by)
      continue
    }
    points.set(o.seq, {
      seq: o.seq,
      start: o.window.start,
      end: o.window.end,
      issuedAt: o.issuedAt,
      availabilityBp: o.availabilityBp,
      sent: o.samples.sent,
      ok: o.samples.ok,
      latencyUs: o.latencyUs === null ? null : { p50: o.latencyUs.p50, p95: o.latencyUs.p95, p99: o.latencyUs.p99 },
      deal: dealKey,
      epoch,
      attachedBy: [by],
      cid: b.cid.toString(),
    })
  }
  const out: MonitorSeries[] = []
  for (const [monitor, points] of byMonitor) {
    const sorted = [...points.values()].sort((a, b) => a.start - b.start || a.seq - b.seq)
    const omitted = Math.max(0, sorted.length - MAX_POINTS_PER_MONITOR)
    out.push({ monitor, weight: weights.get(monitor) ?? 0, points: sorted.slice(omitted), omitted })
  }
  return out.sort((a, b) => b.weight - a.weight || (a.monitor < b.monitor ? -1 : 1))
}

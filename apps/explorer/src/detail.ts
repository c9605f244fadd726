import type { EntryBlock } from '@tally/core'
import { type ContractTerms, type DealState, type PairState, replay, type RulingRecord } from '@tally/deal'
import { summarizeEntry } from './entry-summary.ts'
import { monitorSeries } from './monitors.ts'
import type { PairRecord } from './record.ts'
import type {
  BalanceView,
  DealView,
  DisputeView,
  EpochView,
  PairDetail,
  PairSummary,
  ProblemView,
  Role,
  RulingView,
  TermsView,
  TimelineEntryView,
} from './view.ts'

/** Timeline entries sent per pair (the newest); the counts cover all of them. */
export const MAX_TIMELINE = 5000
/** Epochs sent per deal (the newest). */
export const MAX_EPOCHS = 5000

function termsView(t: ContractTerms): TermsView {
  return {
    resources: { class: t.resources.class, count: t.resources.count },
    jurisdiction: t.jurisdiction,
    price: { amount: t.price.amount, asset: t.price.asset },
    epochMs: t.epochMs,
    epochs: t.epochs,
    maxEpochs: t.maxEpochs,
    sla: { availabilityBp: t.sla.availabilityBp, latencyP95Us: t.sla.latencyP95Us },
    rule: {
      version: t.rule.version,
      monitors: t.rule.monitors.map((m) => ({ peer: m.peer, weight: m.weight })),
      quorum: t.rule.quorum,
      minAvailabilityBp: t.rule.availability.minBp,
      maxLatencyP95Us: t.rule.latency === null ? null : t.rule.latency.maxP95Us,
      usage: t.rule.usage,
      missing: t.rule.missing,
      payment: t.rule.payment,
    },
    arbiter: t.arbiter,
    appealArbiter: t.appealArbiter,
    insurer: t.insurer,
    collateral: { amount: t.collateral.amount, asset: t.collateral.asset },
    rail: t.rail,
  }
}

/** The arbiter's reasons, read from the ruling entry's embedded document. */
function rulingReasons(blocks: ReadonlyMap<string, EntryBlock>, cid: string): string | null {
  const body = blocks.get(cid)?.entry.body as { ruling?: { body?: { reasons?: unknown } } } | undefined
  const reasons = body?.ruling?.body?.reasons
  return typeof reasons === 'string' ? reasons : null
}

function rulingView(r: RulingRecord, blocks: ReadonlyMap<string, EntryBlock>): RulingView {
  const cid = r.cid.toString()
  return {
    cid,
    arbiter: r.arbiter,
    appealOf: r.appealOf === null ? null : r.appealOf.toString(),
    toProvider: r.toProvider,
    collateralToConsumer: r.collateralToConsumer,
    time: r.time,
    reasons: rulingReasons(blocks, cid),
  }
}

function dealView(d: DealState, blocks: ReadonlyMap<string, EntryBlock>): DealView {
  const epochs: EpochView[] = []
  let usage = 0
  let observations = 0
  let foreign = 0
  for (const ep of d.epochs.values()) {
    if (ep.usage !== null) usage++
    const distinct = new Set(ep.observations.map((o) => o.key)).size
    observations += distinct
    foreign += ep.foreign.length
    const ev = ep.evaluation
    epochs.push({
      epoch: ep.epoch,
      usage:
        ep.usage === null
          ? null
          : {
              cid: ep.usage.cid.toString(),
              claimBp: ep.usage.claimBp,
              wallMs: ep.usage.metered.wallMs,
              cpuMs: ep.usage.metered.cpuMs,
              gpuMs: ep.usage.metered.gpuMs,
              maxRssBytes: ep.usage.metered.maxRssBytes,
              overEnvelope: ep.usage.overEnvelope,
            },
      observations: distinct,
      foreign: ep.foreign.length,
      evaluation:
        ev === null
          ? null
          : {
              cid: ev.cid.toString(),
              by: ev.role,
              time: ev.time,
              verdict: ev.verdict,
              reason: ev.reason,
              monitors: ev.monitors,
              amount: ev.amount,
              held: ev.held,
              payBp: ev.payBp,
              evidence: ev.keys.length,
            },
      dispute: ep.dispute === null ? null : { id: ep.dispute.id, final: ep.dispute.final },
      released: ep.released,
    })
  }
  epochs.sort((a, b) => a.epoch - b.epoch)
  const epochsOmitted = Math.max(0, epochs.length - MAX_EPOCHS)
  const disputes: DisputeView[] = d.disputeOrder.flatMap((key) => {
    const s = d.disputes.get(key)
    if (s === undefined) return []
    return [
      {
        id: s.id.toString(),
        by: s.by,
        epochs: [...s.epochs],
        reason: s.reason,
        time: s.time,
        status: s.status,
        rulings: s.rulings.map((r) => rulingView(r, blocks)),
        appeal: s.appeal === null ? null : { cid: s.appeal.cid.toString(), by: s.appeal.by, time: s.appeal.time },
        final: s.final === null ? null : s.final.cid.toString(),
      },
    ]
  })
  const vouchers = [...d.vouchers.values()]
    .sort((a, b) => a.time - b.time || a.amount - b.amount)
    .map((v) => ({ cid: v.cid.toString(), amount: v.amount, time: v.time, ack: v.ack, rail: v.rail }))
  return {
    id: d.key,
    status: d.status,
    terms: d.terms === null ? null : termsView(d.terms),
    offers: d.offers.length,
    start: d.start,
    attestation:
      d.attestation === null ? null : { cid: d.attestation.cid.toString(), hardwareClass: d.attestation.hardwareClass, source: d.attestation.source },
    manifest: d.manifest === null ? null : { cid: d.manifest.cid.toString(), command: [...d.manifest.workload.command] },
    counts: { ...d.counts },
    evidence: { usage, observations, foreign },
    asset: d.terms?.price.asset ?? null,
    authorised: d.authorised,
    paid: d.paid,
    acknowledged: d.acknowledged,
    held: d.held,
    railSettled: d.railSettled,
    collateralBonded: d.collateralBonded,
    collateralAwarded: d.collateralAwarded,
    epochs: epochs.slice(epochsOmitted),
    epochsOmitted,
    vouchers,
    disputes,
    close: d.close === null ? null : { by: d.close.by, reason: d.close.reason, endEpoch: d.close.endEpoch, time: d.close.time },
    certificates: {
      provider: d.certificates.provider === null ? null : d.certificates.provider.toString(),
      consumer: d.certificates.consumer === null ? null : d.certificates.consumer.toString(),
    },
  }
}

function balancesView(state: PairState): Record<string, BalanceView> {
  const out: Record<string, BalanceView> = {}
  for (const [asset, b] of Object.entries(state.balances)) out[asset] = { ...b }
  return out
}

export function summaryOf(d: PairDetail): PairSummary {
  return {
    id: d.id,
    provider: d.provider,
    consumer: d.consumer,
    origin: d.origin,
    entries: { ...d.entries },
    deals: d.deals,
    lastTime: d.lastTime,
    ok: d.ok,
    problems: d.problems,
  }
}

/**
 * Everything the page shows of one pair: replays the timeline through the
 * deal reducer and turns the state into plain JSON-ready data.
 */
export function buildDetail(record: PairRecord): PairDetail {
  const { pair } = record
  const role = (author: string): Role => (author === pair.provider ? 'provider' : 'consumer')
  const { state, problems: refused } = replay(record.timeline, pair)
  const blocks = new Map(record.timeline.map((b) => [b.cid.toString(), b]))
  const refusedBy = new Map(refused.map((p) => [p.cid.toString(), p.code]))
  const seqOf = new Map<string, number>()
  for (const b of record.timeline) seqOf.set(b.cid.toString(), b.entry.seq)

  const omitted = Math.max(0, record.timeline.length - MAX_TIMELINE)
  const timeline: TimelineEntryView[] = []
  for (let i = omitted; i < record.timeline.length; i++) {
    const b = record.timeline[i] as EntryBlock
    const e = b.entry
    const cid = b.cid.toString()
    const seen = e.seen === null ? null : e.seen.toString()
    timeline.push({
      index: i,
      role: role(e.author),
      author: e.author,
      seq: e.seq,
      kind: e.kind,
      time: e.time,
      cid,
      prev: e.prev === null ? null : e.prev.toString(),
      seen: seen === null ? null : { seq: seqOf.get(seen) ?? null, cid: seen },
      deal: state.entries.get(cid)?.deal ?? null,
      summary: summarizeEntry(b),
      refused: refusedBy.get(cid) ?? null,
    })
  }

  const dealProblems: ProblemView[] = refused.map((p) => ({
    layer: 'deal',
    code: p.code,
    message: p.message,
    author: p.author,
    role: role(p.author),
    seq: p.seq,
    kind: p.kind,
    cid: p.cid.toString(),
  }))
  const problems = [...record.problems, ...dealProblems]
  const head = (blocksOf: EntryBlock[]) => {
    const h = blocksOf[blocksOf.length - 1]
    return h === undefined ? null : { seq: h.entry.seq, cid: h.cid.toString() }
  }
  const last = record.timeline.reduce<number | null>((t, b) => (t === null || b.entry.time > t ? b.entry.time : t), null)
  const dealList = state.dealOrder.flatMap((id) => {
    const d = state.deals.get(id.toString())
    return d === undefined ? [] : [dealView(d, blocks)]
  })
  return {
    id: record.id.toString(),
    provider: pair.provider,
    consumer: pair.consumer,
    origin: record.origin,
    entries: { provider: record.chains.provider.length, consumer: record.chains.consumer.length },
    deals: dealList.length,
    lastTime: last,
    ok: problems.length === 0,
    problems: problems.length,
    heads: { provider: head(record.chains.provider), consumer: head(record.chains.consumer) },
    timeline,
    timelineOmitted: omitted,
    dealList,
    balances: balancesView(state),
    monitors: monitorSeries(record.timeline, state, role),
    verification: { ok: problems.length === 0, checked: `${record.checked}; deal replay`, problems },
  }
}

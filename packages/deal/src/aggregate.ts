import type { CID } from '@tally/core'
import type { EpochCounts } from './certificate.ts'
import type { DealState, PairState } from './state.ts'

/** Figures for one asset (minor units; GPU time in ms). */
export interface Figures {
  deals: number
  paid: number
  authorised: number
  held: number
  due: number
  collateralAwarded: number
  epochs: EpochCounts
  /** GPU time the performed epochs delivered under contract: GPUs × epoch length × performed epochs. */
  gpuMsDelivered: number
  /** GPU busy time the executor metered. */
  gpuMsMetered: number
}

export interface ProviderLine {
  provider: string
  jurisdiction: string
  byAsset: Record<string, Figures>
}

export interface JurisdictionLine {
  jurisdiction: string
  providers: string[]
  byAsset: Record<string, Figures>
}

export interface DisputeLine {
  provider: string
  jurisdiction: string
  deal: CID
  dispute: CID
  epochs: number[]
  openedBy: string
  reason: string
  status: string
  rulings: { cid: CID; arbiter: string; appeal: boolean; toProvider: number; collateralToConsumer: number; final: boolean }[]
}

/** The consumer's view over a job fanned out across providers, one pair log each. */
export interface FanOutReport {
  providers: ProviderLine[]
  jurisdictions: JurisdictionLine[]
  disputes: DisputeLine[]
  totals: Record<string, Figures>
}

export interface FanOutInput {
  state: PairState
  /** The provider's jurisdiction (ISO 3166); default: its first deal's contract. */
  jurisdiction?: string
}

function zero(): Figures {
  return {
    deals: 0,
    paid: 0,
    authorised: 0,
    held: 0,
    due: 0,
    collateralAwarded: 0,
    epochs: { total: 0, performed: 0, notPerformed: 0, disputed: 0, insufficient: 0 },
    gpuMsDelivered: 0,
    gpuMsMetered: 0,
  }
}

function add(into: Record<string, Figures>, asset: string, f: Figures): void {
  const c = (into[asset] ??= zero())
  c.deals += f.deals
  c.paid += f.paid
  c.authorised += f.authorised
  c.held += f.held
  c.due += f.due
  c.collateralAwarded += f.collateralAwarded
  for (const k of Object.keys(c.epochs) as (keyof EpochCounts)[]) c.epochs[k] += f.epochs[k]
  c.gpuMsDelivered += f.gpuMsDelivered
  c.gpuMsMetered += f.gpuMsMetered
}

function dealFigures(d: DealState): Figures | null {
  const t = d.terms
  if (t === null) return null
  const settledEpochs = d.counts.performed + d.counts.notPerformed + d.counts.disputed + d.counts.insufficient
  const gpus = t.resources.class.startsWith('gpu.') ? t.resources.count : 0
  return {
    deals: 1,
    paid: d.paid,
    authorised: d.authorised,
    held: d.held,
    due: d.authorised - d.paid,
    collateralAwarded: d.collateralAwarded,
    epochs: { total: settledEpochs, ...d.counts },
    gpuMsDelivered: gpus * t.epochMs * d.counts.performed,
    gpuMsMetered: d.metered.gpuMs,
  }
}

function dealsOf(state: PairState): DealState[] {
  const out: DealState[] = []
  for (const id of state.dealOrder) {
    const d = state.deals.get(id.toString())
    if (d !== undefined && d.terms !== null) out.push(d)
  }
  return out
}

/** Aggregate several providers' pair states into one report. Deterministic: inputs in the given order. */
export function aggregate(inputs: readonly FanOutInput[]): FanOutReport {
  const providers: ProviderLine[] = []
  const byJurisdiction = new Map<string, JurisdictionLine>()
  const disputes: DisputeLine[] = []
  const totals: Record<string, Figures> = {}
  for (const input of inputs) {
    const deals = dealsOf(input.state)
    const provider = input.state.pair.provider
    const jurisdiction = input.jurisdiction ?? deals[0]?.terms?.jurisdiction ?? 'ZZ'
    const line: ProviderLine = { provider, jurisdiction, byAsset: {} }
    let jl = byJurisdiction.get(jurisdiction)
    if (jl === undefined) byJurisdiction.set(jurisdiction, (jl = { jurisdiction, providers: [], byAsset: {} }))
    if (!jl.providers.includes(provider)) jl.providers.push(provider)
    for (const d of deals) {
      const f = dealFigures(d)
      if (f === null || d.terms === null) continue
      const asset = d.terms.price.asset
      add(line.byAsset, asset, f)
      add(jl.byAsset, asset, f)
      add(totals, asset, f)
      for (const key of d.disputeOrder) {
        const disp = d.disputes.get(key)
        if (disp === undefined) continue
        disputes.push({
          provider,
          jurisdiction,
          deal: d.id,
          dispute: disp.id,
          epochs: [...disp.epochs],
          openedBy: disp.by,
          reason: disp.reason,
          status: disp.status,
          rulings: disp.rulings.map((r) => ({
            cid: r.cid,
            arbiter: r.arbiter,
            appeal: r.appealOf !== null,
            toProvider: r.toProvider,
            collateralToConsumer: r.collateralToConsumer,
            final: disp.final?.cid.equals(r.cid) === true,
          })),
        })
      }
    }
    providers.push(line)
  }
  const jurisdictions = [...byJurisdiction.values()].sort((a, b) => (a.jurisdiction < b.jurisdiction ? -1 : a.jurisdiction > b.jurisdiction ? 1 : 0))
  return { providers, jurisdictions, disputes, totals }
}

/** Milliseconds as hours with three decimals, from integers only. */
export function msToHours(ms: number): string {
  const thousandths = Math.floor(ms / 3600)
  return `${Math.floor(thousandths / 1000)}.${String(thousandths % 1000).padStart(3, '0')}`
}

function cell(v: string | number): string {
  const s = String(v)
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export const CSV_COLUMNS = [
  'section',
  'provider',
  'jurisdiction',
  'deal',
  'dispute',
  'asset',
  'deals',
  'paid_minor',
  'authorised_minor',
  'held_minor',
  'due_minor',
  'collateral_awarded_minor',
  'epochs',
  'performed',
  'not_performed',
  'disputed',
  'insufficient',
  'gpu_hours_delivered',
  'gpu_hours_metered',
  'status',
  'detail',
] as const

/**
 * The report as CSV (RFC 4180, CRLF): one row per provider and asset, per
 * jurisdiction and asset, per dispute, and the totals per asset. Money in
 * minor units; hours from integer milliseconds.
 */
export function reportCsv(report: FanOutReport): string {
  const rows: (string | number)[][] = [[...CSV_COLUMNS]]
  const figureRow = (section: string, provider: string, jurisdiction: string, asset: string, f: Figures) => [
    section,
    provider,
    jurisdiction,
    '',
    '',
    asset,
    f.deals,
    f.paid,
    f.authorised,
    f.held,
    f.due,
    f.collateralAwarded,
    f.epochs.total,
    f.epochs.performed,
    f.epochs.notPerformed,
    f.epochs.disputed,
    f.epochs.insufficient,
    msToHours(f.gpuMsDelivered),
    msToHours(f.gpuMsMetered),
    '',
    '',
  ]
  const assets = (r: Record<string, Figures>) => Object.keys(r).sort()
  for (const p of report.providers) for (const a of assets(p.byAsset)) rows.push(figureRow('provider', p.provider, p.jurisdiction, a, p.byAsset[a] as Figures))
  for (const j of report.jurisdictions) for (const a of assets(j.byAsset)) rows.push(figureRow('jurisdiction', '', j.jurisdiction, a, j.byAsset[a] as Figures))
  for (const d of report.disputes) {
    const final = d.rulings.find((r) => r.final)
    const detail = d.rulings.map(
      (r) => `${r.appeal ? 'appeal' : 'ruling'} ${r.cid} by ${r.arbiter}: ${r.toProvider} to provider, ${r.collateralToConsumer} collateral to consumer`,
    )
    rows.push([
      'dispute',
      d.provider,
      d.jurisdiction,
      d.deal.toString(),
      d.dispute.toString(),
      '',
      '',
      final?.toProvider ?? '',
      '',
      '',
      '',
      final?.collateralToConsumer ?? '',
      d.epochs.length,
      '',
      '',
      d.epochs.length,
      '',
      '',
      '',
      d.status,
      [`opened by ${d.openedBy}: ${d.reason}`, ...detail].join('; '),
    ])
  }
  for (const a of assets(report.totals)) rows.push(figureRow('total', '', '', a, report.totals[a] as Figures))
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n'
}

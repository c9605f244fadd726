/**
 * The JSON the explorer serves. Plain data only: CIDs are strings, money is
 * integer minor units with its asset, times are epoch milliseconds, latency
 * is microseconds, fractions are basis points (10000 = 100 %).
 */

export type Role = 'provider' | 'consumer'

/** One thing wrong with a record: from lineage's checks or the deal reducer's replay. */
export interface ProblemView {
  /** Error class name, e.g. 'BrokenLinkError' or 'EvaluationMismatchError'. */
  code: string
  message: string
  /** 'lineage' for the chains themselves, 'deal' for a transition the reducer refused. */
  layer: 'lineage' | 'deal'
  author?: string
  role?: Role
  seq?: number
  kind?: string
  cid?: string
}

export interface VerificationView {
  ok: boolean
  /** What was checked, in words, e.g. 'CAR export: hashes, links, signatures, deal replay'. */
  checked: string
  problems: ProblemView[]
}

export interface PairSummary {
  id: string
  provider: string
  consumer: string
  /** Where the record came from: a CAR file path, or 'store'. */
  origin: string
  entries: { provider: number; consumer: number }
  deals: number
  /** Time of the latest entry, or null for an empty log. */
  lastTime: number | null
  ok: boolean
  problems: number
}

export interface TimelineEntryView {
  /** Position in the timeline (the deterministic merge of both chains), from 0. */
  index: number
  role: Role
  author: string
  seq: number
  kind: string
  time: number
  cid: string
  prev: string | null
  /** The counterparty entry the author had seen: its seq and CID. */
  seen: { seq: number | null; cid: string } | null
  /** The deal the reducer filed the entry under, if any. */
  deal: string | null
  summary: string
  /** The reducer refused the entry (its code), if it did. */
  refused: string | null
}

export interface MoneyView {
  amount: number
  asset: string
}

export interface TermsView {
  resources: { class: string; count: number }
  jurisdiction: string
  price: MoneyView
  epochMs: number
  epochs: number | null
  maxEpochs: number
  sla: { availabilityBp: number; latencyP95Us: number | null }
  rule: {
    version: number
    monitors: { peer: string; weight: number }[]
    quorum: number
    minAvailabilityBp: number
    maxLatencyP95Us: number | null
    usage: string
    missing: string
    payment: string
  }
  arbiter: string
  appealArbiter: string | null
  insurer: string | null
  collateral: MoneyView
  rail: string
}

export type VerdictName = 'performed' | 'not-performed' | 'disputed' | 'insufficient'

export interface EpochView {
  epoch: number
  usage: { cid: string; claimBp: number; wallMs: number; cpuMs: number; gpuMs: number | null; maxRssBytes: number; overEnvelope: boolean } | null
  /** Distinct observations from the contract's monitors (both parties attaching one counts once). */
  observations: number
  /** Observations from monitors the contract does not name: kept, never counted. */
  foreign: number
  evaluation: {
    cid: string
    by: Role
    time: number
    verdict: VerdictName
    reason: string
    monitors: string
    amount: number
    held: number
    payBp: number
    /** Pieces of evidence the evaluation counted. */
    evidence: number
  } | null
  dispute: { id: string; final: boolean } | null
  /** A voucher has paid for this epoch. */
  released: boolean
}

export interface RulingView {
  cid: string
  arbiter: string
  appealOf: string | null
  toProvider: number
  collateralToConsumer: number
  time: number
  reasons: string | null
}

export interface DisputeView {
  id: string
  by: string
  epochs: number[]
  reason: string
  time: number
  status: string
  rulings: RulingView[]
  appeal: { cid: string; by: Role; time: number } | null
  final: string | null
}

export interface VoucherView {
  cid: string
  amount: number
  time: number
  ack: string
  rail: string | null
}

export interface DealView {
  id: string
  status: string
  terms: TermsView | null
  offers: number
  start: number | null
  attestation: { cid: string; hardwareClass: string; source: string } | null
  manifest: { cid: string; command: string[] } | null
  counts: { performed: number; notPerformed: number; disputed: number; insufficient: number }
  evidence: { usage: number; observations: number; foreign: number }
  asset: string | null
  authorised: number
  paid: number
  acknowledged: number
  held: number
  railSettled: number
  collateralBonded: number
  collateralAwarded: number
  epochs: EpochView[]
  /** Epochs left out of `epochs` (the newest are kept). */
  epochsOmitted: number
  vouchers: VoucherView[]
  disputes: DisputeView[]
  close: { by: Role; reason: string; endEpoch: number; time: number } | null
  certificates: { provider: string | null; consumer: string | null }
}

export interface BalanceView {
  authorised: number
  paid: number
  acknowledged: number
  held: number
  due: number
  railSettled: number
  collateralBonded: number
  collateralAwarded: number
}

export interface ObservationPoint {
  seq: number
  start: number
  end: number
  issuedAt: number
  availabilityBp: number
  sent: number
  ok: number
  latencyUs: { p50: number; p95: number; p99: number } | null
  deal: string
  epoch: number | null
  /** Which parties attached it to the log. */
  attachedBy: Role[]
  cid: string
}

export interface MonitorSeries {
  monitor: string
  /** Weight in the contract of the deal(s) it was attached to; 0 when no contract names it. */
  weight: number
  points: ObservationPoint[]
  /** Points left out (the newest are kept). */
  omitted: number
}

export interface PairDetail extends PairSummary {
  heads: { provider: { seq: number; cid: string } | null; consumer: { seq: number; cid: string } | null }
  timeline: TimelineEntryView[]
  /** Timeline entries left out (the newest are kept). */
  timelineOmitted: number
  deals: number
  dealList: DealView[]
  balances: Record<string, BalanceView>
  monitors: MonitorSeries[]
  verification: VerificationView
}

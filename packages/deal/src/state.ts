import { type CID, type EntryKind, toBlock } from '@tally/core'
import type { FactSource } from './attestation.ts'
import type { Workload } from './bodies/execution.ts'
import type { EpochCounts } from './certificate.ts'
import type { ContractTerms, PairDescriptor, PartyRole } from './contract.ts'
import { PMap } from './pmap.ts'
import type { MonitorOutcome, ObservationEvidence, VerdictKind, VerdictReason } from './verdict.ts'

/** Where an author's chain stands. */
export interface ChainHead {
  seq: number
  cid: CID
}

/** What the reducer remembers of every entry in the pair log, by CID. */
export interface EntryRef {
  cid: CID
  role: PartyRole
  seq: number
  kind: EntryKind
  time: number
  /** Key of the deal the entry belongs to, once accepted by the reducer; null otherwise. */
  deal: string | null
}

export type DealStatus = 'negotiating' | 'rejected' | 'lapsed' | 'active' | 'closed' | 'certified'

export interface Offer {
  cid: CID
  by: PartyRole
  time: number
  terms: ContractTerms
}

export interface UsageRecord {
  cid: CID
  seq: number
  time: number
  claimBp: number
  metered: { wallMs: number; cpuMs: number; maxRssBytes: number; gpuMs: number | null }
  /** The workload used more than its manifest allowed in this epoch. */
  overEnvelope: boolean
}

export interface ObservationRecord {
  cid: CID
  /** Who attached it, and at which seq of their chain. */
  role: PartyRole
  seq: number
  /** `<monitor>#<seq>`: attachments of the same observation by both parties share it. */
  key: string
  monitor: string
  sig: Uint8Array
  evidence: ObservationEvidence
}

export interface EvaluationRecord {
  cid: CID
  role: PartyRole
  time: number
  verdict: VerdictKind
  reason: VerdictReason
  monitors: MonitorOutcome
  payBp: number
  holdBp: number
  amount: number
  held: number
  /** Evidence keys counted ('usage' and observation keys), sorted. */
  keys: readonly string[]
}

export interface EpochState {
  epoch: number
  usage: UsageRecord | null
  /** Observations from the contract's monitors (attachments of one observation share a key). */
  observations: readonly ObservationRecord[]
  /** Observations from monitors the contract does not name: kept apart, never counted. */
  foreign: readonly CID[]
  evaluation: EvaluationRecord | null
  dispute: { id: string; final: boolean } | null
  /** A voucher named an authority paying for this epoch. */
  released: boolean
}

/** An evaluation or a ruling, as something a voucher can name. */
export interface Authority {
  cid: CID
  kind: 'evaluation' | 'ruling'
  epochs: readonly number[]
  amount: number
  /** active: nameable; pending: a ruling still open to appeal; suspended: its epoch is under dispute; superseded: replaced. */
  status: 'active' | 'pending' | 'suspended' | 'superseded'
  named: boolean
  time: number
  /** A concurring duplicate evaluation points at the one it confirms. */
  aliasOf: string | null
}

export interface VoucherRecord {
  cid: CID
  amount: number
  /** The cumulative amount of the voucher before this one (0 for the first). */
  previous: number
  time: number
  ack: 'none' | 'acknowledged' | 'deemed'
  rail: 'ok' | 'failed' | null
}

export interface RulingRecord {
  cid: CID
  arbiter: string
  appealOf: CID | null
  toProvider: number
  collateralToConsumer: number
  time: number
}

export interface DisputeState {
  id: CID
  by: PartyRole | 'auto'
  epochs: readonly number[]
  reason: string
  time: number
  status: 'open' | 'ruled' | 'appealed' | 'final'
  rulings: readonly RulingRecord[]
  appeal: { cid: CID; by: PartyRole; time: number } | null
  /** The ruling settlement follows, once final. */
  final: RulingRecord | null
}

export interface EvidenceRequestState {
  cid: CID
  dispute: string
  party: PartyRole
  deadline: number
  status: 'open' | 'answered' | 'timed-out'
}

export interface CloseRecord {
  cid: CID
  by: PartyRole
  reason: 'completed' | 'terminated' | 'timeout'
  /** Epochs from this one on are not owed. */
  endEpoch: number
  time: number
}

export interface DealState {
  id: CID
  key: string
  status: DealStatus
  offers: readonly Offer[]
  terms: ContractTerms | null
  acceptance: CID | null
  /** Time of the acceptance entry: epoch 0 starts here. */
  start: number | null
  attestation: { cid: CID; hardwareClass: string; source: FactSource } | null
  manifest: { cid: CID; workload: Workload } | null
  started: boolean
  epochs: PMap<EpochState>
  /** Smallest epoch with no usage yet. */
  nextUsage: number
  /** Smallest epoch with neither an evaluation nor a dispute. */
  nextUnsettled: number
  /** Epochs whose evaluation is `insufficient` with payment held: new evidence reopens them. */
  heldEpochs: readonly number[]
  /** Epochs with usage, and the highest such epoch + 1. */
  usageCount: number
  usageEnd: number
  counts: Omit<EpochCounts, 'total'>
  authorities: PMap<Authority>
  /** Unnamed authorities with a positive amount, oldest first: what the next voucher should name. */
  pending: readonly string[]
  /** Everything the evidence and final rulings authorise so far, in minor units of the price asset. */
  authorised: number
  /** What is held back pending evidence or a ruling. */
  held: number
  /** Sum of the authorities vouchers have named. */
  namedTotal: number
  paid: number
  acknowledged: number
  railSettled: number
  lastVoucher: VoucherRecord | null
  vouchers: PMap<VoucherRecord>
  unacked: readonly string[]
  unsettledOnRail: readonly string[]
  collateralBonded: number
  collateralAwarded: number
  disputes: PMap<DisputeState>
  disputeOrder: readonly string[]
  openDisputes: readonly string[]
  finalRulings: readonly CID[]
  requests: PMap<EvidenceRequestState>
  openRequests: readonly string[]
  close: CloseRecord | null
  defaulted: PartyRole | null
  certificates: { provider: CID | null; consumer: CID | null }
  metered: { wallMs: number; cpuMs: number; gpuMs: number }
  overEnvelopeEpochs: number
}

/** Per-asset running balance of the pair, in minor units. */
export interface AssetBalance {
  authorised: number
  paid: number
  acknowledged: number
  held: number
  /** authorised − paid: what the consumer still owes under the evidence. */
  due: number
  railSettled: number
  collateralBonded: number
  collateralAwarded: number
}

export interface PendingRuling {
  deal: string
  dispute: string
  deadline: number
}

/** Everything the pair log says about the pair's deals, as of the last entry reduced. */
export interface PairState {
  pair: PairDescriptor
  pairId: CID
  heads: { provider: ChainHead | null; consumer: ChainHead | null }
  entries: PMap<EntryRef>
  deals: PMap<DealState>
  dealOrder: readonly CID[]
  balances: Readonly<Record<string, AssetBalance>>
  pendingRulings: readonly PendingRuling[]
  /** Latest entry time reduced. */
  time: number
  /** Entries reduced (including passed-through and, in replay, refused ones). */
  count: number
}

/** The pair id @tally/lineage uses: CID of dagcbor({consumer, provider, type: 'tally-pair'}). */
export function pairIdOf(pair: PairDescriptor): CID {
  return toBlock({ consumer: pair.consumer, provider: pair.provider, type: 'tally-pair' }).cid
}

export function initialState(pair: PairDescriptor): PairState {
  return {
    pair: { provider: pair.provider, consumer: pair.consumer },
    pairId: pairIdOf(pair),
    heads: { provider: null, consumer: null },
    entries: PMap.empty(),
    deals: PMap.empty(),
    dealOrder: [],
    balances: {},
    pendingRulings: [],
    time: 0,
    count: 0,
  }
}

export function newDeal(id: CID, offer: Offer): DealState {
  return {
    id,
    key: id.toString(),
    status: 'negotiating',
    offers: [offer],
    terms: null,
    acceptance: null,
    start: null,
    attestation: null,
    manifest: null,
    started: false,
    epochs: PMap.empty(),
    nextUsage: 0,
    nextUnsettled: 0,
    heldEpochs: [],
    usageCount: 0,
    usageEnd: 0,
    counts: { performed: 0, notPerformed: 0, disputed: 0, insufficient: 0 },
    authorities: PMap.empty(),
    pending: [],
    authorised: 0,
    held: 0,
    namedTotal: 0,
    paid: 0,
    acknowledged: 0,
    railSettled: 0,
    lastVoucher: null,
    vouchers: PMap.empty(),
    unacked: [],
    unsettledOnRail: [],
    collateralBonded: 0,
    collateralAwarded: 0,
    disputes: PMap.empty(),
    disputeOrder: [],
    openDisputes: [],
    finalRulings: [],
    requests: PMap.empty(),
    openRequests: [],
    close: null,
    defaulted: null,
    certificates: { provider: null, consumer: null },
    metered: { wallMs: 0, cpuMs: 0, gpuMs: 0 },
    overEnvelopeEpochs: 0,
  }
}

export function emptyEpoch(epoch: number): EpochState {
  return { epoch, usage: null, observations: [], foreign: [], evaluation: null, dispute: null, released: false }
}

/** The deal with `key`, or undefined. */
export function dealOf(state: PairState, key: string): DealState | undefined {
  return state.deals.get(key)
}

export function epochOf(deal: DealState, epoch: number): EpochState {
  return deal.epochs.get(String(epoch)) ?? emptyEpoch(epoch)
}

/** Epochs the deal can still owe: the contract's term, cut short by a close. */
export function epochLimit(deal: DealState): number {
  const t = deal.terms
  if (t === null) return 0
  const term = t.epochs ?? t.maxEpochs
  return deal.close === null ? term : Math.min(term, deal.close.endEpoch)
}

export function epochEnd(deal: DealState, epoch: number): number {
  return (deal.start ?? 0) + (epoch + 1) * (deal.terms?.epochMs ?? 0)
}

export function counterpart(role: PartyRole): PartyRole {
  return role === 'provider' ? 'consumer' : 'provider'
}

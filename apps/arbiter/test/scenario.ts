/**
 * Real deal records for the arbiter's tests: two parties, each with a
 * @tally/lineage PairLog (memory store), appending signed entries and
 * ingesting the other's; each party reduces everything it stores with the
 * deal reducer (the counterparty's entries inside ingest's `validate`, so
 * an illegal one is refused before it is stored).
 */
import type { CID, EntryBlock, EntryKind } from '@tally/core'
import { buildAck, buildEvaluation, buildVoucher, type ContractTerms, type DealState, initialState, type PairState, type PartyRole, reduce } from '@tally/deal'
import { exportPairLogBytes, MemoryStore, PairLog } from '@tally/lineage'
import {
  attestation,
  consumer,
  endOf,
  monitors,
  observation,
  provider,
  resetObservationSeqs,
  T0,
  terms,
  usageFigures,
  workload,
} from '../../../packages/deal/test/helpers.ts'

export { appealArbiter, arbiter, consumer, EPOCH, endOf, monitors, observation, outsider, provider, T0, terms } from '../../../packages/deal/test/helpers.ts'

const other = (r: PartyRole): PartyRole => (r === 'provider' ? 'consumer' : 'provider')

export class Scenario {
  readonly logs: Record<PartyRole, PairLog>
  readonly states: Record<PartyRole, PairState>
  readonly pair = { provider: provider.peerId, consumer: consumer.peerId }

  private constructor(logs: Record<PartyRole, PairLog>) {
    this.logs = logs
    this.states = { provider: initialState(this.pair), consumer: initialState(this.pair) }
  }

  static async open(): Promise<Scenario> {
    resetObservationSeqs()
    const pair = { provider: provider.peerId, consumer: consumer.peerId }
    return new Scenario({
      provider: await PairLog.open(new MemoryStore(), pair, provider),
      consumer: await PairLog.open(new MemoryStore(), pair, consumer),
    })
  }

  /** The consumer's view (both hold the same after every append). */
  get state(): PairState {
    return this.states.consumer
  }

  deal(id: CID): DealState {
    return this.states.consumer.deals.get(id.toString()) as DealState
  }

  /** `role` appends (its reducer must accept), then the counterparty ingests it under its reducer. */
  async append(role: PartyRole, kind: EntryKind, body: unknown, time: number): Promise<EntryBlock> {
    const before = this.logs[role].heads()[role]?.seq ?? 0
    const block = await this.logs[role].append(kind, body, { time })
    for await (const b of this.logs[role].range(this.logs[role].me, before + 1)) this.states[role] = reduce(this.states[role], b)
    await this.sync(role)
    return block
  }

  /** Bring `to`'s copy of `from`'s chain up to date, validating each new entry with the deal reducer. */
  async sync(from: PartyRole): Promise<void> {
    const to = other(from)
    const have = this.logs[to].heads()[from]?.seq ?? 0
    const blocks: EntryBlock[] = []
    for await (const b of this.logs[from].range(this.logs[from].me, have + 1)) blocks.push(b)
    if (blocks.length === 0) return
    let next = this.states[to]
    await this.logs[to].ingest(blocks, {
      validate: (added) => {
        let s = this.states[to]
        for (const b of added) s = reduce(s, b)
        next = s
      },
    })
    this.states[to] = next
  }

  record(role: PartyRole = 'consumer'): Promise<Uint8Array> {
    return exportPairLogBytes(this.logs[role], { exportedAt: T0 + 86_400_000 })
  }

  async close(): Promise<void> {
    await this.logs.provider.close()
    await this.logs.consumer.close()
  }

  /** Proposal, acceptance at T0, collateral, attestation, manifest. */
  async activeDeal(t: ContractTerms): Promise<CID> {
    const proposal = await this.append('consumer', 'proposal', { terms: t }, T0 - 1000)
    const deal = proposal.cid
    await this.append('provider', 'acceptance', { deal, offer: deal }, T0)
    await this.append('provider', 'collateral', { deal, amount: t.collateral }, T0 + 1)
    await this.append('provider', 'attestation', { deal, attestation: attestation(T0) }, T0 + 2)
    await this.append('consumer', 'manifest', { deal, workload }, T0 + 3)
    return deal
  }

  /** One epoch performed, evaluated, paid and acknowledged (monitors m0 and m1 saw 100 %). */
  async settledEpoch(deal: CID, e: number, at = endOf(e)): Promise<void> {
    await this.append('provider', 'usage', { deal, epoch: e, ...usageFigures() }, at)
    await this.observe(deal, e, [100, 100, null], at + 10)
    await this.append('consumer', 'evaluation', buildEvaluation(this.state, deal, e), at + 30)
    await this.append('consumer', 'voucher', buildVoucher(this.state, deal), at + 40)
    await this.append('provider', 'ack', buildAck(this.states.provider, deal), at + 50)
  }

  /** The consumer attaches one observation per monitor with the given availability (%; null: silent). */
  async observe(deal: CID, e: number, okPct: readonly (number | null)[], at: number, by: PartyRole = 'consumer'): Promise<EntryBlock[]> {
    const out: EntryBlock[] = []
    for (let i = 0; i < okPct.length; i++) {
      const ok = okPct[i]
      const m = monitors[i]
      if (ok === null || ok === undefined || m === undefined) continue
      out.push(await this.append(by, 'observation', { deal, observation: observation(m, e, ok) }, at + i))
    }
    return out
  }
}

/**
 * A 3-epoch deal whose epoch 1 is disputed by itself: the provider claims
 * 100 %, monitors m0 and m1 (a quorum of 2) saw 10 % and 20 %. Epoch 0 is
 * settled. The dispute's id is the evaluation's CID.
 */
export async function divergenceCase(over: Partial<ContractTerms> = {}): Promise<{ s: Scenario; deal: CID; dispute: CID }> {
  const s = await Scenario.open()
  const deal = await s.activeDeal(terms({ epochs: 3, maxEpochs: 3, ...over }))
  await s.settledEpoch(deal, 0)
  await s.append('provider', 'usage', { deal, epoch: 1, ...usageFigures() }, endOf(1))
  await s.observe(deal, 1, [10, 20, null], endOf(1) + 10)
  const evaluation = await s.append('consumer', 'evaluation', buildEvaluation(s.state, deal, 1), endOf(1) + 30)
  return { s, deal, dispute: evaluation.cid }
}

/**
 * A 3-epoch deal whose epoch 1 only monitor m0 reported on (down): the
 * evaluation is insufficient (payment held), and the consumer disputes it.
 */
export async function thinEvidenceCase(): Promise<{ s: Scenario; deal: CID; dispute: CID }> {
  const s = await Scenario.open()
  const deal = await s.activeDeal(terms({ epochs: 3, maxEpochs: 3 }))
  await s.settledEpoch(deal, 0)
  await s.append('provider', 'usage', { deal, epoch: 1, ...usageFigures() }, endOf(1))
  await s.observe(deal, 1, [10], endOf(1) + 10)
  await s.append('consumer', 'evaluation', buildEvaluation(s.state, deal, 1), endOf(1) + 10_000)
  const dispute = await s.append('consumer', 'dispute', { deal, epochs: [1], reason: 'the one monitor that reported saw the provider down' }, endOf(1) + 11_000)
  return { s, deal, dispute: dispute.cid }
}

/** A 3-epoch deal whose epoch 1 has usage (100 % claimed) and no observation at all; the consumer disputes it. */
export async function silentCase(): Promise<{ s: Scenario; deal: CID; dispute: CID }> {
  const s = await Scenario.open()
  const deal = await s.activeDeal(terms({ epochs: 3, maxEpochs: 3 }))
  await s.settledEpoch(deal, 0)
  await s.append('provider', 'usage', { deal, epoch: 1, ...usageFigures() }, endOf(1))
  const dispute = await s.append('consumer', 'dispute', { deal, epochs: [1], reason: 'no monitor saw this epoch; the claim is unsupported' }, endOf(1) + 100)
  return { s, deal, dispute: dispute.cid }
}

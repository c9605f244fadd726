/**
 * A real pair log for the explorer's tests: two parties with their own
 * PairLogs and stores exchanging entries, three monitors signing
 * observations, an arbiter signing a ruling. Every body comes from
 * @tally/deal's builders and every entry is reduced as it is appended, so
 * the record is one an honest pair would write (unless `illegalVoucher`).
 */
import type { CID, EntryBlock, EntryKind } from '@tally/core'
import { Identity } from '@tally/core'
import {
  buildAck,
  buildAcceptance,
  buildAttestation,
  buildClose,
  buildCollateral,
  buildEvaluation,
  buildManifest,
  buildObservation,
  buildProposal,
  buildRuling,
  buildUsage,
  buildVoucher,
  type ContractTerms,
  initialState,
  type PairState,
  reduce,
  rulingBodyFor,
  signAttestationBody,
  signObservation,
  signRuling as signRulingDoc,
} from '@tally/deal'
import { cosignCheckpoint, exportPairLogBytes, MemoryStore, PairLog, proposeCheckpoint } from '@tally/lineage'

export const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n)
export const EPOCH = 10 * 60_000
export const EPOCHS = 5
export const PRICE = 1000
export const RULING_AWARD = 500

export type Role = 'provider' | 'consumer'

export interface Scenario {
  provider: Identity
  consumer: Identity
  monitors: Identity[]
  arbiter: Identity
  logs: Record<Role, PairLog>
  stores: Record<Role, MemoryStore>
  state: PairState
  deal: CID
  /** Observations signed per monitor. */
  observations: number[]
  /** Start of the deal (acceptance time). */
  start: number
  /** The verdict each epoch gets, in order. */
  verdicts: string[]
  close(): Promise<void>
}

function termsFor(monitors: Identity[], arbiter: Identity, epochs: number): ContractTerms {
  return {
    nonce: 'explorer-test',
    resources: { class: 'gpu.h100', count: 1 },
    jurisdiction: 'DE',
    price: { amount: PRICE, asset: 'USD' },
    epochMs: EPOCH,
    epochs,
    maxEpochs: epochs,
    sla: { availabilityBp: 9500, latencyP95Us: 80_000 },
    rule: {
      version: 1,
      monitors: monitors.map((m) => ({ peer: m.peerId, weight: 1 })),
      quorum: 2,
      availability: { minBp: 9500 },
      latency: { maxP95Us: 80_000 },
      challenges: { identity: 'ignore', compute: 'ignore' },
      usage: 'required',
      missing: 'hold',
      payment: 'full',
    },
    arbiter: arbiter.peerId,
    appealArbiter: null,
    insurer: null,
    collateral: { amount: 2000, asset: 'USD' },
    rail: 'ledger',
    timeouts: { answerMs: 120_000, evidenceGraceMs: 60_000, appealMs: 600_000 },
  }
}

/** Per epoch: the monitors' availability (percent, null: no report) and the provider's usage claim (bp). */
const PLAN: { ok: (number | null)[]; claimBp: number }[] = [
  { ok: [100, 99, 100], claimBp: 10_000 },
  { ok: [98, 100, 97], claimBp: 10_000 },
  // The monitors see it down while the provider claims service: disputed.
  { ok: [40, 35, 52], claimBp: 10_000 },
  // The provider admits it was down: not performed.
  { ok: [99, 100, 98], claimBp: 2_000 },
  // Only one monitor reports: insufficient, payment held.
  { ok: [100, null, null], claimBp: 10_000 },
]
const VERDICTS = ['performed', 'performed', 'disputed', 'not-performed', 'insufficient']

/** `epochs` beyond the first five repeat performed epochs (for measuring long logs). */
export async function buildScenario(opts: { now?: number; illegalVoucher?: boolean; epochs?: number } = {}): Promise<Scenario> {
  const now = opts.now ?? Date.now()
  const epochs = Math.max(EPOCHS, opts.epochs ?? EPOCHS)
  const planOf = (e: number) => (e < PLAN.length ? PLAN[e]! : PLAN[e % 2]!)
  const verdictOf = (e: number) => (e < VERDICTS.length ? VERDICTS[e]! : 'performed')
  const provider = Identity.fromSeed(seed(1))
  const consumer = Identity.fromSeed(seed(2))
  const monitors = [Identity.fromSeed(seed(10)), Identity.fromSeed(seed(11)), Identity.fromSeed(seed(12))]
  const arbiter = Identity.fromSeed(seed(20))
  const pair = { provider: provider.peerId, consumer: consumer.peerId }
  const stores = { provider: new MemoryStore(), consumer: new MemoryStore() }
  const logs = { provider: await PairLog.open(stores.provider, pair, provider), consumer: await PairLog.open(stores.consumer, pair, consumer) }
  let state = initialState(pair)
  const reduced = { provider: 0, consumer: 0 }
  const ingested = { provider: 0, consumer: 0 }
  const other = (r: Role): Role => (r === 'provider' ? 'consumer' : 'provider')

  /** Reduce what `role` appended (its open entry too), then hand it to the counterparty. */
  const sync = async (role: Role, checkLegal: boolean): Promise<void> => {
    const author = pair[role]
    const fresh: EntryBlock[] = []
    for await (const b of logs[role].range(author, reduced[role] + 1)) fresh.push(b)
    for (const b of fresh) {
      if (checkLegal) state = reduce(state, b)
      reduced[role] = b.entry.seq
    }
    const toSend: EntryBlock[] = []
    for await (const b of logs[role].range(author, ingested[role] + 1)) toSend.push(b)
    if (toSend.length > 0) await logs[other(role)].ingest(toSend)
    ingested[role] = reduced[role]
  }
  const put = async (role: Role, kind: EntryKind, body: unknown, time: number): Promise<EntryBlock> => {
    const block = await logs[role].append(kind, body, { time })
    await sync(role, true)
    return block
  }

  const start = Math.floor((now - epochs * EPOCH - 2 * 3_600_000) / 60_000) * 60_000
  const terms = termsFor(monitors, arbiter, epochs)
  const proposal = await put('consumer', 'proposal', buildProposal(terms), start - 60_000)
  const deal = proposal.cid
  await put('provider', 'acceptance', buildAcceptance(state, deal), start)
  await put('provider', 'collateral', buildCollateral(state, deal), start + 1000)
  const facts = {
    hardwareClass: 'gpu.h100',
    classSource: 'nvidia-smi' as const,
    gpus: [
      {
        name: 'NVIDIA H100 80GB HBM3',
        model: 'h100',
        uuid: 'GPU-7f1c',
        memoryBytes: 85_899_345_920,
        driverVersion: '550.54.15',
        pciBusId: '00000000:01:00.0',
        source: 'nvidia-smi' as const,
      },
    ],
    cpu: { model: 'AMD EPYC 9334', logicalCores: 64, arch: 'x86_64', source: 'procfs' as const },
    memory: { totalBytes: 512 * 1024 ** 3, source: 'procfs' as const },
    kernel: { version: '6.8.0', source: 'procfs' as const },
    probedAt: start + 1500,
    notes: [],
  }
  await put('provider', 'attestation', buildAttestation(deal, signAttestationBody(provider, { v: 1, time: start + 1500, facts })), start + 2000)
  await put(
    'consumer',
    'manifest',
    buildManifest(deal, { command: ['python3', 'train.py', '--epochs', '3'], env: {}, limits: { wallMs: 4 * 3_600_000 } }),
    start + 3000,
  )

  const obsSeq = monitors.map(() => 0)
  for (let e = 0; e < epochs; e++) {
    const plan = planOf(e)
    const wStart = start + e * EPOCH
    const end = wStart + EPOCH
    let t = end + 5000
    for (let i = 0; i < monitors.length; i++) {
      const ok = plan.ok[i]
      if (ok === null || ok === undefined) continue
      obsSeq[i]!++
      const p50 = 8000 + i * 1500 + e * 700
      const obs = signObservation(monitors[i]!, {
        subject: provider.peerId,
        seq: obsSeq[i]!,
        window: { start: wStart, end },
        samples: { sent: 100, ok },
        availabilityBp: ok * 100,
        latencyUs: ok === 0 ? null : { p50, p95: p50 * 3 + (ok < 90 ? 60_000 : 0), p99: p50 * 5 + (ok < 90 ? 120_000 : 0) },
        challenges: [],
        credential: null,
        issuedAt: end + 1000,
      })
      await put('consumer', 'observation', buildObservation(deal, obs), (t += 1000))
      // The provider attaches the first monitor's observations too: the explorer counts each once.
      if (i === 0) await put('provider', 'observation', buildObservation(deal, obs), (t += 1000))
    }
    await put(
      'provider',
      'usage',
      buildUsage(deal, e, {
        claimBp: plan.claimBp,
        metered: { wallMs: EPOCH, cpuMs: EPOCH - 20_000, maxRssBytes: 6 * 1024 ** 3, gpuMs: Math.floor((EPOCH * plan.claimBp) / 10_000) },
        exit: null,
        logsHash: 'ab'.repeat(32),
      }),
      (t += 1000),
    )
    // An evaluation resting on missing evidence waits for the grace period.
    const at = verdictOf(e) === 'insufficient' ? end + 90_000 : (t += 5000)
    await put('consumer', 'evaluation', buildEvaluation(state, deal, e), at)
    if (e === 1) {
      const voucher = await put('consumer', 'voucher', buildVoucher(state, deal), at + 5000)
      await put('provider', 'ack', buildAck(state, deal, voucher.cid), at + 10_000)
    }
    if (e === 2) {
      const d = state.deals.get(deal.toString())!
      const dispute = d.disputes.get(d.openDisputes[0]!)!
      const evaluation = d.epochs.get('2')!.evaluation!
      const ruling = signRuling(arbiter, state, deal, dispute.id, evaluation.cid, at + 60_000)
      await put('provider', 'ruling', buildRuling(deal, ruling), at + 70_000)
      const voucher = await put('consumer', 'voucher', buildVoucher(state, deal), at + 80_000)
      await put('provider', 'ack', buildAck(state, deal, voucher.cid), at + 90_000)
    }
  }
  const last = start + epochs * EPOCH
  await put('consumer', 'close', buildClose(deal, 'completed', 'all epochs served'), last + 120_000)
  const proposalCk = await proposeCheckpoint(logs.consumer, { USD: { paid: 2 * PRICE + RULING_AWARD } }, { time: last + 130_000 })
  await sync('consumer', true)
  await cosignCheckpoint(logs.provider, proposalCk, { time: last + 140_000 })
  await sync('provider', true)
  if (opts.illegalVoucher === true) {
    // Raises the release far past what any evaluation or ruling authorises: the reducer refuses it, the log still holds it.
    await logs.consumer.append('voucher', { deal, amount: { amount: 99_999, asset: 'USD' }, authorisedBy: [] }, { time: last + 150_000 })
    await sync('consumer', false)
  }
  return {
    provider,
    consumer,
    monitors,
    arbiter,
    logs,
    stores,
    state,
    deal,
    observations: monitors.map((_, i) => Array.from({ length: epochs }, (_, e) => planOf(e)).filter((p) => p.ok[i] !== null).length),
    start,
    verdicts: Array.from({ length: epochs }, (_, e) => verdictOf(e)),
    async close() {
      await logs.provider.close()
      await logs.consumer.close()
    },
  }
}

function signRuling(arbiter: Identity, state: PairState, deal: CID, dispute: CID, relied: CID, issuedAt: number) {
  const body = rulingBodyFor(state, deal, dispute, {
    toProvider: RULING_AWARD,
    collateralToConsumer: 0,
    reasons: 'Monitors saw the provider mostly down during epoch 2 while its meter shows the job running: half the price is owed.',
    relied: [relied],
    issuedAt,
  })
  return signRulingDoc(arbiter, body)
}

export async function exportBytes(s: Scenario): Promise<Uint8Array> {
  return exportPairLogBytes(s.logs.consumer)
}

/** Total entries of both chains. */
export function entryCounts(s: Scenario): Record<Role, number> {
  const h = s.logs.consumer.heads()
  return { provider: h.provider?.seq ?? 0, consumer: h.consumer?.seq ?? 0 }
}

/**
 * `pnpm bench deal`: the pure deal machinery, each figure against a limit
 * measured in the same run.
 *
 * - deal.replay: replay and fully check a 10,000-epoch deal (2,000 with
 *   --quick): decode every entry from its bytes (CIDs recomputed), check
 *   every chain link, verify both head signatures, and run the deal reducer
 *   over the timeline, which verifies every embedded monitor observation,
 *   recomputes every verdict and checks every voucher. Limit: the floor
 *   implied by this machine's DAG-CBOR entry decode rate and raw Ed25519
 *   verify rate for the same number of entries and signatures.
 * - deal.replay.entries_per_s: the same run as a rate. Limit: entry decode
 *   rate alone (hash + dag-cbor + envelope checks).
 * - deal.evaluate: evaluateEpoch calls per second on a three-monitor rule.
 *   Limit: dag-cbor decode rate of one observation document (evaluation
 *   must stay cheaper than reading its evidence).
 */
import '@tally/core'
import { type CID, decode, decodeEntry, type EntryBlock, encode, entrySignatureValid, Identity, signEntry, verifySignature } from '@tally/core'
import {
  buildAck,
  buildEvaluation,
  buildVoucher,
  type ContractTerms,
  evaluateEpoch,
  initialState,
  type PairState,
  reduce,
  replay,
  signObservation,
} from '../../packages/deal/src/index.ts'
import { attestation, consumer, EPOCH, monitors, provider, seed, T0, terms as sampleTerms, usageFigures } from '../../packages/deal/test/helpers.ts'
import type { BenchResult } from './result.ts'

interface Built {
  bytes: Uint8Array[]
  pair: { provider: string; consumer: string }
  observations: number
}

/** Build a whole deal of `epochs` epochs as signed entry bytes, reducing as it goes (so every entry is legal). */
function buildDeal(epochs: number): Built {
  const pair = { provider: provider.peerId, consumer: consumer.peerId }
  let state: PairState = initialState(pair)
  const ids = { provider, consumer }
  const heads: Record<'provider' | 'consumer', EntryBlock | null> = { provider: null, consumer: null }
  const bytes: Uint8Array[] = []
  const append = (role: 'provider' | 'consumer', kind: EntryBlock['entry']['kind'], body: unknown, time: number): EntryBlock => {
    const other = role === 'provider' ? 'consumer' : 'provider'
    const head = heads[role]
    const block = signEntry(ids[role], {
      v: 1,
      pair: state.pairId,
      author: ids[role].peerId,
      seq: (head?.entry.seq ?? 0) + 1,
      prev: head?.cid ?? null,
      seen: heads[other]?.cid ?? null,
      time,
      kind,
      body,
    })
    state = reduce(state, block)
    heads[role] = block
    bytes.push(block.bytes)
    return block
  }
  // The deal tests' contract, one observation per epoch deciding it (quorum 1), no appeal.
  const base = sampleTerms()
  const terms: ContractTerms = sampleTerms({
    nonce: 'bench',
    collateral: { amount: 0, asset: 'USD' },
    epochs,
    maxEpochs: epochs,
    appealArbiter: null,
    rule: { ...base.rule, monitors: monitors.slice(0, 2).map((m) => ({ peer: m.peerId, weight: 1 })), quorum: 1 },
  })

  const deal: CID = append('consumer', 'proposal', { terms }, T0 - 1000).cid
  append('provider', 'acceptance', { deal, offer: deal }, T0)
  append('provider', 'attestation', { deal, attestation: attestation(T0) }, T0 + 1)
  append('consumer', 'manifest', { deal, workload: { command: ['train'], env: {}, limits: { wallMs: epochs * EPOCH } } }, T0 + 2)
  for (let e = 0; e < epochs; e++) {
    const end = T0 + (e + 1) * EPOCH
    append('provider', 'usage', { deal, epoch: e, ...usageFigures() }, end)
    const m = monitors[e % 2] as Identity
    const observation = signObservation(m, {
      subject: provider.peerId,
      seq: Math.floor(e / 2) + 1,
      window: { start: end - EPOCH, end },
      samples: { sent: 60, ok: 60 },
      availabilityBp: 10_000,
      latencyUs: { p50: 900, p95: 2000, p99: 4000 },
      challenges: [{ kind: 'identity', ok: true, durationMs: 3 }],
      credential: null,
      issuedAt: end,
    })
    append('consumer', 'observation', { deal, observation }, end + 1)
    append('consumer', 'evaluation', buildEvaluation(state, deal, e), end + 2)
    append('consumer', 'voucher', buildVoucher(state, deal), end + 3)
    append('provider', 'ack', buildAck(state, deal), end + 4)
  }
  return { bytes, pair, observations: epochs + 1 }
}

/** The full check a verifier runs: decode, links, head signatures, then the deal replay. */
function fullCheck(built: Built): { problems: number; entries: number } {
  const blocks = built.bytes.map((b) => decodeEntry(b))
  const heads = new Map<string, EntryBlock>()
  for (const b of blocks) heads.set(b.entry.author, b)
  for (const h of heads.values()) if (!entrySignatureValid(h.entry)) throw new Error('head signature does not verify')
  const r = replay(blocks, built.pair)
  return { problems: r.problems.length, entries: blocks.length }
}

function decodeRate(bytes: Uint8Array[], n: number): number {
  const sample = bytes.slice(0, Math.min(n, bytes.length))
  for (let i = 0; i < Math.min(500, sample.length); i++) decodeEntry(sample[i] as Uint8Array)
  const t = performance.now()
  for (const b of sample) decodeEntry(b)
  return sample.length / ((performance.now() - t) / 1000)
}

function verifyRate(n: number): number {
  const id = Identity.fromSeed(seed(9))
  const payload = encode({ type: 'observation', by: id.peerId, body: { samples: { sent: 60, ok: 60 }, issuedAt: T0 } })
  const sig = id.sign('doc/observation', payload)
  for (let i = 0; i < 200; i++) verifySignature('doc/observation', payload, sig, id.publicKey)
  const t = performance.now()
  for (let i = 0; i < n; i++) verifySignature('doc/observation', payload, sig, id.publicKey)
  return n / ((performance.now() - t) / 1000)
}

function evaluateRate(n: number): { rate: number; docDecodeRate: number } {
  const monitors = [10, 11, 12].map((s) => Identity.fromSeed(seed(s)))
  const rule = {
    version: 1 as const,
    monitors: monitors.map((m) => ({ peer: m.peerId, weight: 1 })),
    quorum: 2,
    availability: { minBp: 9900 },
    latency: { maxP95Us: 50_000 },
    challenges: { identity: 'require' as const, compute: 'ignore' as const },
    usage: 'required' as const,
    missing: 'hold' as const,
    payment: 'pro-rata' as const,
  }
  const evidence = {
    usage: { claimBp: 9990 },
    observations: monitors.map((m, i) => ({
      monitor: m.peerId,
      samples: { sent: 100, ok: 99 + (i % 2) },
      latencyP95Us: 2000,
      challenges: [{ kind: 'identity' as const, ok: true }],
    })),
  }
  for (let i = 0; i < 1000; i++) evaluateEpoch(rule, evidence)
  let t = performance.now()
  for (let i = 0; i < n; i++) evaluateEpoch(rule, evidence)
  const rate = n / ((performance.now() - t) / 1000)
  const doc = encode(
    signObservation(monitors[0] as Identity, {
      subject: (monitors[1] as Identity).peerId,
      seq: 1,
      window: { start: T0, end: T0 + EPOCH },
      samples: { sent: 60, ok: 60 },
      availabilityBp: 10_000,
      latencyUs: { p50: 900, p95: 2000, p99: 4000 },
      challenges: [],
      credential: null,
      issuedAt: T0 + EPOCH,
    }),
  )
  t = performance.now()
  for (let i = 0; i < n; i++) decode(doc)
  return { rate, docDecodeRate: n / ((performance.now() - t) / 1000) }
}

export async function run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]> {
  const epochs = opts.quick ? 2_000 : 10_000
  const built = buildDeal(epochs)
  // Warm the code paths on a small deal first.
  fullCheck(buildDeal(50))
  // Best of a few runs for every figure and limit alike: the machine is shared and noisy.
  const rounds = opts.quick ? 3 : 2
  let seconds = Number.POSITIVE_INFINITY
  let dRate = 0
  let vRate = 0
  let checked = { problems: 0, entries: 0 }
  for (let i = 0; i < rounds; i++) {
    const t = performance.now()
    checked = fullCheck(built)
    seconds = Math.min(seconds, (performance.now() - t) / 1000)
    if (checked.problems !== 0) throw new Error(`the benchmark deal replayed with ${checked.problems} problems`)
    dRate = Math.max(dRate, decodeRate(built.bytes, 20_000))
    vRate = Math.max(vRate, verifyRate(opts.quick ? 2_000 : 5_000))
  }
  const signatures = built.observations + 2
  const floor = checked.entries / dRate + signatures / vRate
  const ev = evaluateRate(opts.quick ? 20_000 : 100_000)
  const scale = `${epochs.toLocaleString('en-US')}-epoch deal, ${checked.entries.toLocaleString('en-US')} entries`
  return [
    {
      name: 'deal.replay',
      value: seconds,
      unit: 's',
      limit: { name: `decode ${checked.entries} entries + verify ${signatures} signatures (${scale})`, value: floor, unit: 's' },
      ...(opts.quick ? {} : { target: { op: '<=' as const, value: 1 } }),
    },
    {
      name: 'deal.replay.entries_per_s',
      value: checked.entries / seconds,
      unit: 'entries/s',
      limit: { name: 'entry decode rate', value: dRate, unit: 'entries/s' },
    },
    { name: 'deal.evaluate', value: ev.rate, unit: 'verdicts/s', limit: { name: 'observation dag-cbor decode rate', value: ev.docDecodeRate, unit: 'docs/s' } },
  ]
}

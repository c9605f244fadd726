/**
 * `pnpm bench arbiter`: what a case costs the arbiter, each figure against
 * a limit measured in the same run.
 *
 * - arbiter.decide: verify (lineage verifyExport), replay (deal reducer)
 *   and judge one dispute of a 1,000-epoch record (200 with --quick).
 *   Limit: SHA-256 + DAG-CBOR decode of every block of the same CAR, the
 *   floor of any verifier (lineage's measureHashDecodeRate).
 * - arbiter.case: the same case submitted over /tally/arbitrate/1.0.0 on
 *   loopback (dial, upload in chunks under credit, decide, store, answer).
 *   Limit: arbiter.decide from this run: the protocol's share is the rest.
 */
import '@tally/core'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CID, EntryBlock, EntryKind } from '@tally/core'
import { Arbiter } from '../../apps/arbiter/src/arbiter.ts'
import { arbiterSettingsSchema } from '../../apps/arbiter/src/config.ts'
import { decideCase } from '../../apps/arbiter/src/decide.ts'
import { createLog } from '../../packages/daemon/src/index.ts'
import { buildEvaluation, initialState, type PairState, reduce } from '../../packages/deal/src/index.ts'
import {
  arbiter,
  attestation,
  consumer,
  EPOCH,
  monitors,
  observation,
  provider,
  resetObservationSeqs,
  T0,
  terms,
  usageFigures,
  workload,
} from '../../packages/deal/test/helpers.ts'
import { exportPairLogBytes, MemoryStore, measureHashDecodeRate, PairLog } from '../../packages/lineage/src/index.ts'
import { createTallyNode, localNetwork, multiaddr, submitCase } from '../../packages/node/src/index.ts'
import type { BenchResult } from './result.ts'

type Role = 'provider' | 'consumer'

/** A deal of `epochs` epochs, each performed and paid, whose last epoch is disputed by itself (monitors saw it down). */
export async function buildRecord(epochs: number): Promise<{ record: Uint8Array; deal: CID; dispute: CID; pair: { provider: string; consumer: string } }> {
  resetObservationSeqs()
  const pair = { provider: provider.peerId, consumer: consumer.peerId }
  const logs: Record<Role, PairLog> = {
    provider: await PairLog.open(new MemoryStore(), pair, provider),
    consumer: await PairLog.open(new MemoryStore(), pair, consumer),
  }
  let state: PairState = initialState(pair)
  const synced: Record<Role, number> = { provider: 0, consumer: 0 }
  const sync = async (from: Role) => {
    const to: Role = from === 'provider' ? 'consumer' : 'provider'
    const blocks: EntryBlock[] = []
    for await (const b of logs[from].range(logs[from].me, synced[from] + 1)) blocks.push(b)
    if (blocks.length === 0) return
    await logs[to].ingest(blocks)
    for (const b of blocks) state = reduce(state, b)
    synced[from] = blocks[blocks.length - 1]!.entry.seq
  }
  const append = async (role: Role, kind: EntryKind, body: unknown, time: number) => {
    const b = await logs[role].append(kind, body, { time })
    await sync(role)
    return b
  }
  const t = terms({ epochs, maxEpochs: epochs, appealArbiter: null })
  const endOf = (e: number) => T0 + (e + 1) * EPOCH
  const proposal = await append('consumer', 'proposal', { terms: t }, T0 - 1000)
  const deal = proposal.cid
  await append('provider', 'acceptance', { deal, offer: deal }, T0)
  await append('provider', 'collateral', { deal, amount: t.collateral }, T0 + 1)
  await append('provider', 'attestation', { deal, attestation: attestation(T0) }, T0 + 2)
  await append('consumer', 'manifest', { deal, workload }, T0 + 3)
  let paid = 0
  let dispute: CID | undefined
  for (let e = 0; e < epochs; e++) {
    const last = e === epochs - 1
    await append('provider', 'usage', { deal, epoch: e, ...usageFigures() }, endOf(e))
    for (const m of [monitors[0], monitors[1]])
      await append('consumer', 'observation', { deal, observation: observation(m, e, last ? 10 : 100) }, endOf(e) + 10)
    const ev = await append('consumer', 'evaluation', buildEvaluation(state, deal, e), endOf(e) + 20)
    if (last) {
      dispute = ev.cid
      break
    }
    paid += 1000
    const v = await append('consumer', 'voucher', { deal, amount: { amount: paid, asset: 'USD' }, authorisedBy: [ev.cid] }, endOf(e) + 30)
    await append('provider', 'ack', { deal, voucher: v.cid, amount: { amount: paid, asset: 'USD' } }, endOf(e) + 40)
  }
  const record = await exportPairLogBytes(logs.consumer, { exportedAt: endOf(epochs) })
  await logs.provider.close()
  await logs.consumer.close()
  return { record, deal, dispute: dispute!, pair }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

export async function run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]> {
  const epochs = opts.quick ? 200 : 1000
  const rounds = opts.quick ? 3 : 5
  const built = await buildRecord(epochs)
  const c = { pair: built.pair, deal: built.deal, dispute: built.dispute, appeal: false }
  const ctx = { arbiter: arbiter.peerId, identity: arbiter, now: T0 }

  const decideMs: number[] = []
  for (let i = 0; i < rounds; i++) {
    const t = performance.now()
    const d = await decideCase(built.record, c, ctx)
    decideMs.push(performance.now() - t)
    if (d.type !== 'ruling') throw new Error(`the benchmark case was not ruled: ${d.type}`)
  }
  const floorMs = (1000 * countBlocks(built.record)) / measureHashDecodeRate(built.record)

  const dir = await mkdtemp(join(tmpdir(), 'tally-bench-arbiter-'))
  const net = { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], network: localNetwork(), bootTimeoutMs: 5_000 }
  const arbNode = await createTallyNode({ ...net, identity: arbiter })
  const party = await createTallyNode({ ...net, identity: consumer })
  const caseMs: number[] = []
  try {
    const a = await Arbiter.open({
      node: arbNode,
      dataDir: dir,
      settings: arbiterSettingsSchema.parse({ limits: { caseBurst: 100 } }),
      log: createLog('bench', { level: 'error' }),
    })
    await a.start()
    const target = multiaddr(arbNode.multiaddrs().find((x) => x.startsWith('/ip4/127.0.0.1/'))!)
    for (let i = 0; i < rounds; i++) {
      const t = performance.now()
      const out = await submitCase(party, target, { ...c, record: built.record })
      caseMs.push(performance.now() - t)
      if (out.type !== 'ruling') throw new Error('the benchmark case was not ruled')
    }
    await a.stop()
  } finally {
    await party.stop()
    await arbNode.stop()
    await rm(dir, { recursive: true, force: true })
  }
  const decide = median(decideMs)
  const mib = (built.record.byteLength / 1048576).toFixed(1)
  return [
    {
      name: `arbiter.decide (${epochs} epochs, ${mib} MiB)`,
      value: decide,
      unit: 'ms',
      limit: { name: 'hash + dag-cbor decode of every block', value: floorMs, unit: 'ms' },
    },
    {
      name: `arbiter.case (${epochs} epochs, over loopback)`,
      value: median(caseMs),
      unit: 'ms',
      limit: { name: 'arbiter.decide in this run', value: decide, unit: 'ms' },
    },
  ]
}

function countBlocks(car: Uint8Array): number {
  // Sections are varint length + CID + data; the header is a varint-prefixed block too.
  let n = 0
  let off = 0
  while (off < car.byteLength) {
    let len = 0
    let shift = 0
    let b: number
    do {
      b = car[off++]!
      len += (b & 0x7f) * 2 ** shift
      shift += 7
    } while (b & 0x80)
    off += len
    n++
  }
  return n - 1
}

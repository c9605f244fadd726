/**
 * `pnpm bench deal-net`: deals between two processes over
 * /tally/pair/1.0.0 (scripts/bench/net/deal-host.ts), each process with
 * one LevelDB shared by its pair logs, the deal reducer following every
 * log and an honest daemon appending what `duties` says it owes.
 *
 * - deal.negotiate.p50 / p99: on a warm session, the consumer appends a
 *   proposal (durable here); the provider ingests it (durable there),
 *   reduces it and appends its acceptance (durable there); the clock stops
 *   when the acceptance is durable in the consumer's LevelDB and reduced
 *   (deal active). Limit: a raw node:net TCP round trip on loopback.
 * - deal.epoch.throughput: 100 pairs (20 with --quick), process A holding
 *   every provider side, process B every consumer side, one long deal each
 *   with 1 ms epochs and a rule under which usage settles an epoch (one
 *   named monitor that never reports, `missing: pay`). Per epoch: usage
 *   (provider), evaluation and voucher (consumer), ack (provider), each
 *   durable on both sides. Counted: epochs whose ack the consumer holds.
 *   Limit: each process signs 2 and verifies 2 entries per epoch, so one
 *   core does at most 1 / (2/sign + 2/verify) epochs/s, with the raw
 *   Ed25519 rates measured in the same run.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchHost, percentile, tcpRoundTrips } from './common.ts'
import type { BenchResult } from './result.ts'

const HOST = join(dirname(fileURLToPath(import.meta.url)), 'net', 'deal-host.ts')

type Peer = { peerId: string; addr: string }
type Settled = { epochs: number; at: number; errors: string[] }

export async function run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]> {
  const pairs = opts.quick ? 20 : 100
  const negotiateN = opts.quick ? 100 : 500
  const windowMs = opts.quick ? 5_000 : 15_000
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`  ${s}\n`)
  }
  const dir = await mkdtemp(join(tmpdir(), 'tally-bench-deal-net-'))
  const provider = new BenchHost(HOST, 'deal provider')
  const consumer = new BenchHost(HOST, 'deal consumer')
  try {
    await Promise.all([provider.ready, consumer.ready])
    const t0 = performance.now()
    // Node 0 of each process carries the negotiation pair; nodes 1..pairs the epoch pairs.
    const [ps] = await Promise.all([
      provider.call<Peer[]>('init', { dir: join(dir, 'provider'), nodes: pairs + 1 }),
      consumer.call<Peer[]>('init', { dir: join(dir, 'consumer'), nodes: pairs + 1 }),
    ])
    for (let i = 0; i <= pairs; i += 25) {
      await Promise.all(ps.slice(i, i + 25).map((p, j) => consumer.call('connect', { i: i + j, provider: p.peerId, addr: p.addr })))
    }
    log(`${pairs + 1} nodes per process started and ${pairs + 1} pair sessions synced in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

    const neg = await consumer.call<{ samples: number[] }>('negotiate', { i: 0, provider: ps[0]!.peerId, n: negotiateN, warmup: 20 })
    const tcp = await tcpRoundTrips(opts.quick ? 500 : 2_000)
    const synced = await consumer.call<{ samples: number[] }>('syncedWrites', { i: 0, provider: ps[0]!.peerId, dir: join(dir, 'consumer') })
    log(
      `negotiate: p50 ${percentile(neg.samples, 50).toFixed(3)} ms, p90 ${percentile(neg.samples, 90).toFixed(3)} ms, max ${Math.max(...neg.samples).toFixed(1)} ms (p50 of the first 100 ${percentile(neg.samples.slice(0, 100), 50).toFixed(3)} ms, last 100 ${percentile(neg.samples.slice(-100), 50).toFixed(3)} ms); TCP RTT p50 ${percentile(tcp, 50).toFixed(3)} ms`,
    )
    // Proposal and acceptance are each written durably on both sides, in series: four synced LevelDB writes at least.
    log(
      `one-entry synced LevelDB write: p50 ${percentile(synced.samples, 50).toFixed(3)} ms (×4 in series = ${(4 * percentile(synced.samples, 50)).toFixed(2)} ms)`,
    )

    const rates = await provider.call<{ sign: number; verify: number }>('signVerifyRate', { bytes: 400, n: opts.quick ? 2_000 : 10_000 })
    const bound = 1 / (2 / rates.sign + 2 / rates.verify)
    log(`raw Ed25519 (400 B payload): sign ${rates.sign.toFixed(0)}/s, verify ${rates.verify.toFixed(0)}/s → ${bound.toFixed(0)} epochs/s per process`)

    await consumer.call('startEpochs', { pairs: ps.slice(1).map((p, j) => ({ i: j + 1, provider: p.peerId })), epochs: 10_000_000 })
    await new Promise((resolve) => setTimeout(resolve, opts.quick ? 2_000 : 3_000))
    const cpu0 = await Promise.all([provider.call<{ ms: number }>('cpu'), consumer.call<{ ms: number }>('cpu')])
    const a = await consumer.call<Settled>('settled')
    await new Promise((resolve) => setTimeout(resolve, windowMs))
    const b = await consumer.call<Settled>('settled')
    const cpu1 = await Promise.all([provider.call<{ ms: number }>('cpu'), consumer.call<{ ms: number }>('cpu')])
    await Promise.all([provider.call('halt'), consumer.call('halt')])
    const p = await provider.call<Settled>('settled')
    const errors = [...b.errors, ...p.errors]
    if (errors.length > 0) throw new Error(`deal daemons stopped: ${errors.slice(0, 3).join('; ')}`)
    const throughput = (b.epochs - a.epochs) / ((b.at - a.at) / 1000)
    const span = b.at - a.at
    log(
      `epochs: ${b.epochs - a.epochs} settled in ${(span / 1000).toFixed(1)} s over ${pairs} pairs (${b.epochs} in all, provider side acked ${p.epochs}); CPU provider process ${(((cpu1[0].ms - cpu0[0].ms) / span) * 100).toFixed(0)}%, consumer process ${(((cpu1[1].ms - cpu0[1].ms) / span) * 100).toFixed(0)}%`,
    )
    log(
      `load average at the end: ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} (${cpus().length} cores)`,
    )
    return [
      {
        name: 'deal.negotiate.p50',
        value: percentile(neg.samples, 50),
        unit: 'ms',
        limit: { name: 'node:net TCP round trip on loopback, p50', value: percentile(tcp, 50), unit: 'ms' },
        target: { op: '<=', value: 5 },
      },
      {
        name: 'deal.negotiate.p99',
        value: percentile(neg.samples, 99),
        unit: 'ms',
        limit: { name: 'node:net TCP round trip on loopback, p99', value: percentile(tcp, 99), unit: 'ms' },
      },
      {
        name: 'deal.epoch.throughput',
        value: throughput,
        unit: 'epochs/s',
        limit: { name: 'raw Ed25519: 1 / (2/sign + 2/verify) per process', value: bound, unit: 'epochs/s' },
        target: { op: '>=', value: 1_000 },
      },
    ]
  } finally {
    const grace = new Promise((resolve) => setTimeout(resolve, 15_000).unref())
    await Promise.race([Promise.allSettled([provider, consumer].map((h) => (h.child.exitCode === null ? h.call('stop') : undefined))), grace])
    for (const h of [provider, consumer]) if (h.child.exitCode === null) h.child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
}

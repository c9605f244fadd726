/**
 * `pnpm bench gossip`: signed observations over gossipsub in a 50-node
 * loopback network.
 *
 * Host processes (scripts/bench/gossip/host.ts; 5 of 10 nodes by default,
 * BENCH_GOSSIP_HOSTS to change) run the nodes; all join through one seed,
 * settle (one self-lookup each). Each node follows 4 of the 16
 * observation shards (a party follows its counterparties' shards, not all;
 * round-robin, so every shard has 12-13 subscribers; BENCH_GOSSIP_SHARDS=16
 * for everyone on everything) with the real validator (signature, schema,
 * freshness, sequence, shard) in front of relay. Ten nodes act as monitors
 * and publish ~1 KiB signed observations about 64 providers, 20 per second
 * network-wide, for 20 s (6 s with --quick).
 *
 * - gossip.last.p50/p99: publish call to receipt (validated) by the last
 *   subscriber of the message's shard; limit: a raw node:net loopback TCP
 *   round trip (p50/p99) measured in the same run.
 * - gossip.delivered: receipts / (messages x their shard's other
 *   subscribers); limit 100 %.
 * - gossip.loop_lag.p99: event-loop delay of a host (monitorEventLoopDelay),
 *   the worst host; limit: the same hosts' p99 with the network idle. A
 *   host carries 10 nodes on one loop, so a node on its own sees less.
 * - gossip.cpu_per_msg: CPU time of all hosts during the run divided by
 *   deliveries (publishing, relaying, heartbeats included); limit: one raw
 *   Ed25519 verify (node:crypto, cached key) of a 1 KiB message measured
 *   here. Each delivery needs at least two (gossipsub's envelope
 *   signature and the observation's own).
 */
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Identity, verifySignature } from '@tally/core'
import { BenchHost, percentile, tcpRoundTrips } from './common.ts'
import type { BenchResult } from './result.ts'

const HOST = join(dirname(fileURLToPath(import.meta.url)), 'gossip', 'host.ts')

interface Collected {
  sent: [string, [number, string]][]
  received: [string, number, number][]
  cpuUs: number
  wallMs: number
  lagP50Ms: number
  lagP99Ms: number
  lagMaxMs: number
  bytes: number
}

function ed25519VerifyUs(): number {
  const id = Identity.generate()
  const payload = new Uint8Array(1024).fill(7)
  const sig = id.sign('doc/observation', payload)
  const rounds: number[] = []
  for (let r = 0; r < 5; r++) {
    const n = 1_000
    const start = performance.now()
    for (let i = 0; i < n; i++) if (!verifySignature('doc/observation', payload, sig, id.publicKey)) throw new Error('verify failed')
    rounds.push(((performance.now() - start) * 1000) / n)
  }
  return percentile(rounds, 50)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]> {
  const total = 50
  const hostCount = Math.max(1, Number(process.env['BENCH_GOSSIP_HOSTS'] ?? 5))
  const ratePerSecond = 20
  const monitors = 10
  const durationMs = opts.quick ? 6_000 : 20_000
  const shardsPerNode = Math.min(16, Math.max(1, Number(process.env['BENCH_GOSSIP_SHARDS'] ?? 4)))
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`  ${s}\n`)
  }
  const hosts = Array.from({ length: hostCount }, () => new BenchHost(HOST, 'gossip'))
  try {
    await Promise.all(hosts.map((h) => h.ready))
    const sizes = hosts.map((_, i) => Math.floor(total / hostCount) + (i < total % hostCount ? 1 : 0))
    const startedAt = performance.now()
    const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0))
    type Started = { addrs: string[]; subscriptions: [string, string[]][] }
    const first = await hosts[0]!.call<Started>('start', { count: sizes[0], offset: 0, shardsPerNode, bootstrap: [] })
    const seed = first.addrs[0]!
    const rest = await Promise.all(
      hosts.slice(1).map((h, i) => h.call<Started>('start', { count: sizes[i + 1], offset: offsets[i + 1], shardsPerNode, bootstrap: [seed] })),
    )
    const subscribers = new Map<string, Set<string>>()
    for (const started of [first, ...rest]) {
      for (const [peer, topics] of started.subscriptions) {
        for (const t of topics) {
          if (!subscribers.has(t)) subscribers.set(t, new Set())
          subscribers.get(t)!.add(peer)
        }
      }
    }
    log(`${total} nodes in ${hostCount} processes, ${shardsPerNode} of 16 shards each, started in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
    await Promise.all(hosts.map((h) => h.call('settle')))
    let mesh: { meshMin: number; connectionsAvg: number }[] = []
    for (let i = 0; i < 40; i++) {
      mesh = await Promise.all(hosts.map((h) => h.call<{ meshMin: number; connectionsAvg: number }>('mesh')))
      if (mesh.every((m) => m.meshMin >= 3)) break
      await sleep(500)
    }
    log(`meshes: smallest ${mesh.map((m) => m.meshMin).join('/')}, connections avg ${mesh.map((m) => m.connectionsAvg.toFixed(1)).join('/')}`)

    // Idle floor for loop lag: the same hosts with the network up and no traffic.
    await Promise.all(hosts.map((h) => h.call('mark')))
    await sleep(3_000)
    const idle = await Promise.all(hosts.map((h) => h.call<Collected>('collect')))
    log(
      `idle: CPU ${(idle.reduce((a, c) => a + c.cpuUs, 0) / 1e3 / Math.max(...idle.map((c) => c.wallMs))).toFixed(2)} cores, loop lag p99 ${Math.max(...idle.map((c) => c.lagP99Ms)).toFixed(1)} ms`,
    )

    // Monitors spread over the hosts; tick k publishes from monitor k mod 10.
    const perHostMonitors = hosts.map((_, i) => Math.ceil(((i + 1) * monitors) / hostCount) - Math.ceil((i * monitors) / hostCount))
    const monitorAt: { host: number; node: number }[] = []
    for (const [h, n] of perHostMonitors.entries()) for (let j = 0; j < n; j++) monitorAt.push({ host: h, node: 1 + j * Math.floor((sizes[h]! - 1) / n) })
    const clock = () => performance.timeOrigin + performance.now()
    const traffic = async (ms: number) => {
      const t0 = clock() + 500
      const ticks = Math.floor((ms * ratePerSecond) / 1000)
      const schedules = hosts.map(() => [] as { node: number; at: number }[])
      for (let k = 0; k < ticks; k++) {
        const m = monitorAt[k % monitorAt.length]!
        schedules[m.host]!.push({ node: m.node, at: t0 + (k * 1000) / ratePerSecond })
      }
      await Promise.all(hosts.map((h, i) => h.call('publish', { schedule: schedules[i] })))
    }
    await traffic(2_000)
    await sleep(1_000)
    await Promise.all(hosts.map((h) => h.call('mark')))
    await traffic(durationMs)
    await sleep(2_000)
    const collected = await Promise.all(hosts.map((h) => h.call<Collected>('collect')))

    const sentAt = new Map<string, number>()
    let expected = 0
    for (const c of collected) {
      for (const [k, [t, topic]] of c.sent) {
        sentAt.set(k, t)
        const subs = subscribers.get(topic) ?? new Set()
        expected += subs.size - (subs.has(k.slice(0, k.indexOf('#'))) ? 1 : 0)
      }
    }
    const last = new Map<string, number>()
    const count = new Map<string, number>()
    for (const c of collected) {
      for (const [k, t, n] of c.received) {
        if (!sentAt.has(k)) continue
        last.set(k, Math.max(last.get(k) ?? 0, t))
        count.set(k, (count.get(k) ?? 0) + n)
      }
    }
    const latencies: number[] = []
    let deliveries = 0
    for (const [k, t] of sentAt) {
      deliveries += count.get(k) ?? 0
      const l = last.get(k)
      if (l !== undefined) latencies.push(l - t)
    }
    const deliveredPct = expected === 0 ? 0 : (deliveries / expected) * 100
    const cpuUs = collected.reduce((s, c) => s + c.cpuUs, 0)
    const lagP99 = Math.max(...collected.map((c) => c.lagP99Ms))
    const idleLagP99 = Math.max(...idle.map((c) => c.lagP99Ms))
    log(
      `${sentAt.size} observations of ${collected[0]?.bytes ?? collected[1]?.bytes ?? 0} B, ${deliveries}/${expected} deliveries; loop lag max ${Math.max(...collected.map((c) => c.lagMaxMs)).toFixed(1)} ms; CPU ${(cpuUs / 1e6).toFixed(1)} s over ${(Math.max(...collected.map((c) => c.wallMs)) / 1000).toFixed(1)} s`,
    )

    const verifyUs = ed25519VerifyUs()
    const rtt = await tcpRoundTrips(opts.quick ? 500 : 2_000)
    const rttP50 = percentile(rtt, 50)
    const rttP99 = percentile(rtt, 99)
    return [
      {
        name: 'gossip.last.p50',
        value: percentile(latencies, 50),
        unit: 'ms',
        limit: { name: 'tcp loopback rtt p50', value: rttP50, unit: 'ms' },
        target: { op: '<=', value: 60 },
      },
      {
        name: 'gossip.last.p99',
        value: percentile(latencies, 99),
        unit: 'ms',
        limit: { name: 'tcp loopback rtt p99', value: rttP99, unit: 'ms' },
        target: { op: '<=', value: 300 },
      },
      {
        name: 'gossip.delivered',
        value: deliveredPct,
        unit: '%',
        limit: { name: 'every subscriber', value: 100, unit: '%' },
        target: { op: '>=', value: 100 },
      },
      {
        name: 'gossip.loop_lag.p99',
        value: lagP99,
        unit: 'ms',
        limit: { name: 'same hosts idle p99', value: idleLagP99, unit: 'ms' },
        target: { op: '<=', value: 20 },
      },
      {
        name: 'gossip.cpu_per_msg',
        value: deliveries === 0 ? Number.NaN : cpuUs / deliveries,
        unit: 'us',
        limit: { name: 'ed25519 verify (node:crypto)', value: verifyUs, unit: 'us' },
      },
    ]
  } finally {
    await Promise.allSettled(hosts.map((h) => h.call('stop')))
    for (const h of hosts) h.child.kill('SIGKILL')
  }
}

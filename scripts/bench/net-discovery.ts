/**
 * `pnpm bench net`: capability discovery in a 50-node loopback network.
 *
 * Two host processes (scripts/bench/net/host.ts) run 25 nodes each, one per
 * core of this 2-core machine, with the default node config plus
 * `localNetwork()`. The first host's nodes join through its first node,
 * the second host's through three of them. The network then settles as a
 * running one would within minutes (per node: a self-lookup and two
 * random-key lookups, like the periodic self-query and routing-table
 * refresh), and nothing is timed until new connections stop appearing.
 * Then, one at a time, a provider provides a fresh capability key and
 * consumers in the other process look it up.
 *
 * - net.discovery.provide.p50: one key's provide (lookup of the k = 20
 *   closest peers, then ADD_PROVIDER to each), dials included;
 * - net.discovery.provide.cpu.p50: CPU both hosts spent on it, idle
 *   background subtracted: the part of the latency contention cannot explain;
 * - net.discovery.announce.p50: announce() of an offer (3 keys in parallel);
 * - net.discovery.find.p50/p95: findProviders() until the first provider is
 *   reported (a consumer among the 20 nodes holding the record answers
 *   from its own store);
 * - net.rss.per_node: (host RSS with its nodes idle - host RSS with modules
 *   loaded and no node) / nodes, after GC;
 * - net.rr.p50: request/response on an open libp2p stream between hosts.
 *
 * Limits measured in the same run: the libp2p request/response round trip
 * on an open stream (the floor of one DHT hop), and a raw node:net TCP
 * round trip on loopback (the floor under libp2p). The log lines (stderr,
 * table mode) give every sample, connection churn, host event-loop delay
 * and the machine's load average, since other work on a shared host
 * stretches every latency here.
 */
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchHost, percentile, tcpRoundTrips } from './common.ts'
import type { BenchResult } from './result.ts'

const HOST = join(dirname(fileURLToPath(import.meta.url)), 'net', 'host.ts')

export async function run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]> {
  const perHost = 25
  const providers = opts.quick ? 8 : 24
  const findsPerProvider = opts.quick ? 2 : 3
  const announces = opts.quick ? 4 : 10
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`  ${s}\n`)
  }
  const hosts = [new BenchHost(HOST, 'discovery', ['--expose-gc']), new BenchHost(HOST, 'discovery', ['--expose-gc'])]
  try {
    await Promise.all(hosts.map((h) => h.ready))
    const baselines = await Promise.all(hosts.map((h) => h.call<{ rssMiB: number }>('baseline')))
    const startedAt = performance.now()
    // The first host's nodes join through its first node; the second host's through three of the first's.
    type Started = { addrs: string[]; bootFailed: number; bootFailures: string[] }
    const first = await hosts[0]!.call<Started>('start', { count: perHost, bootstrap: [] })
    const second = await hosts[1]!.call<Started>('start', { count: perHost, bootstrap: first.addrs.slice(0, 3) })
    for (const s of [first, second]) if (s.bootFailed > 0) log(`nodes that reached no bootstrap peer: ${s.bootFailed}; e.g. ${s.bootFailures.join('; ')}`)
    log(`50 nodes started in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
    const settled = await Promise.all(hosts.map((h) => h.call<{ routingTableMin: number; connectionsAvg: number }>('settle', { rounds: 3 })))
    log(
      `settled: routing table min ${settled.map((s) => s.routingTableMin).join('/')}, connections avg ${settled.map((s) => s.connectionsAvg.toFixed(1)).join('/')}`,
    )
    const idle = await Promise.all(hosts.map((h) => h.call<{ rssMiB: number; nodes: number }>('rss')))
    const perNode = idle.map((r, i) => (r.rssMiB - baselines[i]!.rssMiB) / r.nodes)

    // Time nothing until new connections have stopped appearing (at most 60 s more).
    await Promise.all(hosts.map((h) => h.call('churn')))
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 2_000))
      const churn = await Promise.all(hosts.map((h) => h.call<{ opened: number }>('churn')))
      if (churn.every((c) => c.opened < 4)) break
    }
    const quiet = await Promise.all(hosts.map((h) => h.call<{ connections: number }>('connections')))
    log(`connections per node before measuring: ${quiet.map((q) => q.connections.toFixed(1)).join('/')}`)

    type Cpu = { cpuMs: number; lagP50Ms: number; lagP99Ms: number; lagMaxMs: number }
    const cpu = () => Promise.all(hosts.map((h) => h.call<Cpu>('cpu')))
    const totalCpu = (c: Cpu[]) => c.reduce((sum, x) => sum + x.cpuMs, 0)
    // Background CPU of the idle network (pings, heartbeats), to subtract from each operation's CPU.
    const idle0 = await cpu()
    const idleStart = performance.now()
    await new Promise((r) => setTimeout(r, 4_000))
    const idle1 = await cpu()
    const idleCpuPerMs = (totalCpu(idle1) - totalCpu(idle0)) / (performance.now() - idleStart)
    log(
      `idle network: ${(idleCpuPerMs * 100).toFixed(0)} % of one core for 50 nodes; event-loop delay p99 ${idle1.map((c) => c.lagP99Ms.toFixed(0)).join('/')} ms`,
    )
    const provideCpuMs: number[] = []
    const lags: number[] = []

    const provideMs: number[] = []
    const announceMs: number[] = []
    const findMs: number[] = []
    let missed = 0
    for (let i = 0; i < providers; i++) {
      const provHost = i % 2
      const consHost = 1 - provHost
      const hw = `gpu.bench-${i}-${Math.random().toString(36).slice(2, 8)}`
      const before = await cpu()
      const t0 = performance.now()
      const provided = await hosts[provHost]!.call<{ ms: number; reached: number; peer: string }>('provide', { node: 1 + ((i * 7) % (perHost - 1)), hw })
      const after = await cpu()
      provideCpuMs.push(totalCpu(after) - totalCpu(before) - idleCpuPerMs * (performance.now() - t0))
      lags.push(...after.map((c) => c.lagP99Ms))
      provideMs.push(provided.ms)
      for (let j = 0; j < findsPerProvider; j++) {
        const found = await hosts[consHost]!.call<{ ms: number; peer: string | null }>('find', { node: (i * 5 + j * 11 + 3) % perHost, hw })
        if (found.peer !== provided.peer) missed++
        else findMs.push(found.ms)
      }
    }
    for (let i = 0; i < announces; i++) {
      const hw = `gpu.offer-${i}-${Math.random().toString(36).slice(2, 8)}`
      announceMs.push((await hosts[i % 2]!.call<{ ms: number }>('announce', { node: 2 + ((i * 3) % (perHost - 2)), hw })).ms)
    }
    const churn = await Promise.all(hosts.map((h) => h.call<{ opened: number; closed: number }>('churn')))
    log(`connections opened/closed while measuring: ${churn.map((c) => `${c.opened}/${c.closed}`).join(', ')}`)
    log(`provide ms: ${provideMs.map((x) => x.toFixed(0)).join(' ')}`)
    log(`provide CPU ms (both hosts, idle subtracted): ${provideCpuMs.map((x) => x.toFixed(0)).join(' ')}`)
    log(`host event-loop delay p99 during provides, ms: ${lags.map((x) => x.toFixed(0)).join(' ')}`)
    log(
      `load average at the end: ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} (${cpus().length} cores)`,
    )
    log(`announce ms: ${announceMs.map((x) => x.toFixed(0)).join(' ')}`)
    log(`find ms: ${findMs.map((x) => x.toFixed(0)).join(' ')}`)
    if (missed > 0) log(`finds that did not report the provider: ${missed}`)

    const echo = await hosts[1]!.call<{ addr: string }>('echoServe', { node: 0 })
    const rr = await hosts[0]!.call<{ samples: number[] }>('echoRtt', { node: 2, target: echo.addr, n: opts.quick ? 500 : 2000 })
    const tcp = await tcpRoundTrips(opts.quick ? 500 : 2000)
    const rrP50 = percentile(rr.samples, 50)
    const rrP95 = percentile(rr.samples, 95)
    const tcpP50 = percentile(tcp, 50)
    const rrLimit = { name: 'libp2p request/response on an open stream, p50', value: rrP50, unit: 'ms' }

    const results: BenchResult[] = [
      { name: 'net.discovery.provide.p50', value: percentile(provideMs, 50), unit: 'ms', limit: rrLimit, target: { op: '<=', value: 500 } },
      {
        name: 'net.discovery.provide.cpu.p50',
        value: percentile(provideCpuMs, 50),
        unit: 'ms',
        limit: { name: 'provide latency p50 (CPU over wall: how much of the latency is computing)', value: percentile(provideMs, 50), unit: 'ms' },
      },
      { name: 'net.discovery.announce.p50', value: percentile(announceMs, 50), unit: 'ms', limit: rrLimit },
      { name: 'net.discovery.find.p50', value: percentile(findMs, 50), unit: 'ms', limit: rrLimit, target: { op: '<=', value: 100 } },
      {
        name: 'net.discovery.find.p95',
        value: percentile(findMs, 95),
        unit: 'ms',
        limit: { name: 'libp2p request/response on an open stream, p95', value: rrP95, unit: 'ms' },
        target: { op: '<=', value: 500 },
      },
      {
        name: 'net.rss.per_node',
        value: perNode.reduce((a, b) => a + b, 0) / perNode.length,
        unit: 'MiB',
        limit: { name: 'host process baseline RSS (modules loaded, no node)', value: (baselines[0]!.rssMiB + baselines[1]!.rssMiB) / 2, unit: 'MiB' },
        target: { op: '<=', value: 12 },
      },
      { name: 'net.rr.p50', value: rrP50, unit: 'ms', limit: { name: 'node:net TCP round trip on loopback, p50', value: tcpP50, unit: 'ms' } },
    ]
    if (missed > 0) {
      results.push({
        name: 'net.discovery.find.missed',
        value: missed,
        unit: 'finds',
        limit: { name: 'finds attempted', value: providers * findsPerProvider, unit: 'finds' },
      })
    }
    return results
  } finally {
    const grace = new Promise((resolve) => setTimeout(resolve, 20_000).unref())
    await Promise.race([Promise.allSettled(hosts.map((h) => (h.child.exitCode === null ? h.call('stop') : undefined))), grace])
    for (const h of hosts) if (h.child.exitCode === null) h.child.kill('SIGKILL')
  }
}

import '@tally/core'
import { monitorEventLoopDelay, performance as perf } from 'node:perf_hooks'
import { loopbackNetwork, stopAll } from '../test/helpers.ts'
const N = Number(process.argv[2] ?? 30)
const t0 = performance.now()
let cpu0 = process.cpuUsage()
const nodes = await loopbackNetwork(N - 1)
const c = process.cpuUsage(cpu0)
console.log('started', N, ((performance.now() - t0) / 1000).toFixed(1), 's, cpu', ((c.user + c.system) / 1e6).toFixed(1), 's')
for (let round = 0; round < 3; round++) {
  const h = monitorEventLoopDelay({ resolution: 5 })
  h.enable()
  const elu0 = perf.eventLoopUtilization()
  cpu0 = process.cpuUsage()
  await new Promise((r) => setTimeout(r, 5000))
  const cu = process.cpuUsage(cpu0)
  const elu = perf.eventLoopUtilization(elu0)
  h.disable()
  console.log(
    'idle 5s: cpu',
    ((cu.user + cu.system) / 1e6).toFixed(2),
    's, elu',
    elu.utilization.toFixed(2),
    'lag p99',
    (h.percentile(99) / 1e6).toFixed(1),
    'ms',
    'conns',
    nodes.reduce((s, n) => s + n.libp2p.getConnections().length, 0) / N,
  )
}
await stopAll(nodes)

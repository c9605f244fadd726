import '@tally/core'
import { loopbackNetwork, stopAll } from '../test/helpers.ts'
import { capabilityCid } from '../src/index.ts'
const N = Number(process.argv[2] ?? 30)
const k = Number(process.argv[3] ?? 20)
const t0 = performance.now()
const nodes = await loopbackNetwork(N - 1, { dht: { kBucketSize: k } })
console.log('started', N, ((performance.now() - t0) / 1000).toFixed(1), 's')
for (let i = 0; i < 4; i++) {
  const node = nodes[1 + i * 3]!
  const cid = capabilityCid('tally/cap/v1/hw=x' + i + Math.random())
  const start = performance.now()
  const ev: Record<string, number[]> = {}
  for await (const e of node.libp2p.services.dht.provide(cid, { signal: AbortSignal.timeout(30000) })) {
    const key = e.name + ('messageName' in e ? ':' + e.messageName : '')
    ;(ev[key] ??= []).push(Math.round(performance.now() - start))
  }
  console.log(
    'provide total',
    Math.round(performance.now() - start),
    Object.fromEntries(Object.entries(ev).map(([k, v]) => [k, `${v.length} first ${v[0]} last ${v[v.length - 1]}`])),
  )
}
await stopAll(nodes)

import '@tally/core'
import { OPEN_TRUST_POLICY } from '@tally/core'
import { loopbackNetwork, makeOffer, stopAll, collect } from '../test/helpers.ts'
const t0 = performance.now()
const nodes = await loopbackNetwork(5)
console.log(
  'started',
  nodes.length,
  (performance.now() - t0).toFixed(0),
  'ms',
  nodes.map((n) => n.boot),
)
const provider = nodes[2]!
const consumer = nodes[5]!
const r = await provider.discovery.announce(makeOffer(provider.identity))
console.log('announce', r.reached, r.durationMs.toFixed(1))
const t1 = performance.now()
const res = await collect(consumer.discovery.discover({ hardwareClass: 'gpu.h100' }, OPEN_TRUST_POLICY))
console.log(
  'discover',
  (performance.now() - t1).toFixed(1),
  res.map((x) => ('offer' in x ? ['ok', x.peer] : x)),
)
await stopAll(nodes)
console.log('stopped')

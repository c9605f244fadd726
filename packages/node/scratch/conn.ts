import '@tally/core'
import { multiaddr } from '../src/index.ts'
import { loopbackNode, dialAddress } from '../test/helpers.ts'
const others = await Promise.all(Array.from({ length: 20 }, () => loopbackNode()))
await new Promise(r => setTimeout(r, 1000))
const a = await loopbackNode()
const c0 = process.cpuUsage(); const t0 = performance.now()
await Promise.all(others.map(o => a.libp2p.dial(multiaddr(dialAddress(o)))))
const t1 = performance.now(); const c1 = process.cpuUsage(c0)
await new Promise(r => setTimeout(r, 2000))
const c2 = process.cpuUsage(c0)
console.log('20 dials', (t1 - t0).toFixed(0), 'ms wall,', ((c1.user + c1.system) / 1000).toFixed(0), 'ms cpu at connect,', ((c2.user + c2.system) / 1000 - 2000*0).toFixed(0), 'ms cpu incl. 2 s after')
// baseline idle cost for comparison
const c3 = process.cpuUsage(); await new Promise(r => setTimeout(r, 2000)); const c4 = process.cpuUsage(c3)
console.log('idle 2 s', ((c4.user + c4.system) / 1000).toFixed(0), 'ms cpu')
process.exit(0)

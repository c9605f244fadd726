import '@tally/core'
import { Identity } from '@tally/core'
import { createTallyNode, localNetwork, multiaddr } from '../src/index.ts'
import { dialAddress } from '../test/helpers.ts'
const mode = process.argv[2] ?? 'explicit'
const N = 16
const c0 = process.cpuUsage(); const t0 = performance.now()
const seed = await createTallyNode({ identity: Identity.generate(), listen: ['/ip4/127.0.0.1/tcp/0'], network: localNetwork() })
const nodes = [seed]
for (let i = 1; i < N; i++) {
  if (mode === 'explicit') {
    nodes.push(await createTallyNode({ identity: Identity.generate(), listen: ['/ip4/127.0.0.1/tcp/0'], network: localNetwork(), bootstrap: [dialAddress(seed)] }))
  } else {
    const n = await createTallyNode({ identity: Identity.generate(), listen: ['/ip4/127.0.0.1/tcp/0'], network: localNetwork() })
    const done = new Promise<void>((resolve) => n.libp2p.addEventListener('kad-dht:query:self' as any, () => resolve(), { once: true }))
    await n.libp2p.dial(multiaddr(dialAddress(seed)))
    await Promise.race([done, new Promise(r => setTimeout(r, 10000))])
    nodes.push(n)
  }
}
const c1 = process.cpuUsage(c0)
const rt = nodes.map(n => (n.libp2p.services.dht as any).routingTable.size)
console.log(mode, 'join', ((performance.now() - t0)/1000).toFixed(1), 's wall', ((c1.user+c1.system)/1e6).toFixed(1), 's cpu; rt', rt.join(','))
await new Promise(r => setTimeout(r, 3000))
console.log('after 3 s: rt', nodes.map(n => (n.libp2p.services.dht as any).routingTable.size).join(','), 'conns', nodes.map(n => n.libp2p.getConnections().length).join(','))
await Promise.all(nodes.map(n => n.stop()))
process.exit(0)

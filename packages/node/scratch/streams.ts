import '@tally/core'
import { loopbackNetwork, stopAll } from '../test/helpers.ts'
const N = Number(process.argv[2] ?? 20)
const nodes = await loopbackNetwork(N - 1)
const counts = new Map<string, number>()
const wrap = (conn: any) => {
  if (conn.__wrapped) return
  conn.__wrapped = true
  const orig = conn.newStream.bind(conn)
  conn.newStream = (protocols: string | string[], opts: any) => {
    const p = Array.isArray(protocols) ? protocols[0] : protocols
    counts.set(p, (counts.get(p) ?? 0) + 1)
    return orig(protocols, opts)
  }
}
for (const n of nodes) {
  for (const c of n.libp2p.getConnections()) wrap(c)
  n.libp2p.addEventListener('connection:open', (e: any) => wrap(e.detail))
}
let opens = 0,
  closes = 0
for (const n of nodes) {
  n.libp2p.addEventListener('connection:open', () => opens++)
  n.libp2p.addEventListener('connection:close', () => closes++)
}
await new Promise((r) => setTimeout(r, 10000))
console.log('10 s idle, outbound streams by protocol:', Object.fromEntries(counts), 'conn opens', opens, 'closes', closes)
await stopAll(nodes)

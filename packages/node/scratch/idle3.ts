import '@tally/core'
import { Session } from 'node:inspector/promises'
import { multiaddr } from '../src/index.ts'
import { loopbackNode, dialAddress } from '../test/helpers.ts'
const others = await Promise.all(Array.from({ length: 20 }, () => loopbackNode()))
const a = await loopbackNode()
await Promise.all(others.map(o => a.libp2p.dial(multiaddr(dialAddress(o)))))
let opens = 0; for (const n of [a, ...others]) n.libp2p.addEventListener('connection:open', () => opens++)
for (let s = 0; s < 4; s++) {
  const c3 = process.cpuUsage(); await new Promise(r => setTimeout(r, 2000)); const c4 = process.cpuUsage(c3)
  console.log('idle 2 s', ((c4.user + c4.system) / 1000).toFixed(0), 'ms cpu; opens so far', opens, 'conns of a', a.libp2p.getConnections().length)
}
const session = new Session(); session.connect()
await session.post('Profiler.enable'); await session.post('Profiler.start')
await new Promise(r => setTimeout(r, 3000))
const { profile } = await session.post('Profiler.stop')
const byId = new Map(profile.nodes.map((x: any) => [x.id, x]))
const parent = new Map<number, number>(); for (const x of profile.nodes as any[]) for (const c of x.children ?? []) parent.set(c, x.id)
const agg = new Map<string, number>()
for (let i = 0; i < profile.samples.length; i++) {
  let id: number | undefined = profile.samples[i]; const t = profile.timeDeltas[i] ?? 0
  const chain: string[] = []
  for (let d = 0; d < 60 && id !== undefined; d++) { const x: any = byId.get(id); const u: string = x.callFrame.url; const m = u.match(/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?(@[^/]+\/[^/]+|[^/]+)/); if (m) chain.push(m[1]); id = parent.get(id) }
  const key = chain.length ? [...new Set(chain)].reverse().slice(0, 4).join(' > ') : (byId.get(profile.samples[i]) as any).callFrame.functionName
  agg.set(key, (agg.get(key) ?? 0) + t)
}
for (const [k, v] of [...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log((v / 1000).toFixed(0).padStart(6), k)
process.exit(0)

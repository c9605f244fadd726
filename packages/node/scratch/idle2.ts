import '@tally/core'
import { Session } from 'node:inspector/promises'
import { loopbackNode } from '../test/helpers.ts'
const n = Number(process.argv[2] ?? 20)
const nodes = await Promise.all(Array.from({ length: n }, () => loopbackNode()))
await new Promise(r => setTimeout(r, 2000))
const c3 = process.cpuUsage(); await new Promise(r => setTimeout(r, 3000)); const c4 = process.cpuUsage(c3)
console.log(n, 'unconnected nodes idle 3 s', ((c4.user + c4.system) / 1000).toFixed(0), 'ms cpu')
const session = new Session(); session.connect()
await session.post('Profiler.enable'); await session.post('Profiler.start')
await new Promise(r => setTimeout(r, 3000))
const { profile } = await session.post('Profiler.stop')
const byId = new Map(profile.nodes.map((x: any) => [x.id, x]))
const parent = new Map<number, number>(); for (const x of profile.nodes as any[]) for (const c of x.children ?? []) parent.set(c, x.id)
const self = new Map<string, number>()
for (let i = 0; i < profile.samples.length; i++) {
  let id = profile.samples[i]; const t = profile.timeDeltas[i] ?? 0
  // attribute to the first frame from a package (walk up)
  let key = ''
  for (let d = 0; d < 30 && id !== undefined; d++) { const x: any = byId.get(id); const u = x.callFrame.url; if (u.includes('node_modules') || u.includes('/src/')) { key = `${x.callFrame.functionName} ${u.split('node_modules/').pop()}:${x.callFrame.lineNumber}`; break } id = parent.get(id)! }
  if (!key) key = (byId.get(profile.samples[i]) as any).callFrame.functionName
  self.set(key, (self.get(key) ?? 0) + t)
}
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log((v / 1000).toFixed(0).padStart(6), k)
process.exit(0)

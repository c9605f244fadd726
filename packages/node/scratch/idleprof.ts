import '@tally/core'
import { Session } from 'node:inspector/promises'
import { writeFileSync } from 'node:fs'
import { loopbackNetwork, stopAll } from '../test/helpers.ts'
const N = Number(process.argv[2] ?? 20)
const phase = process.argv[3] ?? 'idle'
const session = new Session()
session.connect()
await session.post('Profiler.enable')
if (phase === 'start') await session.post('Profiler.start')
const nodes = await loopbackNetwork(N - 1)
if (phase === 'idle') {
  await new Promise((r) => setTimeout(r, 3000))
  await session.post('Profiler.start')
  await new Promise((r) => setTimeout(r, 8000))
}
const { profile } = await session.post('Profiler.stop')
// aggregate self time by function+url
const self = new Map<string, number>()
const byId = new Map(profile.nodes.map((n: any) => [n.id, n]))
const dt = profile.timeDeltas
const samples = profile.samples
const counts = new Map<number, number>()
for (let i = 0; i < samples.length; i++) counts.set(samples[i], (counts.get(samples[i]) ?? 0) + (dt[i] ?? 0))
for (const [id, t] of counts) {
  const n: any = byId.get(id)
  const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('node_modules/').pop()}:${n.callFrame.lineNumber}`
  self.set(key, (self.get(key) ?? 0) + t)
}
const total = [...self.values()].reduce((a, b) => a + b, 0)
console.log('total ms', (total / 1000).toFixed(0))
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 35)) console.log((v / 1000).toFixed(0).padStart(7), k)
// inclusive by package
const pkg = new Map<string, number>()
for (const [id, t] of counts) {
  const n: any = byId.get(id)
  const m = n.callFrame.url.match(/node_modules\/(@[^/]+\/[^/]+|[^/]+)/)
  const key = m ? m[1] : n.callFrame.url || n.callFrame.functionName
  pkg.set(key, (pkg.get(key) ?? 0) + t)
}
console.log('--- self time by package')
for (const [k, v] of [...pkg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log((v / 1000).toFixed(0).padStart(7), k)
await stopAll(nodes)

import v8 from 'node:v8'
import { verifyExport } from './src/index.ts'
const base = process.resourceUsage().maxRSS / 1024
const m0 = process.memoryUsage()
let peakHeap = 0, peakTotal = 0
const timer = setInterval(() => {}, 1000)
const r = await verifyExport(process.argv[2]!, { onProgress: () => { const m = process.memoryUsage(); peakHeap = Math.max(peakHeap, m.heapUsed); peakTotal = Math.max(peakTotal, m.heapTotal) } })
clearInterval(timer)
const m1 = process.memoryUsage()
const f = (x: number) => (x / 1048576).toFixed(0)
console.log('ok', r.ok, 'baseline maxrss', base.toFixed(0), 'start heap', f(m0.heapUsed), '/', f(m0.heapTotal), 'scan peak heap', f(peakHeap), '/', f(peakTotal), 'end heap', f(m1.heapUsed), '/', f(m1.heapTotal), 'ext', f(m1.external), 'maxrss', (process.resourceUsage().maxRSS / 1024).toFixed(0))
for (const s of v8.getHeapSpaceStatistics()) console.log(s.space_name, f(s.space_size), f(s.space_used_size))

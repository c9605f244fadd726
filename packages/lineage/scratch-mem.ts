import { readFileSync } from 'node:fs'
import { analyzeExport } from './src/index.ts'
const car = new Uint8Array(readFileSync(process.argv[2]!))
const m0 = process.memoryUsage()
const t = performance.now()
const a = await analyzeExport(car)
console.log('ms', performance.now() - t, a.report.ok)
const m1 = process.memoryUsage()
;(globalThis as any).gc?.()
const m2 = process.memoryUsage()
const f = (m: NodeJS.MemoryUsage) => `rss ${(m.rss / 1048576).toFixed(0)} heap ${(m.heapUsed / 1048576).toFixed(0)}/${(m.heapTotal / 1048576).toFixed(0)} ab ${(m.arrayBuffers / 1048576).toFixed(0)}`
console.log('before', f(m0)); console.log('after', f(m1)); console.log('after gc', f(m2))
console.log('maxrss', process.resourceUsage().maxRSS / 1024)

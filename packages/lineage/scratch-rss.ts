import { readFileSync } from 'node:fs'
import { verifyExport } from './src/index.ts'
const mode = process.argv[2]
const before = process.memoryUsage()
console.log('baseline rss', (before.rss / 1048576).toFixed(0), 'heap', (before.heapUsed / 1048576).toFixed(0))
if (mode !== 'none') {
  const car = new Uint8Array(readFileSync('/tmp/l20k.car'))
  const t = performance.now()
  const rep = await verifyExport(car)
  console.log('verify', rep.ok, performance.now() - t)
  const m = process.memoryUsage()
  console.log('after rss', (m.rss / 1048576).toFixed(0), 'heap', (m.heapUsed / 1048576).toFixed(0), 'ext', (m.external / 1048576).toFixed(0), 'ab', (m.arrayBuffers / 1048576).toFixed(0))
}
console.log('maxrss', (process.resourceUsage().maxRSS / 1024).toFixed(0))

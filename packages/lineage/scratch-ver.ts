import { readFileSync } from 'node:fs'
import { verifyExport, measureHashDecodeRate } from './src/index.ts'
const car = new Uint8Array(readFileSync(process.argv[2] ?? '/tmp/l20k.car'))
for (let r = 0; r < 4; r++) {
  const t = performance.now()
  const rep = await verifyExport(car)
  const n = rep.chains.provider.entries + rep.chains.consumer.entries
  console.log('verify', rep.ok, n, Math.round(n / (performance.now() - t) * 1000), 'floor', Math.round(measureHashDecodeRate(car)))
}
console.log('rss', process.resourceUsage().maxRSS / 1024)

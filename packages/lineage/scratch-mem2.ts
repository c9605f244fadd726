import { verifyExport } from './src/index.ts'
const t = performance.now()
const r = await verifyExport(process.argv[2]!)
console.log('ms', performance.now() - t, r.ok, 'maxrss', process.resourceUsage().maxRSS / 1024)

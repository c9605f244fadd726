import '@tally/core'
import { loopbackNode } from '../test/helpers.ts'
for (let i = 0; i < 5; i++) {
  const c0 = process.cpuUsage(); const t0 = performance.now()
  const n = await loopbackNode()
  const c = process.cpuUsage(c0)
  console.log('create+start', (performance.now() - t0).toFixed(0), 'ms wall', ((c.user + c.system) / 1000).toFixed(0), 'ms cpu')
}
process.exit(0)

import { Identity } from '@tally/core'
import { LevelStore, PairLog } from './src/index.ts'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const body = (i: number) => ({ deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' })
const store = await LevelStore.open(mkdtempSync(join(tmpdir(), 'p-')))
const a = Identity.generate()
const log = await PairLog.open(store, { provider: a.peerId, consumer: Identity.generate().peerId }, a)
await log.ensureOpen()
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system }
for (let r = 0; r < 4; r++) {
  const n = 20000
  let issued = 0
  const c0 = cpu()
  const e0 = performance.eventLoopUtilization()
  await Promise.all(Array.from({ length: 256 }, async () => { while (issued < n) { issued++; await log.append('usage', body(issued)) } }))
  const perAppend = (cpu() - c0) / n
  const elu = performance.eventLoopUtilization(e0)
  console.log('main-thread us/append', (elu.active * 1000 / n).toFixed(1), 'idle us/append', (elu.idle * 1000 / n).toFixed(1))
  const payload = new Uint8Array(380)
  const c1 = cpu(); for (let i = 0; i < 5000; i++) a.sign('entry', payload)
  const perSign = (cpu() - c1) / 5000
  console.log('cpu us/append', perAppend.toFixed(1), 'cpu us/sign', perSign.toFixed(1), 'ratio', (perSign / perAppend).toFixed(2))
}

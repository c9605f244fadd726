import { Identity } from '@tally/core'
import { MemoryStore, LevelStore, PairLog } from './src/index.ts'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const body = (i: number) => ({ deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' })
for (const kind of ['memory', 'level']) {
  const store = kind === 'memory' ? new MemoryStore() : await LevelStore.open(mkdtempSync(join(tmpdir(), 'p-')))
  const a = Identity.generate()
  const log = await PairLog.open(store, { provider: a.peerId, consumer: Identity.generate().peerId }, a)
  for (let i = 0; i < 200; i++) await log.append('usage', body(i))
  let t = performance.now()
  const n = 2000
  for (let i = 0; i < n; i++) await log.append('usage', body(i))
  console.log(kind, 'seq', Math.round(n / (performance.now() - t) * 1000))
  t = performance.now()
  await Promise.all(Array.from({ length: 5000 }, (_, i) => log.append('usage', body(i))))
  console.log(kind, 'all', Math.round(5000 / (performance.now() - t) * 1000), store.durableWrites)
}

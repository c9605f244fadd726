import { Identity } from '@tally/core'
import { MemoryStore, PairLog } from './src/index.ts'
const body = (i: number) => ({ deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' })
const store = new MemoryStore()
const a = Identity.generate()
const log = await PairLog.open(store, { provider: a.peerId, consumer: Identity.generate().peerId }, a)
for (let r = 0; r < 5; r++) {
  const t = performance.now()
  await Promise.all(Array.from({ length: 5000 }, (_, i) => log.append('usage', body(i))))
  console.log('all', Math.round(5000 / (performance.now() - t) * 1000))
}
const id = Identity.generate(); const payload = new Uint8Array(380)
let t = performance.now(); for (let i = 0; i < 5000; i++) id.sign('entry', payload); console.log('sign', Math.round(5000 / (performance.now() - t) * 1000))

import { Identity, encode, toBlock, embeddedDocuments } from '@tally/core'
import { signEntryFast } from './src/entry-codec.ts'
import { MemoryStore, PairLog } from './src/index.ts'
const id = Identity.generate()
const pair = toBlock({ a: 1 }).cid
const body = (i: number) => ({ deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' })
function best(name: string, n: number, f: (i: number) => void) {
  let b = Infinity
  for (let r = 0; r < 7; r++) { const t = performance.now(); for (let i = 0; i < n; i++) f(i); b = Math.min(b, (performance.now() - t) * 1000 / n) }
  console.log(name.padEnd(20), b.toFixed(2), 'us')
}
const payload = new Uint8Array(380)
best('sign', 3000, () => id.sign('entry', payload))
best('encode body', 20000, (i) => encode(body(i)))
best('embeddedDocs', 20000, (i) => embeddedDocuments(body(i)))
let prev = toBlock({ p: 1 }).cid
best('signEntryFast', 3000, (i) => { signEntryFast(id, { v: 1, pair, author: id.peerId, seq: i + 2, prev, seen: prev, time: 1700000000000 + i, kind: 'usage', body: body(i) }) })
const store = new MemoryStore()
const log = await PairLog.open(store, { provider: id.peerId, consumer: Identity.generate().peerId }, id)
await log.ensureOpen()
for (let r = 0; r < 5; r++) {
  const n = 5000
  const t = performance.now()
  await Promise.all(Array.from({ length: n }, (_, i) => log.append('usage', body(i))))
  console.log('memory group append', ((performance.now() - t) * 1000 / n).toFixed(2), 'us')
}

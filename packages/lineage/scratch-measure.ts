import { Identity, signEntry, decodeEntry, toBlock, decode, sha256, entryFromValue } from '@tally/core'
import { Level } from 'level'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const id = Identity.generate()
const pair = toBlock({ provider: id.peerId, consumer: id.peerId }).cid
function rate(name: string, n: number, f: (i: number) => void) {
  const t = performance.now(); for (let i = 0; i < n; i++) f(i); const dt = performance.now() - t
  console.log(name, Math.round(n / dt * 1000), '/s')
}
const payload = new Uint8Array(200)
rate('sign', 5000, () => id.sign('entry', payload))
const blocks: any[] = []
let prev: any = null
rate('signEntry', 5000, (i) => { const b = signEntry(id, { v: 1, pair, author: id.peerId, seq: i + 1, prev, seen: prev, time: Date.now(), kind: 'usage', body: { epoch: i, gpuSeconds: 3600, deal: pair } }); prev = b.cid; blocks.push(b) })
console.log('bytes', blocks[10].bytes.length)
rate('sha256', 20000, (i) => sha256(blocks[i % 5000].bytes))
rate('decode', 20000, (i) => decode(blocks[i % 5000].bytes))
rate('sha+decode', 20000, (i) => { sha256(blocks[i % 5000].bytes); decode(blocks[i % 5000].bytes) })
const vals = blocks.map(b => decode(b.bytes))
rate('entryFromValue', 20000, (i) => entryFromValue(vals[i % 5000]))
rate('decodeEntry', 20000, (i) => decodeEntry(blocks[i % 5000].bytes))
const dir = mkdtempSync(join(tmpdir(), 'lvl-'))
const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
await db.open()
let t = performance.now()
for (let i = 0; i < 2000; i++) await db.put(new Uint8Array([i & 255, i >> 8]), blocks[i % 5000].bytes, { sync: true })
console.log('sync put', Math.round(2000 / (performance.now() - t) * 1000))
t = performance.now()
for (let i = 0; i < 2000; i++) await db.batch([{type:'put', key: new Uint8Array([1, i & 255, i >> 8]), value: blocks[i % 5000].bytes},{type:'put', key: new Uint8Array([2, i & 255, i >> 8]), value: blocks[i % 5000].bytes},{type:'put', key: new Uint8Array([3, i & 255, i >> 8]), value: blocks[i % 5000].bytes}], { sync: true })
console.log('sync batch3', Math.round(2000 / (performance.now() - t) * 1000))
t = performance.now()
for (let i = 0; i < 200; i++) { const ops: any[] = []; for (let j = 0; j < 100; j++) { ops.push({type:'put', key: new Uint8Array([4, i & 255, i >> 8, j]), value: blocks[j].bytes}, {type:'put', key: new Uint8Array([5, i & 255, i >> 8, j]), value: blocks[j].cid.bytes}) } await db.batch(ops, { sync: true }) }
console.log('sync batch100x2', Math.round(20000 / (performance.now() - t) * 1000))
await db.close()

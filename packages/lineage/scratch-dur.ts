import { Identity } from '@tally/core'
import { LevelStore, PairLog, measureSyncPutRate } from './src/index.ts'
import { Level } from 'level'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const body = (i: number) => ({ deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' })
for (let round = 0; round < 2; round++) {
  console.log('put', Math.round(await measureSyncPutRate(mkdtempSync(join(tmpdir(), 'r-')), 1500)))
  const db = new Level<string, Uint8Array>(mkdtempSync(join(tmpdir(), 'b-')), { keyEncoding: 'utf8', valueEncoding: 'view' })
  const v = new Uint8Array(400)
  let t = performance.now()
  for (let i = 0; i < 1500; i++) await db.batch([{ type: 'put', key: `b/${i}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`, value: v }, { type: 'put', key: `i/${i}yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy`, value: v.subarray(0, 36) }, { type: 'put', key: 'h/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz', value: v.subarray(0, 50) }], { sync: true })
  console.log('batch3', Math.round(1500 / (performance.now() - t) * 1000))
  const store = await LevelStore.open(mkdtempSync(join(tmpdir(), 'p-')))
  const a = Identity.generate()
  const log = await PairLog.open(store, { provider: a.peerId, consumer: Identity.generate().peerId }, a)
  for (let i = 0; i < 100; i++) await log.append('usage', body(i))
  t = performance.now()
  for (let i = 0; i < 1500; i++) await log.append('usage', body(i))
  console.log('append', Math.round(1500 / (performance.now() - t) * 1000))
  t = performance.now()
  for (let i = 0; i < 1500; i++) a.sign('entry', v)
  console.log('sign', Math.round(1500 / (performance.now() - t) * 1000))
}

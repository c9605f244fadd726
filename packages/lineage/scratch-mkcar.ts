import { writeFileSync } from 'node:fs'
import { Identity, signDocument } from '@tally/core'
import { MemoryStore, PairLog, proposeCheckpoint, cosignCheckpoint, exportPairLogBytes } from './src/index.ts'
const n = Number(process.argv[2] ?? 20000)
const prov = Identity.generate(), cons = Identity.generate(), mon = Identity.generate()
const pair = { provider: prov.peerId, consumer: cons.peerId }
const p = await PairLog.open(new MemoryStore(), pair, prov), c = await PairLog.open(new MemoryStore(), pair, cons)
const send = async (from: PairLog, to: PairLog) => { const have = to.heads()[from.role]?.seq ?? 0; const bs = []; for await (const b of from.range(from.me, have + 1)) bs.push(b); if (bs.length) await to.ingest(bs) }
let i = 0, epoch = 0
const usage = (i: number) => ({ deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' })
while (i < n) {
  const burst = []
  for (let k = 0; k < 60 && i < n; k++, i++) { const b: any = usage(i); if (i % 200 === 0) b.observation = signDocument(mon, 'observation', { up: true, epoch }); burst.push(p.append('usage', b)) }
  await Promise.all(burst); await send(p, c)
  const v = []; for (let k = 0; k < 40 && i < n; k++, i++) v.push(c.append('voucher', { epoch, cumulative: { amount: 100 * i, asset: 'USD' } }))
  await Promise.all(v); await send(c, p); epoch++
  if (epoch % 100 === 0) { const pr = await proposeCheckpoint(p, { USD: { paid: i } }); await send(p, c); await cosignCheckpoint(c, pr); await send(c, p) }
}
const car = await exportPairLogBytes(p)
writeFileSync(process.argv[3] ?? '/tmp/l20k.car', car)
console.log('bytes', car.length)

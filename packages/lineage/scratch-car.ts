import { Identity, signDocument } from '@tally/core'
import { CarReader } from '@ipld/car'
import { MemoryStore, PairLog, proposeCheckpoint, cosignCheckpoint, exportPairLogBytes, verifyExport, importCar } from './src/index.ts'
const prov = Identity.generate(), cons = Identity.generate(), mon = Identity.generate()
const pair = { provider: prov.peerId, consumer: cons.peerId }
const lp = await PairLog.open(new MemoryStore(), pair, prov), lc = await PairLog.open(new MemoryStore(), pair, cons)
async function sync(from: PairLog, to: PairLog) {
  const have = to.heads()[from.role]?.seq ?? 0
  const bs = []; for await (const b of from.range(from.me, have + 1)) bs.push(b)
  if (bs.length) await to.ingest(bs)
}
for (let i = 0; i < 20; i++) {
  await lp.append('usage', { epoch: i, obs: i % 5 === 0 ? signDocument(mon, 'observation', { up: true, i }) : null })
  if (i % 3 === 0) { await sync(lp, lc); await lc.append('note', { i }); await sync(lc, lp) }
  if (i % 7 === 6) { const p = await proposeCheckpoint(lp, { USD: { paid: i } }); await sync(lp, lc); await cosignCheckpoint(lc, p); await sync(lc, lp) }
}
const car = await exportPairLogBytes(lp)
console.log('car bytes', car.length)
const r = await verifyExport(car)
console.log(JSON.stringify({ ok: r.ok, chains: r.chains, cps: r.checkpoints, docs: r.documents, bal: r.balances, problems: r.problems }))
const reader = await CarReader.fromBytes(car)
let n = 0; for await (const _ of reader.blocks()) n++
console.log('ipld car blocks', n, (await reader.getRoots()).map(String))
const st = new MemoryStore(); const imp = await importCar(st, car); console.log('import', imp.added)
const lc2 = await PairLog.open(st, pair, cons); console.log(lc2.heads().provider?.seq, lc2.checkpoints().length)
let bad = 0, unnamed = 0
const codes = new Map()
for (let pos = 0; pos < car.length; pos++) {
  const c = car.slice(); c[pos] ^= 1 << (pos % 8)
  const rr = await verifyExport(c)
  if (rr.ok) { bad++; console.log('undetected at', pos) }
  else if (rr.firstProblem?.author === undefined) { unnamed++; if (unnamed < 5) console.log('unnamed', pos, JSON.stringify(rr.problems)) }
  else codes.set(rr.firstProblem.code, (codes.get(rr.firstProblem.code) ?? 0) + 1)
}
console.log('undetected', bad, 'unnamed', unnamed, [...codes])

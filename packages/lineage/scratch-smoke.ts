import { Identity, signEntry, decodeEntry, bytesEqual } from '@tally/core'
import { MemoryStore, PairLog, proposeCheckpoint, cosignCheckpoint, decodeEntryFast } from './src/index.ts'
const prov = Identity.generate(), cons = Identity.generate()
const pair = { provider: prov.peerId, consumer: cons.peerId }
const sp = new MemoryStore(), sc = new MemoryStore()
const lp = await PairLog.open(sp, pair, prov), lc = await PairLog.open(sc, pair, cons)
const a1 = await lp.append('note', { hello: 1 })
console.log(a1.entry.seq, a1.cid.toString())
const r = await lc.ingest([ (await lp.getBySeq(prov.peerId, 1))!.bytes, a1.bytes ])
console.log('ingested', r.added.length, r.duplicates)
const c1 = await lc.append('note', { hi: 2 })
await lp.ingest([ (await lc.getBySeq(cons.peerId, 1))!, c1 ])
const prop = await proposeCheckpoint(lp, { USD: { paid: 1 } })
await lc.ingest([prop])
const ck = await cosignCheckpoint(lc, prop)
await lp.ingest([ck])
console.log('checkpoints', lp.checkpoints().length, lc.checkpoints().length)
const tl = []
for await (const b of lp.timeline()) tl.push(`${b.entry.author === prov.peerId ? 'P' : 'C'}${b.entry.seq}:${b.entry.kind}`)
console.log(tl.join(' '))
const tl2 = []
for await (const b of lc.timeline()) tl2.push(`${b.entry.author === prov.peerId ? 'P' : 'C'}${b.entry.seq}:${b.entry.kind}`)
console.log(tl2.join(' '))
// equality with core
const b2 = decodeEntry(ck.bytes); const b3 = decodeEntryFast(ck.bytes)
console.log('eq', b2.cid.equals(b3.cid), JSON.stringify(b2.entry.body.statement.heads) === JSON.stringify(b3.entry.body.statement.heads))
const core = signEntry(prov, { ...a1.entry, sig: undefined } as any)
console.log('bytes equal core', bytesEqual(core.bytes, a1.bytes))
try { await lc.ingest([a1.bytes, a1.bytes]) } catch (e) { console.log((e as Error).name) }
try { await lc.ingest([c1]) } catch (e) { console.log((e as Error).name) }

import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { exportPairLogBytes } from '../src/car.ts'
import { cosignCheckpoint, proposeCheckpoint } from '../src/checkpoint.ts'
import { PairLog } from '../src/pair-log.ts'
import { LevelStore } from '../src/store-level.ts'
import { verifyExport } from '../src/verify.ts'
import { makePair, seeded, snapshot, sync, tempDir } from './helpers.ts'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..', '..')

describe('LevelStore durability', () => {
  it('keeps entries, heads, checkpoints and meta across close and reopen', async () => {
    const tp = await tempDir()
    const tc = await tempDir()
    try {
      let sp = await LevelStore.open(tp.dir)
      const sc = await LevelStore.open(tc.dir)
      const x = await makePair({}, { sp, sc })
      for (let i = 0; i < 10; i++) {
        await x.p.append('usage', { i }, { meta: [{ key: `session/${i % 2}`, value: Uint8Array.of(i) }] })
        await sync(x.p, x.c)
        await x.c.append('voucher', { i })
        await sync(x.c, x.p)
      }
      const proposal = await proposeCheckpoint(x.p, { USD: { paid: 10 } })
      await sync(x.p, x.c)
      await cosignCheckpoint(x.c, proposal)
      await sync(x.c, x.p)
      const before = await snapshot(sp, x.pair, x.p.id)
      const heads = JSON.stringify(x.p.heads())
      const car = await exportPairLogBytes(x.p, { exportedAt: 1 })
      await x.p.close()
      await sp.close()
      sp = await LevelStore.open(tp.dir)
      const again = await PairLog.open(sp, x.pair, x.provider)
      expect(await snapshot(sp, x.pair, again.id)).toEqual(before)
      expect(JSON.stringify(again.heads())).toEqual(heads)
      expect(again.checkpoints().length).toBe(1)
      expect(await exportPairLogBytes(again, { exportedAt: 1 })).toEqual(car)
      const next = await again.append('note', { after: 'restart' })
      expect(next.entry.seq).toBe(again.heads().provider!.seq)
      expect(next.entry.prev?.toString()).toBe(JSON.parse(heads).provider.cid['/'])
      const pairs = []
      for await (const p of sp.pairs()) pairs.push(p.descriptor)
      expect(pairs).toEqual([x.pair])
      await again.close()
      await x.c.close()
      await sp.close()
      await sc.close()
    } finally {
      await tp.remove()
      await tc.remove()
    }
  })

  it('loses no acknowledged append when the writer is killed with SIGKILL', async () => {
    const t = await tempDir()
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'crash-child.ts'), t.dir], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const acked = new Map<number, string>()
      let stderr = ''
      child.stderr.on('data', (d) => (stderr += String(d)))
      await new Promise<void>((resolve, reject) => {
        let buf = ''
        const timer = setTimeout(() => reject(new Error(`child too slow: ${acked.size} acks; ${stderr}`)), 45_000)
        child.stdout.on('data', (d) => {
          buf += String(d)
          const lines = buf.split('\n')
          buf = lines.pop()!
          for (const line of lines) {
            const [seq, cid] = line.split(' ')
            if (cid !== undefined) acked.set(Number(seq), cid)
          }
          if (acked.size >= 400) {
            clearTimeout(timer)
            child.kill('SIGKILL')
            resolve()
          }
        })
        child.on('exit', () => {
          clearTimeout(timer)
          if (acked.size < 400) reject(new Error(`child exited early: ${stderr}`))
        })
      })
      await new Promise((r) => child.once('exit', r).once('close', r))
      const store = await LevelStore.open(t.dir)
      const log = await PairLog.open(store, { provider: seeded(1).peerId, consumer: seeded(2).peerId }, seeded(1))
      const head = log.heads().provider!
      for (const [seq, cid] of acked) {
        expect(seq).toBeLessThanOrEqual(head.seq)
        expect((await log.getBySeq(log.me, seq))?.cid.toString()).toBe(cid)
      }
      const report = await verifyExport(await exportPairLogBytes(log))
      expect(report.ok).toBe(true)
      expect(report.chains.provider.entries).toBe(head.seq)
      // The log goes on from where it was.
      expect((await log.append('note', {})).entry.seq).toBe(head.seq + 1)
      await log.close()
      await store.close()
    } finally {
      await t.remove()
    }
  })
})

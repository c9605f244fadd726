/**
 * Child process of the disk-fault tests, for faults that need their own
 * process: a file size limit (the parent runs it under `ulimit -f`) or a
 * data directory made unwritable while it runs (without the capabilities
 * that let root ignore permissions). Settles until a write fails and prints
 * one JSON line: the workload result, the consumer's chain, the store's failure.
 *
 * Usage: node --import tsx disk-fault-child.ts '<json: {storeDir, writeBufferSize?, chmodAtRound?}>'
 */
import '@tally/core'
import { chmod } from 'node:fs/promises'
import { PairLog } from '../src/pair-log.ts'
import { LevelStore } from '../src/store-level.ts'
import { MemoryStore } from '../src/store-memory.ts'
import { chainHex, fixturePair, settleUntilFault } from './disk-fault-workload.ts'

const opts = JSON.parse(process.argv[2] ?? '{}') as { storeDir: string; writeBufferSize?: number; chmodAtRound?: number; burst?: number }
const { pair, provider, consumer } = fixturePair()
const store = await LevelStore.open(opts.storeDir, opts.writeBufferSize === undefined ? {} : { writeBufferSize: opts.writeBufferSize })
const p = await PairLog.open(store, pair, provider)
const c = await PairLog.open(new MemoryStore(), pair, consumer)
const result = await settleUntilFault(p, c, {
  burst: opts.burst ?? 32,
  maxRounds: 2_000,
  inject: async (round) => {
    if (round === opts.chmodAtRound) await chmod(opts.storeDir, 0o500)
  },
})
const refused = await store.write({ meta: [{ key: 'after', value: new Uint8Array([1]) }] }).then(
  () => null,
  (err: Error) => err.name,
)
process.stdout.write(`${JSON.stringify({ result, consumer: await chainHex(c), failure: store.failure?.name ?? null, refused })}\n`)
await store.close().catch(() => undefined)

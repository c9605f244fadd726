/**
 * A benchmark host for `pnpm bench net` (scripts/bench/net-pair.ts): one
 * Tally node with a LevelDB and a pair-session service, obeying the driver
 * over the fork IPC channel. Requests `{id, op, args}`, answers
 * `{id, ok, value | error}`.
 */
import '@tally/core'
import { hash } from 'node:crypto'
import { join } from 'node:path'
import { type CID, decode } from '@tally/core'
import { LevelStore, type PairDescriptor, PairLog } from '../../../packages/lineage/src/index.ts'
import { createTallyNode, localNetwork, PairSessions, type TallyNode } from '../../../packages/node/src/index.ts'
import { type BenchOps, serveBenchOps } from '../common.ts'

let node: TallyNode | undefined
let store: LevelStore | undefined
let sessions: PairSessions | undefined
const logs = new Map<string, PairLog>()
let profiler: import('node:inspector/promises').Session | undefined

async function logFor(pair: PairDescriptor): Promise<PairLog> {
  const key = `${pair.provider}/${pair.consumer}`
  let log = logs.get(key)
  if (log === undefined) {
    log = await PairLog.open(store!, pair, node!.identity)
    logs.set(key, log)
  }
  return log
}

function body(i: number) {
  return { deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' }
}

const ops: BenchOps = {
  async init(args) {
    const dir = args['dir'] as string
    store = await LevelStore.open(join(dir, 'db'))
    node = await createTallyNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], network: localNetwork() })
    sessions = new PairSessions({ node, store, logFor, accept: () => true, resume: false })
    await node.register(sessions)
    return { peerId: node.peerId, addr: node.multiaddrs().find((a) => a.startsWith('/ip4/127.0.0.1/')) }
  },

  /** Append `n` entries to `pair` (signed, durable, group-committed) before anyone connects. */
  async fill(args) {
    const log = await logFor(args['pair'] as PairDescriptor)
    const n = args['n'] as number
    for (let i = 0; i < n; i += 2000) await Promise.all(Array.from({ length: Math.min(2000, n - i) }, (_, j) => log.append('usage', body(i + j))))
    return { head: log.heads()[log.role]?.seq ?? 0 }
  },

  /** SHA-256 + DAG-CBOR decode of the entries held for `pair`, entries/s: the floor under any verifier. */
  async hashDecodeRate(args) {
    const log = await logFor(args['pair'] as PairDescriptor)
    const blocks: Uint8Array[] = []
    for await (const { cid } of log.cids(log.role)) blocks.push((await store!.getBlock(cid))!)
    for (let i = 0; i < Math.min(2000, blocks.length); i++) decode(blocks[i]!)
    const t = performance.now()
    for (const b of blocks) {
      hash('sha256', b, 'buffer')
      decode(b)
    }
    return { rate: blocks.length / ((performance.now() - t) / 1000), bytes: blocks.reduce((s, b) => s + b.byteLength, 0) / blocks.length }
  },

  /** The store's durable write of `batch` entries at a time (one LevelDB batch, sync:true), entries/s, in a fresh database. */
  async syncedBatchRate(args) {
    const db = await LevelStore.open(join(args['dir'] as string, 'limit-db'))
    const batch = args['batch'] as number
    const n = args['n'] as number
    const pair = await logFor(args['pair'] as PairDescriptor)
    const blocks: { seq: number; cid: CID; bytes: Uint8Array }[] = []
    for await (const { seq, cid } of pair.cids(pair.role, 1, n)) blocks.push({ seq, cid, bytes: (await store!.getBlock(cid))! })
    try {
      const t = performance.now()
      for (let i = 0; i < blocks.length; i += batch) {
        const part = blocks.slice(i, i + batch)
        const last = part[part.length - 1]!
        await db.write({
          entries: part.map((b) => ({ pair: pair.id, author: pair.me, seq: b.seq, cid: b.cid, bytes: b.bytes })),
          heads: [{ pair: pair.id, author: pair.me, seq: last.seq, cid: last.cid }],
        })
      }
      return { rate: blocks.length / ((performance.now() - t) / 1000) }
    } finally {
      await db.close()
    }
  },

  /** Open the pair session to `addr` and wait until every entry the other side holds is durable here. */
  async catchUp(args) {
    const pair = args['pair'] as PairDescriptor
    await logFor(pair)
    const t = performance.now()
    await sessions!.connect(pair, [args['addr'] as string], { timeoutMs: 10_000 })
    const status = await sessions!.waitForSync(pair, 300_000)
    return { ms: performance.now() - t, status }
  },

  /** Append one entry at a time; time from append to the counterparty's ack (durable there). */
  async live(args) {
    const pair = args['pair'] as PairDescriptor
    const log = await logFor(pair)
    const samples: number[] = []
    const n = args['n'] as number
    const warmup = args['warmup'] as number
    for (let i = 0; i < warmup + n; i++) {
      const t = performance.now()
      const b = await log.append('usage', body(i))
      await sessions!.awaitRemoteDurable(pair, b.cid, 10_000)
      if (i >= warmup) samples.push(performance.now() - t)
    }
    return { samples }
  },

  /** The pair log's own ingest of the entries held here (batches of 512, fresh LevelDB, no network): what catch-up can reach at best. */
  async ingestFloor(args) {
    const pair = args['pair'] as PairDescriptor
    const held = await logFor(pair)
    const other = held.role === 'provider' ? 'consumer' : 'provider'
    const blocks: Uint8Array[] = []
    for await (const { cid } of held.cids(other)) blocks.push((await store!.getBlock(cid))!)
    const fresh = await LevelStore.open(join(args['dir'] as string, 'floor-db'))
    const log = await PairLog.open(fresh, pair, node!.identity)
    try {
      const t = performance.now()
      for (let i = 0; i < blocks.length; i += 512) await log.ingest(blocks.slice(i, i + 512))
      return { rate: blocks.length / ((performance.now() - t) / 1000) }
    } finally {
      await log.close()
      await fresh.close()
    }
  },

  /** CPU time this process has used, ms. */
  async cpu() {
    const u = process.cpuUsage()
    return { ms: (u.user + u.system) / 1000 }
  },

  /** Start or stop a CPU profile of this process (written to `file`), for finding where catch-up time goes. */
  async profile(args) {
    const { Session } = await import('node:inspector/promises')
    const { writeFile } = await import('node:fs/promises')
    profiler ??= new Session()
    if (args['start'] === true) {
      profiler.connect()
      await profiler.post('Profiler.enable')
      await profiler.post('Profiler.start')
      return {}
    }
    const { profile } = await profiler.post('Profiler.stop')
    await writeFile(args['file'] as string, JSON.stringify(profile))
    profiler.disconnect()
    return {}
  },

  async stop() {
    await node?.stop()
    for (const log of logs.values()) await log.close()
    await store?.close()
    setImmediate(() => process.exit(0))
    return {}
  },
}

serveBenchOps(ops)

/**
 * `pnpm bench lineage`: the pair log's write and verify paths, each against
 * the physical limit measured in the same run.
 *
 * - lineage.append.durable: one signed entry at a time, awaited until
 *   durable in LevelDB. Limit: LevelDB put with sync:true, one at a time.
 * - lineage.append.group: concurrent appends sharing durable batches (group
 *   commit); every entry is still signed. Limit: raw Ed25519 sign rate.
 * - lineage.verify: full offline verification (`verifyExport(path)`, as
 *   `tally verify` runs it) of a 100,000-entry export (20,000 with --quick)
 *   in a fresh child process. Limit: SHA-256 + @ipld/dag-cbor decode of the
 *   same blocks, measured in that child after the verification.
 * - lineage.verify.rss_mb: that child's peak resident set (VmHWM), tsx and
 *   module loading included (~105 MB of it before any work).
 */
import '@tally/core'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Identity, signDocument } from '@tally/core'
// By path: the workspace root does not depend on @tally/lineage.
import {
  LevelStore,
  MemoryStore,
  PairLog,
  cosignCheckpoint,
  exportPairLogBytes,
  measureHashDecodeRate,
  measureSyncPutRate,
  proposeCheckpoint,
  verifyExport,
} from '../../packages/lineage/src/index.ts'
import type { BenchResult } from './result.ts'

const here = fileURLToPath(import.meta.url)

function usageBody(i: number) {
  return { deal: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', epoch: i, gpuSeconds: 3600, gpus: 8, cls: 'H100-80G', note: 'metered' }
}

function signRate(n: number): number {
  const id = Identity.generate()
  const payload = new Uint8Array(380).fill(3)
  for (let i = 0; i < 500; i++) id.sign('entry', payload)
  const t = performance.now()
  for (let i = 0; i < n; i++) id.sign('entry', payload)
  return n / ((performance.now() - t) / 1000)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

async function appendDurable(dir: string, n: number): Promise<number> {
  const store = await LevelStore.open(dir)
  const a = Identity.generate()
  const log = await PairLog.open(store, { provider: a.peerId, consumer: Identity.generate().peerId }, a)
  for (let i = 0; i < 50; i++) await log.append('usage', usageBody(i))
  const t = performance.now()
  for (let i = 0; i < n; i++) await log.append('usage', usageBody(i))
  const rate = n / ((performance.now() - t) / 1000)
  await log.close()
  await store.close()
  return rate
}

async function appendGroup(dir: string, n: number, window: number): Promise<{ rate: number; perWrite: number }> {
  const store = await LevelStore.open(dir)
  const a = Identity.generate()
  const log = await PairLog.open(store, { provider: a.peerId, consumer: Identity.generate().peerId }, a)
  await log.ensureOpen()
  const writes0 = store.durableWrites
  const t = performance.now()
  let issued = 0
  const worker = async () => {
    while (issued < n) {
      issued++
      await log.append('usage', usageBody(issued))
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  const rate = n / ((performance.now() - t) / 1000)
  const perWrite = n / Math.max(1, store.durableWrites - writes0)
  await log.close()
  await store.close()
  return { rate, perWrite }
}

/** A realistic two-party log: bursts of usage by the provider, vouchers by the consumer, monitor observations, checkpoints. */
async function buildExport(entries: number): Promise<Uint8Array> {
  const prov = Identity.generate()
  const cons = Identity.generate()
  const monitor = Identity.generate()
  const pair = { provider: prov.peerId, consumer: cons.peerId }
  const p = await PairLog.open(new MemoryStore(), pair, prov)
  const c = await PairLog.open(new MemoryStore(), pair, cons)
  const send = async (from: PairLog, to: PairLog) => {
    const have = to.heads()[from.role]?.seq ?? 0
    const blocks = []
    for await (const b of from.range(from.me, have + 1)) blocks.push(b)
    if (blocks.length > 0) await to.ingest(blocks)
  }
  let i = 0
  let epoch = 0
  const perRound = 100
  while (i < entries - 4) {
    const burst = []
    for (let k = 0; k < 60 && i < entries - 4; k++, i++) {
      const body: Record<string, unknown> = usageBody(i)
      if (i % 200 === 0) body['observation'] = signDocument(monitor, 'observation', { provider: prov.peerId, epoch, up: true, latencyMs: 12 })
      burst.push(p.append('usage', body))
    }
    await Promise.all(burst)
    await send(p, c)
    const vouchers = []
    for (let k = 0; k < perRound - 60 && i < entries - 4; k++, i++) vouchers.push(c.append('voucher', { epoch, cumulative: { amount: 100 * i, asset: 'USD' } }))
    await Promise.all(vouchers)
    await send(c, p)
    epoch++
    if (epoch % 100 === 0 && i < entries - 10) {
      const proposal = await proposeCheckpoint(p, { USD: { paid: 100 * i } })
      await send(p, c)
      await cosignCheckpoint(c, proposal)
      await send(c, p)
      i += 2
    }
  }
  return exportPairLogBytes(p)
}

interface ChildResult {
  entries: number
  seconds: number
  /** The first, cold run (JIT warming up). */
  coldSeconds: number
  maxRssMb: number
  /** SHA-256 + DAG-CBOR decode rate over the same blocks, measured in the child. */
  floor: number
  ok: boolean
}

async function verifyInChild(file: string): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, here], {
    env: { ...process.env, TALLY_BENCH_LINEAGE_VERIFY: file },
    maxBuffer: 1 << 20,
  })
  const line = stdout.trim().split('\n').pop() ?? ''
  return JSON.parse(line) as ChildResult
}

export async function run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tally-bench-lineage-'))
  try {
    const quick = opts.quick
    // Each figure and its limit are measured in alternating rounds (medians), so a
    // noisy disk or a busy CPU weighs on both alike.
    const rounds = 3
    const puts: number[] = []
    const durables: number[] = []
    const signs: number[] = []
    const groups: { rate: number; perWrite: number }[] = []
    for (let r = 0; r < rounds; r++) {
      puts.push(await measureSyncPutRate(join(dir, `raw-${r}`), quick ? 300 : 1000))
      durables.push(await appendDurable(join(dir, `durable-${r}`), quick ? 300 : 1500))
      signs.push(signRate(quick ? 1000 : 5000))
      groups.push(await appendGroup(join(dir, `group-${r}`), quick ? 3000 : 15000, 256))
    }
    const putRate = median(puts)
    const durable = median(durables)
    const sign = median(signs)
    const group = { rate: median(groups.map((g) => g.rate)), perWrite: median(groups.map((g) => g.perWrite)) }
    const entries = quick ? 20_000 : 100_000
    const car = await buildExport(entries)
    const file = join(dir, 'export.car')
    await writeFile(file, car)
    const child = await verifyInChild(file)
    if (!child.ok) throw new Error('the benchmark export did not verify')
    if (!opts.json) {
      process.stderr.write(
        `  group commit: ${group.perWrite.toFixed(0)} entries per durable write; export ${car.byteLength} bytes, ${child.entries} entries; first (cold) verify ${(child.entries / child.coldSeconds).toFixed(0)} entries/s\n`,
      )
    }
    return [
      {
        name: 'lineage.append.durable',
        value: durable,
        unit: 'entries/s',
        limit: { name: 'LevelDB sync put', value: putRate, unit: 'entries/s' },
        target: { op: '>=', value: 5000 },
      },
      {
        name: 'lineage.append.group',
        value: group.rate,
        unit: 'entries/s',
        limit: { name: 'Ed25519 sign', value: sign, unit: 'entries/s' },
        target: { op: '>=', value: 15000 },
      },
      {
        name: 'lineage.verify',
        value: child.entries / child.seconds,
        unit: 'entries/s',
        limit: { name: 'SHA-256 + DAG-CBOR decode', value: child.floor, unit: 'entries/s' },
        target: { op: '>=', value: 50000 },
      },
      { name: 'lineage.verify.rss_mb', value: child.maxRssMb, unit: 'MB', limit: { name: 'target', value: 200, unit: 'MB' }, target: { op: '<=', value: 200 } },
    ]
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * Peak RSS of this process in MB. getrusage's maxRSS is no good in a child:
 * Linux carries the parent's high-water mark over fork+exec, and the parent
 * here holds the whole 100,000-entry log. VmHWM is the current address
 * space's own peak.
 */
function peakRssMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))
    if (m !== null) return Number(m[1]) / 1024
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS / 1024
}

// Child mode: verify one export and report time and peak RSS on stdout.
const childFile = process.env['TALLY_BENCH_LINEAGE_VERIFY']
if (childFile !== undefined && process.argv[1] === here) {
  // A first run warms the JIT (the floor below is measured warm too); the second is timed.
  let t = performance.now()
  await verifyExport(childFile)
  const coldSeconds = (performance.now() - t) / 1000
  t = performance.now()
  const report = await verifyExport(childFile)
  const seconds = (performance.now() - t) / 1000
  const entries = report.chains.provider.entries + report.chains.consumer.entries
  const maxRssMb = peakRssMb()
  // The floor in the same process, after the peak is taken (it holds the whole file).
  const floor = measureHashDecodeRate(new Uint8Array(readFileSync(childFile)))
  process.stdout.write(`${JSON.stringify({ entries, seconds, coldSeconds, maxRssMb, floor, ok: report.ok })}\n`)
}

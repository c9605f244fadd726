/**
 * `pnpm bench net`: pair sessions over /tally/pair/1.0.0 between two
 * processes (scripts/bench/net/pair-host.ts), each with its own LevelDB.
 *
 * - net.catchup: the provider holds N signed entries; the consumer (empty
 *   store) dials, and the clock runs until every entry is verified and
 *   durable in its LevelDB (dial and handshake included). Limit, measured
 *   in the same run: the lower of SHA-256 + DAG-CBOR decode of the same
 *   entries (the floor of any verifier) and LevelDB synced batches of 512
 *   entries (the floor of durable storage).
 * - net.live.p50 / p99: on the warm session, one entry from append on the
 *   provider (durable there) until the consumer's ack arrives (sent only
 *   after the entry is durable in the consumer's LevelDB). Limit: a raw
 *   node:net TCP round trip on loopback, measured in the same run.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchHost, percentile, tcpRoundTrips } from './common.ts'
import type { BenchResult } from './result.ts'

const HOST = join(dirname(fileURLToPath(import.meta.url)), 'net', 'pair-host.ts')

export async function run(opts: { json: boolean; quick: boolean }): Promise<BenchResult[]> {
  const entries = opts.quick ? 10_000 : 40_000
  const liveN = opts.quick ? 300 : 2_000
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`  ${s}\n`)
  }
  const dir = await mkdtemp(join(tmpdir(), 'tally-bench-pair-'))
  const provider = new BenchHost(HOST, 'pair')
  const consumer = new BenchHost(HOST, 'pair')
  try {
    await Promise.all([provider.ready, consumer.ready])
    const p = await provider.call<{ peerId: string; addr: string }>('init', { dir: join(dir, 'provider') })
    const c = await consumer.call<{ peerId: string; addr: string }>('init', { dir: join(dir, 'consumer') })
    const pair = { provider: p.peerId, consumer: c.peerId }
    const t = performance.now()
    await provider.call('fill', { pair, n: entries })
    log(`${entries} entries signed and stored by the provider in ${((performance.now() - t) / 1000).toFixed(1)} s`)

    const hashDecode = await provider.call<{ rate: number; bytes: number }>('hashDecodeRate', { pair })
    const synced = await provider.call<{ rate: number }>('syncedBatchRate', { dir: join(dir, 'provider'), pair, batch: 512, n: Math.min(entries, 20_480) })
    log(
      `entries of ${hashDecode.bytes.toFixed(0)} B; SHA-256 + decode ${hashDecode.rate.toFixed(0)}/s; LevelDB synced batches of 512: ${synced.rate.toFixed(0)} entries/s`,
    )

    const profileDir = process.env['TALLY_BENCH_PROFILE']
    if (profileDir !== undefined) await Promise.all([provider.call('profile', { start: true }), consumer.call('profile', { start: true })])
    const cpu0 = await Promise.all([provider.call<{ ms: number }>('cpu'), consumer.call<{ ms: number }>('cpu')])
    const caught = await consumer.call<{ ms: number; status: { local: { provider: number }; counters: Record<string, number> } }>('catchUp', {
      pair,
      addr: p.addr,
    })
    if (caught.status.local.provider !== entries + 1) throw new Error(`catch-up ended with ${caught.status.local.provider} of ${entries + 1} entries`)
    const catchupRate = (entries + 1) / (caught.ms / 1000)
    const cpu1 = await Promise.all([provider.call<{ ms: number }>('cpu'), consumer.call<{ ms: number }>('cpu')])
    if (profileDir !== undefined) {
      await provider.call('profile', { file: join(profileDir, 'catchup-sender.cpuprofile') })
      await consumer.call('profile', { file: join(profileDir, 'catchup-receiver.cpuprofile') })
    }
    log(
      `catch-up: ${caught.ms.toFixed(0)} ms, ${caught.status.counters['framesIn']} frames; CPU sender ${(cpu1[0].ms - cpu0[0].ms).toFixed(0)} ms, receiver ${(cpu1[1].ms - cpu0[1].ms).toFixed(0)} ms`,
    )

    const floor = await consumer.call<{ rate: number }>('ingestFloor', { pair, dir: join(dir, 'consumer') })
    log(
      `receiver CPU ${(((cpu1[1].ms - cpu0[1].ms) * 1000) / (entries + 1)).toFixed(0)} µs/entry, sender ${(((cpu1[0].ms - cpu0[0].ms) * 1000) / (entries + 1)).toFixed(0)} µs/entry; lineage ingest alone (same entries, no network): ${floor.rate.toFixed(0)} entries/s`,
    )

    const live = await provider.call<{ samples: number[] }>('live', { pair, n: liveN, warmup: 50 })
    const tcp = await tcpRoundTrips(opts.quick ? 500 : 2_000)
    log(
      `live: p50 ${percentile(live.samples, 50).toFixed(3)} ms, p90 ${percentile(live.samples, 90).toFixed(3)} ms, max ${Math.max(...live.samples).toFixed(1)} ms`,
    )
    log(
      `load average at the end: ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} (${cpus().length} cores)`,
    )

    const limit =
      hashDecode.rate <= synced.rate
        ? { name: 'SHA-256 + DAG-CBOR decode of the same entries', value: hashDecode.rate, unit: 'entries/s' }
        : { name: 'LevelDB synced batches of 512 entries', value: synced.rate, unit: 'entries/s' }
    const tcpP50 = percentile(tcp, 50)
    const tcpP99 = percentile(tcp, 99)
    return [
      { name: 'net.catchup', value: catchupRate, unit: 'entries/s', limit, target: { op: '>=', value: 20_000 } },
      {
        name: 'net.live.p50',
        value: percentile(live.samples, 50),
        unit: 'ms',
        limit: { name: 'node:net TCP round trip on loopback, p50', value: tcpP50, unit: 'ms' },
        target: { op: '<=', value: 2 },
      },
      {
        name: 'net.live.p99',
        value: percentile(live.samples, 99),
        unit: 'ms',
        limit: { name: 'node:net TCP round trip on loopback, p99', value: tcpP99, unit: 'ms' },
        target: { op: '<=', value: 10 },
      },
    ]
  } finally {
    const grace = new Promise((resolve) => setTimeout(resolve, 15_000).unref())
    await Promise.race([Promise.allSettled([provider, consumer].map((h) => (h.child.exitCode === null ? h.call('stop') : undefined))), grace])
    for (const h of [provider, consumer]) if (h.child.exitCode === null) h.child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
}

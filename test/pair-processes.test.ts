/**
 * A provider and a consumer as separate processes (packages/node/src/bin/
 * pair-peer.ts), knowing only a seed's address: the consumer finds the
 * provider by capability, opens the pair session, and the pair log stays
 * identical across SIGKILL and restart of either side. Nothing either side
 * saw acknowledged is lost. The LevelDBs are compared at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { LevelStore, type PairDescriptor, pairIdOf } from '../packages/lineage/src/index.ts'
import { localNetwork } from '../packages/node/src/index.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const BIN = join(import.meta.dirname, '..', 'packages', 'node', 'src', 'bin')
const children = new Set<ChildProcess>()

interface Line {
  type: string
  [k: string]: unknown
}

/** One process of the real entry point, answering commands in order. */
class Proc {
  readonly child: ChildProcess
  readonly ready: Promise<Line>
  readonly #waiters: ((line: Line) => void)[] = []
  #stderr = ''

  constructor(entry: string, config: string) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(BIN, entry), config], { stdio: ['pipe', 'pipe', 'pipe'] })
    children.add(this.child)
    this.child.stderr?.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-4000)
    })
    const lines = createInterface({ input: this.child.stdout! })
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${entry} not ready in 45 s: ${this.#stderr}`)), 45_000)
      this.child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${entry} exited (${code ?? signal}) before ready: ${this.#stderr}`))
      })
      lines.on('line', (text) => {
        const line = JSON.parse(text) as Line
        if (line.type === 'ready' || 'peerId' in line) {
          clearTimeout(timer)
          return resolve(line)
        }
        this.#waiters.shift()?.(line)
      })
    })
    this.ready.catch(() => undefined)
  }

  /** Send one command and wait for its answer (bounded). */
  command(text: string, timeoutMs = 40_000): Promise<Line> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to "${text}" in ${timeoutMs} ms: ${this.#stderr}`)), timeoutMs)
      this.#waiters.push((line) => {
        clearTimeout(timer)
        if (line.type === 'error') reject(new Error(`"${text}" failed: ${line['code']}: ${line['message']}`))
        else resolve(line)
      })
      this.child.stdin!.write(`${text}\n`)
    })
  }

  kill(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve()
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill(signal)
    return done
  }
}

async function chains(dir: string, pair: PairDescriptor) {
  const store = await LevelStore.open(join(dir, 'db'))
  try {
    const id = pairIdOf(pair)
    const list = async (author: string) => {
      const out: string[] = []
      for await (const { cid } of store.cids(id, author, 1, Number.MAX_SAFE_INTEGER)) out.push(cid.toString())
      return out
    }
    const head = async (author: string) => (await store.getHead(id, author))?.cid.toString() ?? null
    return { provider: await list(pair.provider), consumer: await list(pair.consumer), heads: [await head(pair.provider), await head(pair.consumer)] }
  } finally {
    await store.close()
  }
}

describe('pair sessions between processes, across SIGKILL and restart', () => {
  let dir: string
  const net = localNetwork()
  const limits = { backoffInitialMs: 100, backoffMaxMs: 1_000, keepaliveMs: 2_000, idleTimeoutMs: 6_000 }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-pair-proc-'))
  })

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await Promise.all([...children].map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))))
    await rm(dir, { recursive: true, force: true })
  })

  it('finds the provider by capability and keeps the pair log identical', async () => {
    const seedConfig = join(dir, 'seed.json')
    await writeFile(seedConfig, JSON.stringify({ dataDir: 'seed', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], network: net }))
    const seed = await new Proc('tally-node.ts', seedConfig).ready
    const bootstrap = [(seed['multiaddrs'] as string[]).find((a) => a.startsWith('/ip4/127.0.0.1/'))!]

    const base = { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, network: net, limits }
    const providerConfig = join(dir, 'provider.json')
    await writeFile(
      providerConfig,
      JSON.stringify({ ...base, dataDir: 'provider', role: 'provider', offer: { hardwareClass: 'gpu.h100', jurisdiction: 'DE' } }),
    )
    const consumerConfig = join(dir, 'consumer.json')
    await writeFile(consumerConfig, JSON.stringify({ ...base, dataDir: 'consumer', role: 'consumer', find: { hardwareClass: 'gpu.h100', jurisdiction: 'DE' } }))

    let provider = new Proc('pair-peer.ts', providerConfig)
    const pReady = await provider.ready
    let consumer = new Proc('pair-peer.ts', consumerConfig)
    const cReady = await consumer.ready
    const pair = (cReady['pairs'] as PairDescriptor[])[0]!
    expect(pair).toEqual({ provider: pReady['peerId'], consumer: cReady['peerId'] })

    // Live replication both ways.
    await provider.command('append 40')
    await consumer.command('append 25')
    const [ps, cs] = await Promise.all([provider.command('sync'), consumer.command('sync')])
    expect(ps['heads']).toEqual(cs['heads'])

    // The consumer acknowledged these durable, then dies without warning.
    const ackedByConsumer = (await provider.command('append-acked 10'))['cids'] as string[]
    await consumer.kill('SIGKILL')
    await provider.command('append 15')
    consumer = new Proc('pair-peer.ts', consumerConfig)
    expect((await consumer.ready)['pairs']).toEqual([pair])
    const [ps2, cs2] = await Promise.all([provider.command('sync'), consumer.command('sync')])
    expect(ps2['heads']).toEqual(cs2['heads'])

    // The provider acknowledged these, then dies in the middle of a burst of appends.
    const ackedByProvider = (await consumer.command('append-acked 10'))['cids'] as string[]
    provider.child.stdin!.write('append 300\n')
    await new Promise((r) => setTimeout(r, 30))
    await provider.kill('SIGKILL')
    await consumer.command('append 20')
    provider = new Proc('pair-peer.ts', providerConfig)
    await provider.ready
    const [ps3, cs3] = await Promise.all([provider.command('sync'), consumer.command('sync')])
    expect(ps3['heads']).toEqual(cs3['heads'])

    await Promise.all([provider.kill('SIGTERM'), consumer.kill('SIGTERM')])
    const p = await chains(join(dir, 'provider'), pair)
    const c = await chains(join(dir, 'consumer'), pair)
    expect(c).toEqual(p)
    expect(p.consumer).toHaveLength(1 + 25 + 10 + 20)
    expect(p.provider.length).toBeGreaterThanOrEqual(1 + 40 + 10 + 15)
    for (const cid of ackedByConsumer) expect(c.provider).toContain(cid)
    for (const cid of ackedByProvider) expect(p.consumer).toContain(cid)
  }, 150_000)
})

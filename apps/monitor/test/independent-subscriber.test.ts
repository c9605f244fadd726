/**
 * A third party's view: a plain js-libp2p + gossipsub node that imports
 * none of Tally's packages (only libp2p, @libp2p/*, @ipld/dag-cbor,
 * multiformats and node:crypto) follows docs/PROTOCOL.md to find the
 * topic of a provider's observations, receives what a real tally-monitor
 * process publishes, and verifies each signature on its own.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, createPublicKey, verify } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import * as dagCbor from '@ipld/dag-cbor'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// Node 20 lacks Promise.withResolvers, which libp2p 3 calls.
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.assign(Promise, {
    withResolvers<T>() {
      let resolve!: (v: T) => void
      let reject!: (e: unknown) => void
      const promise = new Promise<T>((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    },
  })
}

const ROOT = join(import.meta.dirname, '..', '..', '..')
const MONITOR = join(ROOT, 'apps', 'monitor', 'src', 'main.ts')
const PROVIDER = join(import.meta.dirname, 'fixtures', 'probe-provider.ts')

// ---- docs/PROTOCOL.md, "Observations on gossip", implemented from the text ----

/** `/tally/obs/1/<shard>`, shard = first two bytes of sha256(utf8(provider id)), big-endian, mod 16. */
function topicOf(provider: string, shards = 16): string {
  const d = createHash('sha256').update(provider, 'utf8').digest()
  return `/tally/obs/1/${((d[0]! << 8) | d[1]!) % shards}`
}

interface ObservationDoc {
  type: string
  by: string
  body: {
    subject: string
    seq: number
    window: { start: number; end: number }
    samples: { sent: number; ok: number }
    availabilityBp: number
    latencyUs: { p50: number; p95: number; p99: number } | null
    challenges: { kind: 'identity' | 'compute'; ok: boolean; durationMs: number; detail?: string }[]
    credential?: unknown
    issuedAt: number
  }
  sig: Uint8Array
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

/** Ed25519 over utf8("tally/v1/doc/" + type) ‖ 0x00 ‖ dagcbor({type, by, body}), key = the raw key inside the `by` peer id. */
function signatureValid(doc: ObservationDoc): boolean {
  const payload = dagCbor.encode({ type: doc.type, by: doc.by, body: doc.body })
  const signed = Buffer.concat([Buffer.from(`tally/v1/doc/${doc.type}\0`, 'utf8'), payload])
  const raw = peerIdFromString(doc.by).publicKey?.raw
  if (raw === undefined) return false
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' })
  return verify(null, signed, key, doc.sig)
}

// ---- processes -------------------------------------------------------------

interface Ready {
  peerId: string
  multiaddrs: string[]
}

interface Proc {
  child: ChildProcess
  ready: Ready
  stderr: string[]
}

const children: ChildProcess[] = []

function start(entry: string, args: string[]): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const stderr: string[] = []
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} not ready in 30 s: ${stderr.join('\n')}`)), 30_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${entry} exited with ${code}: ${stderr.join('\n')}`))
    })
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer)
      child.removeAllListeners('exit')
      resolve({ child, ready: JSON.parse(line) as Ready, stderr })
    })
  })
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

async function waitFor(check: () => boolean, ms = 20_000): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until && !check()) await new Promise((r) => setTimeout(r, 50))
  return check()
}

const loopback = (p: Ready) => p.multiaddrs.find((a) => a.startsWith('/ip4/127.0.0.1/'))!

describe('an independent subscriber follows a tally-monitor process', () => {
  let dir: string
  let provider: Proc
  let subscriber: Libp2p
  let configFile: string
  const received: { from: string; doc: ObservationDoc; valid: boolean }[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-indep-'))
    provider = await start(PROVIDER, [])
    configFile = join(dir, 'monitor.yaml')
    await writeFile(
      configFile,
      [
        'dataDir: monitor-data',
        'listen: [/ip4/127.0.0.1/tcp/0]',
        'network: { allowPrivateAddresses: true, allowList: [/ip4/127.0.0.0/ipcidr/8], gossipIpColocationWhitelist: [127.0.0.0/8] }',
        'watch:',
        '  providers:',
        `    - { peer: ${provider.ready.peerId}, addrs: [${loopback(provider.ready)}], hardwareClass: cpu.x86-64 }`,
        'probe: { intervalMs: 200, timeoutMs: 2000 }',
        'window: { lengthMs: 1000 }',
        'compute: { everyWindows: 10, n: 32 }',
        '',
      ].join('\n'),
    )
    subscriber = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) },
    })
    const pubsub = subscriber.services.pubsub as ReturnType<ReturnType<typeof gossipsub>>
    pubsub.addEventListener('message', (evt) => {
      const msg = evt.detail
      if (msg.topic !== topicOf(provider.ready.peerId) || msg.type !== 'signed') return
      const doc = dagCbor.decode(msg.data) as ObservationDoc
      received.push({ from: msg.from.toString(), doc, valid: doc.type === 'observation' && signatureValid(doc) })
    })
    pubsub.subscribe(topicOf(provider.ready.peerId))
  })

  afterAll(async () => {
    await subscriber?.stop()
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('receives observations it can verify with node:crypto alone', async () => {
    const monitor = await start(MONITOR, [configFile])
    await subscriber.dial(multiaddr(loopback(monitor.ready)))
    expect(await waitFor(() => received.filter((r) => r.valid).length >= 2)).toBe(true)
    for (const { from, doc, valid } of received) {
      expect(valid).toBe(true)
      expect(from).toBe(monitor.ready.peerId)
      expect(doc.by).toBe(monitor.ready.peerId)
      const b = doc.body
      expect(b.subject).toBe(provider.ready.peerId)
      expect(b.window.end).toBeGreaterThan(b.window.start)
      expect(b.issuedAt).toBeGreaterThanOrEqual(b.window.end)
      expect(b.availabilityBp).toBe(Math.floor((b.samples.ok * 10_000) / b.samples.sent))
      expect(b.samples.ok).toBeGreaterThan(0)
      expect(b.latencyUs!.p50).toBeLessThanOrEqual(b.latencyUs!.p99)
      expect(b.challenges.some((c) => c.kind === 'identity' && c.ok)).toBe(true)
    }
    const seqs = received.map((r) => r.doc.body.seq)
    expect(new Set(seqs).size).toBe(seqs.length)

    // A tampered copy fails the same check.
    const first = received[0]!.doc
    expect(signatureValid({ ...first, body: { ...first.body, availabilityBp: 10_000 - first.body.availabilityBp + 1 } })).toBe(false)

    // Graceful stop; its log is one JSON object per line.
    monitor.child.kill('SIGTERM')
    expect(await exited(monitor.child)).toBe(0)
    const events = monitor.stderr.map((l) => JSON.parse(l) as { event: string })
    expect(events.map((e) => e.event)).toEqual(
      expect.arrayContaining(['monitor-started', 'target-added', 'observation-published', 'stopping', 'monitor-stopped']),
    )
  })

  it('never reuses a seq after a restart', async () => {
    const before = Math.max(...received.map((r) => r.doc.body.seq))
    const count = received.length
    const monitor = await start(MONITOR, [configFile])
    await subscriber.dial(multiaddr(loopback(monitor.ready)))
    expect(await waitFor(() => received.length >= count + 2)).toBe(true)
    for (const r of received.slice(count)) {
      expect(r.valid).toBe(true)
      expect(r.doc.body.seq).toBeGreaterThan(before)
    }
    monitor.child.kill('SIGTERM')
    expect(await exited(monitor.child)).toBe(0)
    provider.child.kill('SIGTERM')
    expect(await exited(provider.child)).toBe(0)
  })
})

import { mkdtemp, rm } from 'node:fs/promises'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity, issueCredential } from '@tally/core'
import { signObservation } from '@tally/deal'
import { LevelStore } from '@tally/lineage'
import {
  createTallyNode,
  localNetwork,
  multiaddr,
  type NodeConfig,
  ObservationIntake,
  observationTopic,
  ProbeResponder,
  type ProbeSample,
  signOffer,
  type TallyNode,
  WarrantGossip,
} from '@tally/node'
import { encode } from '@tally/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Monitor, type MonitorSettings, monitorSettingsSchema, parseMonitorConfig, SEQ_BLOCK, SeqAllocator, WindowSamples, windowAt } from '../src/index.ts'

const loopback = (overrides: Partial<NodeConfig> = {}) =>
  createTallyNode({
    identity: Identity.generate(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    network: localNetwork(),
    bootTimeoutMs: 5_000,
    ...overrides,
  })
const addr = (n: TallyNode) => n.multiaddrs().find((a) => a.startsWith('/ip4/127.0.0.1/'))!

async function waitFor(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return check()
}

function sample(over: Partial<ProbeSample>): ProbeSample {
  return { peer: 'p', at: 0, reachable: true, rttUs: 500, identity: { ok: true, durationMs: 2 }, compute: null, ...over }
}

describe('monitor config', () => {
  it('splits node configuration from monitor settings and resolves paths', () => {
    const provider = Identity.generate().peerId
    const c = parseMonitorConfig(
      { dataDir: 'data', listen: ['/ip4/127.0.0.1/tcp/0'], watch: { providers: [{ peer: provider }] }, credential: 'cred.cbor' },
      '/etc/tally',
    )
    expect(c.node).toEqual({ dataDir: '/etc/tally/data', listen: ['/ip4/127.0.0.1/tcp/0'] })
    expect(c.credentialFile).toBe('/etc/tally/cred.cbor')
    expect(c.settings).toMatchObject({ probe: { intervalMs: 1_000, identity: true }, window: { lengthMs: 10_000 }, compute: { everyWindows: 6, n: 128 } })
  })

  it('refuses a config with nothing to watch, a bad peer id, or a compute schedule providers would refuse', () => {
    const base = { dataDir: 'd' }
    expect(() => parseMonitorConfig({ ...base, watch: {} }, '/')).toThrow(expect.objectContaining({ name: 'SchemaError' }))
    expect(() => parseMonitorConfig({ ...base, watch: { providers: [{ peer: 'nope' }] } }, '/')).toThrow(expect.objectContaining({ name: 'SchemaError' }))
    const watch = { query: { hardwareClass: 'gpu.h100' } }
    expect(() => parseMonitorConfig({ ...base, watch, window: { lengthMs: 1_000 }, compute: { everyWindows: 2 } }, '/')).toThrow(/compute/)
    expect(() => parseMonitorConfig({ watch }, '/')).toThrow(/dataDir/)
  })
})

describe('window aggregation', () => {
  it('aligns windows to multiples of their length', () => {
    expect(windowAt(12_345, 10_000)).toEqual({ start: 10_000, end: 20_000 })
  })

  it('folds samples into a valid observation body', () => {
    const subject = Identity.generate().peerId
    const ws = new WindowSamples(subject, { start: 0, end: 10_000 })
    for (let i = 1; i <= 100; i++) ws.add(sample({ rttUs: i * 10 }))
    ws.add(sample({ reachable: false, rttUs: null, identity: null, error: 'timeout' }))
    ws.add(sample({ identity: { ok: false, durationMs: 3, error: 'IdentityProofError: wrong key' } }))
    ws.setCompute({ ok: true, correct: true, n: 64, measuredMs: 12, reportedMs: 10, solver: 'cpu', judgement: { ok: true, maxMs: 251, reason: 'fits' } })
    const body = ws.body(7, 10_050, null)!
    expect(body).toMatchObject({
      seq: 7,
      samples: { sent: 102, ok: 100 },
      availabilityBp: 9_803,
      latencyUs: { p50: 500, p95: 950, p99: 990 },
      issuedAt: 10_050,
    })
    expect(body.challenges).toEqual([
      { kind: 'identity', ok: false, durationMs: 2, detail: '100/101 verified; IdentityProofError: wrong key' },
      expect.objectContaining({ kind: 'compute', ok: true, durationMs: 12 }),
    ])
    // the deal package's schema accepts it
    expect(() => signObservation(Identity.generate(), body)).not.toThrow()
    expect(new WindowSamples(subject, { start: 0, end: 1 }).body(1, 1, null)).toBeNull()
  })

  it('reports no latency when nothing answered', () => {
    const ws = new WindowSamples(Identity.generate().peerId, { start: 0, end: 10_000 })
    ws.add(sample({ reachable: false, rttUs: null, identity: null }))
    const body = ws.body(1, 10_000, null)!
    expect(body).toMatchObject({ availabilityBp: 0, latencyUs: null, samples: { sent: 1, ok: 0 } })
    expect(() => signObservation(Identity.generate(), body)).not.toThrow()
  })
})

describe('seq allocation', () => {
  it('never hands out a seq twice across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tally-seq-'))
    try {
      let store = await LevelStore.open(dir)
      let seqs = await SeqAllocator.open(store)
      const first = [await seqs.next(), await seqs.next(), await seqs.next()]
      expect(first).toEqual([1, 2, 3])
      await store.close()
      store = await LevelStore.open(dir)
      seqs = await SeqAllocator.open(store)
      const next = await seqs.next()
      expect(next).toBe(SEQ_BLOCK + 1)
      const many = await Promise.all(Array.from({ length: 2 * SEQ_BLOCK }, () => seqs.next()))
      expect(new Set(many).size).toBe(2 * SEQ_BLOCK)
      expect(Math.min(...many)).toBeGreaterThan(next)
      await store.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('Monitor in-process', () => {
  let dir: string
  let provider: TallyNode
  let party: TallyNode
  let monitorNode: TallyNode
  let monitorStore: LevelStore
  let partyStore: LevelStore
  let monitor: Monitor
  let intake: ObservationIntake
  let partyWarrants: WarrantGossip

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-monitor-'))
    ;[provider, party, monitorNode] = await Promise.all([loopback(), loopback(), loopback()])
    await provider.register(new ProbeResponder(provider.libp2p, { identity: provider.identity, log: provider.log.newScope('probe') }))
    partyStore = await LevelStore.open(join(dir, 'party'))
    intake = new ObservationIntake({ gossip: party.gossip, store: partyStore, log: party.log.newScope('intake') })
    partyWarrants = new WarrantGossip({ gossip: party.gossip, identity: party.identity, log: party.log.newScope('warrant') })
    await party.register(intake)
    await party.register(partyWarrants)
    await intake.watch('deal', provider.peerId, [monitorNode.peerId])
    await party.libp2p.dial(multiaddr(addr(monitorNode)))

    monitorStore = await LevelStore.open(join(dir, 'monitor'))
    const settings: MonitorSettings = monitorSettingsSchema.parse({
      watch: { providers: [{ peer: provider.peerId, addrs: [addr(provider)], hardwareClass: 'cpu.x86-64' }] },
      probe: { intervalMs: 200, timeoutMs: 2_000 },
      window: { lengthMs: 1_000 },
      compute: { everyWindows: 10, n: 32 },
    })
    const credential = issueCredential(monitorNode.identity, {
      subject: monitorNode.peerId,
      roles: ['monitor'],
      jurisdiction: 'DE',
      scope: {},
      notBefore: Date.now() - 1_000,
      notAfter: Date.now() + 3_600_000,
    })
    monitor = await Monitor.create({ node: monitorNode, store: monitorStore, settings, credential })
    await monitor.start()
  })

  afterAll(async () => {
    await monitor?.stop()
    await stopAll([provider, party, monitorNode])
    await monitorStore?.close()
    await partyStore?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('publishes signed observations of a live provider that a party stores as counted evidence', async () => {
    expect(await waitFor(() => intake.counters.stored >= 2)).toBe(true)
    const got = await intake.observationsFor({ subject: provider.peerId, monitors: [monitor.peerId], from: 0, to: Date.now() + 1 })
    expect(got.length).toBeGreaterThanOrEqual(2)
    const o = got.at(-1)!
    expect(o.by).toBe(monitor.peerId)
    expect(o.body.subject).toBe(provider.peerId)
    expect(o.body.samples.sent).toBeGreaterThan(0)
    expect(o.body.credential?.toString()).toBe(monitor.credentialCid?.toString())
    expect(o.body.challenges.find((c) => c.kind === 'identity')?.ok).toBe(true)
    expect(got.some((x) => x.body.challenges.some((c) => c.kind === 'compute' && c.ok))).toBe(true)
    // seqs strictly increase in publication order
    const seqs = got.map((x) => x.body.seq)
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
    expect(monitor.counters.observationsPublished).toBeGreaterThanOrEqual(2)
    expect(monitor.counters.probes).toBeGreaterThan(0)
    expect(monitor.counters.computeChallenges).toBeGreaterThanOrEqual(1)
  })

  it('keeps probing a live provider on schedule while another never answers', async () => {
    // A listener that accepts and never speaks: each probe of it hangs for the whole 2 s timeout.
    const held: Socket[] = []
    const silent = createServer((socket) => void held.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const ghost = Identity.generate().peerId
    try {
      monitor.watch({ peer: ghost, addrs: [`/ip4/127.0.0.1/tcp/${(silent.address() as AddressInfo).port}/p2p/${ghost}`] })
      const since = Date.now() + 1_000
      let sent = 0
      expect(
        await waitFor(async () => {
          const got = await intake.observationsFor({ subject: provider.peerId, monitors: [monitor.peerId], from: since, to: Date.now() + 1 })
          sent = got.find((o) => o.body.window.start >= since)?.body.samples.sent ?? 0
          return sent > 0
        }),
      ).toBe(true)
      // 200 ms probes in a 1 s window; waiting on the silent one would leave at most one.
      expect(sent).toBeGreaterThanOrEqual(3)
    } finally {
      for (const socket of held) socket.destroy()
      silent.close()
    }
  })

  it('sees the provider go down', async () => {
    await provider.stop()
    const since = Date.now()
    expect(
      await waitFor(async () => {
        const got = await intake.observationsFor({ subject: provider.peerId, monitors: [monitor.peerId], from: since, to: Date.now() + 1 })
        return got.some((o) => o.body.availabilityBp === 0 && o.body.latencyUs === null)
      }),
    ).toBe(true)
    expect(monitor.counters.probeFailures).toBeGreaterThan(0)
  })

  it('issues a warrant when a monitor it hears signs two observations with one seq', async () => {
    const rogue = await loopback()
    try {
      const topic = observationTopic(provider.peerId)
      rogue.gossip.subscribe(topic, () => {})
      await rogue.libp2p.dial(multiaddr(addr(monitorNode)))
      expect(await waitFor(() => monitorNode.gossip.meshPeers(topic).includes(rogue.peerId))).toBe(true)
      const now = Date.now()
      const body = {
        subject: provider.peerId,
        seq: 9,
        window: { start: now - 10_000, end: now },
        samples: { sent: 10, ok: 10 },
        availabilityBp: 10_000,
        latencyUs: { p50: 1, p95: 2, p99: 3 },
        challenges: [],
        issuedAt: now,
      }
      await rogue.gossip.pubsub.publish(topic, encode(signObservation(rogue.identity, body)))
      await rogue.gossip.pubsub.publish(
        topic,
        encode(signObservation(rogue.identity, { ...body, samples: { sent: 10, ok: 0 }, availabilityBp: 0, latencyUs: null })),
      )
      expect(await waitFor(() => monitor.counters.warrantsIssued === 1)).toBe(true)
      expect(monitor.warrants.registry.standing(rogue.peerId)).toBeDefined()
      expect(monitor.counters.observationsDropped).toBeGreaterThan(0)
      // the party, one hop further, learns of it over the warrant topic
      expect(await waitFor(() => partyWarrants.registry.standing(rogue.peerId) !== undefined)).toBe(true)
    } finally {
      await rogue.stop()
    }
  })

  it('finds providers by capability in the DHT', async () => {
    const seed = await loopback()
    const bootstrap = [addr(seed)]
    const found = await loopback({ bootstrap })
    const watcher = await loopback({ bootstrap })
    const store = await LevelStore.open(join(dir, 'watcher'))
    let m: Monitor | undefined
    try {
      const now = Date.now()
      const cred = issueCredential(found.identity, {
        subject: found.peerId,
        roles: ['provider'],
        jurisdiction: 'DE',
        scope: {},
        notBefore: now - 1_000,
        notAfter: now + 3_600_000,
      })
      await found.discovery.announce(
        signOffer(found.identity, {
          provider: found.peerId,
          hardware: { class: 'gpu.testclass', count: 1, attestationSource: 'declared' },
          jurisdiction: 'DE',
          price: { perEpoch: { amount: 1, asset: 'USD' }, epochMs: 60_000 },
          sla: { availabilityBp: 9_000, latencyP95Us: 5_000 },
          monitors: [],
          arbiters: [],
          rails: ['ledger'],
          credentials: [cred],
          validUntil: now + 3_600_000,
          addresses: found.multiaddrs(),
        }),
      )
      const settings = monitorSettingsSchema.parse({ watch: { query: { hardwareClass: 'gpu.testclass', refreshMs: 60_000 } }, compute: { everyWindows: 0 } })
      m = await Monitor.create({ node: watcher, store, settings })
      await m.start()
      expect(await waitFor(() => m!.targets().some((t) => t.peer === found.peerId && t.source === 'dht' && t.hardwareClass === 'gpu.testclass'))).toBe(true)
      expect(m.counters.discoveryRuns).toBeGreaterThanOrEqual(1)
    } finally {
      await m?.stop()
      await stopAll([seed, found, watcher])
      await store.close()
    }
  })
})

async function stopAll(nodes: (TallyNode | undefined)[]): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n?.stop()))
}

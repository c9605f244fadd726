import { decode, encode, Identity } from '@tally/core'
import { signObservation } from '@tally/deal'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_GOSSIP_RATE_BURST,
  DEFAULT_GOSSIP_RATE_PER_SECOND,
  type GossipContext,
  OBSERVATION_MAX_BYTES,
  type ObservationDropReason,
  ObservationSequences,
  observationShard,
  observationTopic,
  observationValidator,
  registerObservationValidator,
  type TallyNode,
} from '../src/index.ts'
import { dialAddress, loopbackNode, stopAll, waitFor } from './helpers.ts'
import { observationBody, observationBytes } from './observations.ts'

const monitor = Identity.generate()
const subject = Identity.generate().peerId
const topic = observationTopic(subject)
const ctx: GossipContext = { topic, via: monitor.peerId }

/** A provider id whose shard differs from `subject`'s. */
function subjectInAnotherShard(): string {
  for (;;) {
    const p = Identity.generate().peerId
    if (observationShard(p) !== observationShard(subject)) return p
  }
}

describe('observationValidator (pure)', () => {
  const now = Date.now()
  const drops: ObservationDropReason[] = []
  const conflicts: [Uint8Array, Uint8Array][] = []
  const validate = observationValidator({
    now: () => now,
    sequences: new ObservationSequences({ window: 16 }),
    onDrop: (reason) => drops.push(reason),
    onConflict: (a, b) => conflicts.push([a, b]),
  })
  const bytes = (seq: number, o: Parameters<typeof observationBody>[2] = {}) => observationBytes(monitor, subject, seq, { issuedAt: now, ...o })
  const last = () => drops.at(-1)

  it('accepts a fresh, signed observation on its shard once', () => {
    const b = bytes(5)
    expect(validate(b, monitor.peerId, ctx)).toBe('accept')
    expect(validate(b, monitor.peerId, ctx)).toBe('ignore')
    expect(last()).toBe('duplicate')
    expect(validate.sequences.highest(monitor.peerId)).toBe(5)
  })

  it('rejects what no honest relay would pass: forged, malformed, foreign origin, wrong shard', () => {
    const doc = signObservation(monitor, observationBody(subject, 6, { issuedAt: now }))
    const forged = encode({ ...doc, body: { ...doc.body, samples: { sent: 10, ok: 10 }, availabilityBp: 10_000 } })
    expect(validate(forged, monitor.peerId, ctx)).toBe('reject')
    expect(last()).toBe('signature')
    expect(validate(new Uint8Array([0xa1, 0x61]), monitor.peerId, ctx)).toBe('reject')
    expect(last()).toBe('malformed')
    expect(validate(bytes(7), Identity.generate().peerId, ctx)).toBe('reject')
    expect(last()).toBe('origin')
    expect(validate(observationBytes(monitor, subjectInAnotherShard(), 8, { issuedAt: now }), monitor.peerId, ctx)).toBe('reject')
    expect(last()).toBe('shard')
  })

  it('ignores what depends on clock or history: stale, future-dated, below the window', () => {
    expect(validate(bytes(9, { issuedAt: now - 10 * 60_000 }), monitor.peerId, ctx)).toBe('ignore')
    expect(last()).toBe('stale')
    expect(validate(bytes(10, { issuedAt: now + 5 * 60_000, window: { start: now + 5 * 60_000 - 10_000, end: now + 5 * 60_000 } }), monitor.peerId, ctx)).toBe(
      'ignore',
    )
    expect(last()).toBe('future')
    expect(validate(bytes(100), monitor.peerId, ctx)).toBe('accept')
    expect(validate(bytes(84), monitor.peerId, ctx)).toBe('ignore')
    expect(last()).toBe('too-old')
    // Reordering within the window is tolerated: 90 arrives after 100.
    expect(validate(bytes(90), monitor.peerId, ctx)).toBe('accept')
  })

  it('spots a conflict: same monitor and seq, different observation', () => {
    const first = bytes(200)
    const second = bytes(200, { samples: { sent: 10, ok: 0 }, availabilityBp: 0, latencyUs: null })
    expect(validate(first, monitor.peerId, ctx)).toBe('accept')
    expect(validate(second, monitor.peerId, ctx)).toBe('ignore')
    expect(last()).toBe('conflict')
    expect(conflicts).toHaveLength(1)
    expect(conflicts[0]![0]).toEqual(first)
    expect(conflicts[0]![1]).toEqual(second)
  })

  it('forgets old observations within its byte budget', () => {
    const seqs = new ObservationSequences({ window: 1_000_000, maxBytes: 1_000 })
    const b = Array.from({ length: 5 }, (_, i) => bytes(1_000 + i))
    for (const [i, x] of b.entries()) seqs.record(monitor.peerId, 1_000 + i, x)
    expect(seqs.classify(monitor.peerId, 1_004, b[4]!).status).toBe('duplicate')
    expect(seqs.classify(monitor.peerId, 1_000, b[0]!).status).toBe('new')
  })
})

interface Seen {
  accepted: Set<number>
  drops: { reason: ObservationDropReason; from: string }[]
}

describe('bad observations are dropped before relay (attacker - relay - observer)', () => {
  let relay: TallyNode
  let observer: TallyNode
  let honest: TallyNode
  let attackers: TallyNode[]
  let flooder: TallyNode
  const seen = new Map<string, Seen>()
  const delivered: number[] = []
  let honestSeq = 1

  const totalAt = (n: TallyNode) => n.gossip.counters.accepted + n.gossip.counters.rejected + n.gossip.counters.ignored

  async function publishHonest(): Promise<number> {
    const seq = honestSeq++
    await honest.gossip.publish(topic, observationBytes(honest.identity, subject, seq))
    return seq
  }

  /** Send `bytes` as `attacker` (raw pubsub: no local validation) and wait until the relay has judged it. */
  async function attack(attacker: TallyNode, bytes: Uint8Array, reason: ObservationDropReason | 'oversized'): Promise<void> {
    const relaySeen = seen.get(relay.peerId)!
    const before = relaySeen.drops.length
    const oversizedBefore = relay.gossip.counters.oversized
    const observerBefore = totalAt(observer)
    await attacker.gossip.pubsub.publish(topic, bytes)
    if (reason === 'oversized') expect(await waitFor(() => relay.gossip.counters.oversized > oversizedBefore)).toBe(true)
    else expect(await waitFor(() => relaySeen.drops.slice(before).some((d) => d.reason === reason && d.from === attacker.peerId))).toBe(true)
    // A control message on the same path proves the observer is reachable and gives a relayed copy time to arrive.
    const control = await publishHonest()
    expect(await waitFor(() => delivered.includes(control))).toBe(true)
    await new Promise((r) => setTimeout(r, 200))
    expect(totalAt(observer)).toBe(observerBefore + 1)
  }

  beforeAll(async () => {
    const nodes = await Promise.all(Array.from({ length: 9 }, () => loopbackNode()))
    ;[relay, observer, honest, flooder] = nodes as [TallyNode, TallyNode, TallyNode, TallyNode]
    attackers = nodes.slice(4)
    for (const node of nodes) {
      const s: Seen = { accepted: new Set(), drops: [] }
      seen.set(node.peerId, s)
      registerObservationValidator(node.gossip, {
        sequences: new ObservationSequences({ window: 16 }),
        onAccept: (obs) => s.accepted.add(obs.body.seq),
        onDrop: (reason, c) => s.drops.push({ reason, from: c.from }),
      })
      node.gossip.subscribe(topic, () => {})
    }
    observer.gossip.subscribe(topic, (msg) => {
      if (msg.from === honest.peerId) delivered.push(seqOf(msg.data))
    })
    // A star around the relay: everything the observer gets must have passed the relay's validator.
    // Without the DHT no node learns of another through the relay, so the star stays a star.
    for (const node of nodes) await (node.libp2p.services.dht as unknown as { stop(): Promise<void> }).stop()
    for (const node of nodes) if (node !== relay) await node.libp2p.dial(multiaddr(dialAddress(relay)))
    expect(await waitFor(() => nodes.every((n) => n === relay || n.gossip.meshPeers(topic).includes(relay.peerId)), 15_000)).toBe(true)
    expect(observer.libp2p.getConnections().map((c) => c.remotePeer.toString())).toEqual([relay.peerId])
  })

  afterAll(async () => {
    await stopAll([relay, observer, honest, flooder, ...(attackers ?? [])].filter(Boolean))
  })

  it('relays an honest observation to the observer', async () => {
    const seq = await publishHonest()
    expect(await waitFor(() => delivered.includes(seq))).toBe(true)
  })

  it('drops a replay, a stale, a future-dated observation and a sequence regression without penalty', async () => {
    const [a] = attackers as [TallyNode]
    const original = observationBytes(a.identity, subject, 500)
    await a.gossip.pubsub.publish(topic, original)
    expect(await waitFor(() => seen.get(observer.peerId)!.accepted.has(500))).toBe(true)
    await attack(a, original, 'duplicate')
    await attack(a, observationBytes(a.identity, subject, 501, { issuedAt: Date.now() - 10 * 60_000 }), 'stale')
    const future = Date.now() + 5 * 60_000
    await attack(a, observationBytes(a.identity, subject, 502, { issuedAt: future, window: { start: future - 10_000, end: future } }), 'future')
    await attack(a, observationBytes(a.identity, subject, 400), 'too-old')
    expect(relay.gossip.score(a.peerId)).toBeGreaterThanOrEqual(0)
  })

  it('drops a forged signature, an oversized payload, a foreign origin and a wrong shard, and the sender score falls', async () => {
    const [, forger, bloater, replayer, misplacer] = attackers as [TallyNode, TallyNode, TallyNode, TallyNode, TallyNode]
    const doc = signObservation(forger.identity, observationBody(subject, 1))
    await attack(forger, encode({ ...doc, body: { ...doc.body, latencyUs: { p50: 1, p95: 2, p99: 3 } } }), 'signature')
    await attack(bloater, new Uint8Array(OBSERVATION_MAX_BYTES + 1), 'oversized')
    await attack(replayer, observationBytes(honest.identity, subject, 9_999), 'origin')
    await attack(misplacer, observationBytes(misplacer.identity, subjectInAnotherShard(), 1), 'shard')
    for (const bad of [forger, bloater, replayer, misplacer]) expect(await waitFor(() => relay.gossip.score(bad.peerId) < 0)).toBe(true)
  })

  it('rate-limits a flood: the flooder falls below zero, leaves the mesh, and honest observations still arrive', async () => {
    const floodSeen = () => seen.get(observer.peerId)!.accepted
    const start = Date.now()
    for (let i = 0; i < DEFAULT_GOSSIP_RATE_BURST * 3; i++) await flooder.gossip.pubsub.publish(topic, observationBytes(flooder.identity, subject, 10_000 + i))
    const elapsedS = (Date.now() - start) / 1000
    expect(await waitFor(() => relay.gossip.counters.rateLimited > 0)).toBe(true)
    expect(await waitFor(() => relay.gossip.score(flooder.peerId) < 0)).toBe(true)
    expect(await waitFor(() => !relay.gossip.meshPeers(topic).includes(flooder.peerId), 5_000)).toBe(true)
    const through = [...floodSeen()].filter((s) => s >= 10_000).length
    expect(through).toBeLessThanOrEqual(DEFAULT_GOSSIP_RATE_BURST + Math.ceil(DEFAULT_GOSSIP_RATE_PER_SECOND * (elapsedS + 2)))
    expect(through).toBeLessThan(DEFAULT_GOSSIP_RATE_BURST * 3)
    const seq = await publishHonest()
    expect(await waitFor(() => delivered.includes(seq))).toBe(true)
    // The relay passed on only what its own bucket allowed; the observer holds none of the excess against it.
    expect(observer.gossip.score(relay.peerId)).toBeGreaterThanOrEqual(0)
  })
})

function seqOf(data: Uint8Array): number {
  return (decode(data) as { body: { seq: number } }).body.seq
}

import { decode, decodeDocument, encode, Identity, signDocument } from '@tally/core'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import {
  DEFAULT_GOSSIP_RATE_BURST,
  DEFAULT_GOSSIP_RATE_PER_SECOND,
  IpRangeSet,
  localNetwork,
  OBSERVATION_MAX_BYTES,
  observationShard,
  observationTopic,
  observationTopics,
  type TallyNode,
  tallyTopics,
  WARRANT_TOPIC,
} from '../src/index.ts'
import { dialAddress, loopbackNetwork, loopbackNode, stopAll, waitFor } from './helpers.ts'

describe('topic sharding', () => {
  it('maps a provider to a stable shard topic', () => {
    const p = Identity.generate().peerId
    expect(observationTopic(p)).toBe(`/tally/obs/1/${observationShard(p)}`)
    expect(observationShard(p, 16)).toBe(observationShard(p, 16))
    expect(observationShard(p, 1)).toBe(0)
    expect(observationTopics(4)).toEqual(['/tally/obs/1/0', '/tally/obs/1/1', '/tally/obs/1/2', '/tally/obs/1/3'])
    expect(tallyTopics(2)).toEqual(['/tally/obs/1/0', '/tally/obs/1/1', WARRANT_TOPIC])
    expect(() => observationShard(p, 0)).toThrow(RangeError)
  })

  it('spreads providers over every shard', () => {
    const counts = new Array(16).fill(0)
    // the shard function hashes the id string, so synthetic strings exercise it as well as real ids
    for (let i = 0; i < 1600; i++) counts[observationShard(`12D3KooW-synthetic-${i}`)]++
    expect(counts.every((c) => c > 60 && c < 140)).toBe(true)
  })

  it('whitelists IP ranges for colocation', () => {
    const set = new IpRangeSet(['127.0.0.0/8', '10.1.2.3', '::1'])
    expect(set.has('127.0.0.1')).toBe(true)
    expect(set.has('127.9.8.7')).toBe(true)
    expect(set.has('10.1.2.3')).toBe(true)
    expect(set.has('10.1.2.4')).toBe(false)
    expect(set.has('::1')).toBe(true)
    expect(set.has('192.168.0.1')).toBe(false)
  })
})

/** The observation-like payload of these tests: a signed document whose signer must be the gossip origin. */
const noteSchema = z.strictObject({ kind: z.string(), n: z.number().int() })
const note = (by: Identity, kind: string, n: number) => encode(signDocument(by, 'observation', { kind, n }))
const forged = (by: Identity, n: number) => {
  const doc = signDocument(by, 'observation', { kind: 'forged', n })
  return encode({ ...doc, body: { kind: 'forged', n: n + 1 } })
}

interface Sighting {
  node: string
  kind: string
  from: string
  via: string
}

describe('gossip on a 13-node loopback network', () => {
  let nodes: TallyNode[]
  const provider = Identity.generate().peerId
  const topic = observationTopic(provider)
  const sightings: Sighting[] = []
  const delivered = new Map<string, Set<string>>() // kind/n -> nodes

  beforeAll(async () => {
    nodes = await loopbackNetwork(12)
    for (const node of nodes) {
      node.gossip.registerTopicValidator(topic, (data, from, { via }) => {
        const claimed = decode(data, OBSERVATION_MAX_BYTES) as { body?: { kind?: string } }
        sightings.push({ node: node.peerId, kind: String(claimed.body?.kind), from, via })
        // decodeDocument checks shape and signature; a throw counts as 'reject'
        const doc = decodeDocument(data, 'observation', noteSchema, OBSERVATION_MAX_BYTES)
        return doc.by === from ? 'accept' : 'reject'
      })
      node.gossip.subscribe(topic, (msg) => {
        const doc = decodeDocument(msg.data, 'observation', noteSchema)
        const key = `${doc.body.kind}/${doc.body.n}`
        if (!delivered.has(key)) delivered.set(key, new Set())
        delivered.get(key)!.add(node.peerId)
      })
    }
    expect(await waitFor(() => nodes.every((n) => n.gossip.meshPeers(topic).length >= 2), 15_000)).toBe(true)
  })

  afterAll(async () => {
    await stopAll(nodes)
  })

  it('delivers to all 12 other subscribers (colocation whitelist in effect)', async () => {
    const publisher = nodes[5]!
    const { recipients } = await publisher.gossip.publish(topic, note(publisher.identity, 'hello', 1))
    expect(recipients).toBeGreaterThan(0)
    expect(await waitFor(() => delivered.get('hello/1')?.size === 12)).toBe(true)
    expect(delivered.get('hello/1')?.has(publisher.peerId)).toBe(false)
    for (const node of nodes) for (const peer of node.gossip.meshPeers(topic)) expect(node.gossip.score(peer)).toBeGreaterThanOrEqual(0)
  })

  it('rejects a forged message before relay and lowers the sender score', async () => {
    const forger = nodes[12]!
    const neighbour = nodes[0]!
    // Leave the forger one connection, so anything others see must have been relayed by the neighbour;
    // DHT lookups of other nodes would dial it again, so it keeps hanging up on them.
    const isolate = (evt: CustomEvent<Connection>) => {
      if (!evt.detail.remotePeer.equals(neighbour.libp2p.peerId)) void evt.detail.close()
    }
    forger.libp2p.addEventListener('connection:open', isolate)
    onTestFinished(() => forger.libp2p.removeEventListener('connection:open', isolate))
    for (const c of forger.libp2p.getConnections()) if (!c.remotePeer.equals(neighbour.libp2p.peerId)) await c.close()
    expect(await waitFor(() => forger.libp2p.getConnections().every((c) => c.remotePeer.equals(neighbour.libp2p.peerId)))).toBe(true)
    expect(await waitFor(() => forger.gossip.subscribers(topic).length === 1)).toBe(true)

    // Control: a valid message from the same position is relayed to everyone.
    await forger.gossip.pubsub.publish(topic, note(forger.identity, 'honest', 2))
    expect(await waitFor(() => delivered.get('honest/2')?.size === 12)).toBe(true)
    expect(sightings.some((s) => s.kind === 'honest' && s.via !== forger.peerId)).toBe(true)

    // The raw pubsub skips our own validator, as a malicious peer would.
    await forger.gossip.pubsub.publish(topic, forged(forger.identity, 3))
    expect(await waitFor(() => sightings.some((s) => s.kind === 'forged' && s.node === neighbour.peerId))).toBe(true)
    await new Promise((r) => setTimeout(r, 1_000))
    const seen = sightings.filter((s) => s.kind === 'forged')
    expect(seen.every((s) => s.via === forger.peerId)).toBe(true) // nobody relayed it
    expect(delivered.has('forged/3')).toBe(false)
    expect(delivered.has('forged/4')).toBe(false)
    expect(neighbour.gossip.counters.rejected).toBeGreaterThan(0)
    expect(await waitFor(() => neighbour.gossip.score(forger.peerId) < 0)).toBe(true)
  })

  it('rejects a flood by rate, drives the flooder below zero and prunes it', async () => {
    const flooder = nodes[7]!
    const victim = nodes.find((n) => n.gossip.meshPeers(topic).includes(flooder.peerId)) ?? nodes[0]!
    const before = victim.gossip.counters.rateLimited
    const start = Date.now()
    for (let i = 0; i < DEFAULT_GOSSIP_RATE_BURST * 3; i++) await flooder.gossip.pubsub.publish(topic, note(flooder.identity, 'flood', i))
    const elapsedS = (Date.now() - start) / 1000
    expect(await waitFor(() => victim.gossip.counters.rateLimited > before)).toBe(true)
    expect(await waitFor(() => victim.gossip.score(flooder.peerId) < 0)).toBe(true)
    expect(await waitFor(() => !victim.gossip.meshPeers(topic).includes(flooder.peerId), 5_000)).toBe(true)
    // at most a burst plus the sustained rate got through anywhere (each node refills on its own clock)
    const floodDelivered = [...delivered.keys()].filter((k) => k.startsWith('flood/')).length
    expect(floodDelivered).toBeLessThanOrEqual(DEFAULT_GOSSIP_RATE_BURST + Math.ceil(DEFAULT_GOSSIP_RATE_PER_SECOND * (elapsedS + 2)))
    expect(floodDelivered).toBeLessThan(DEFAULT_GOSSIP_RATE_BURST * 3)
    // honest traffic still arrives at the victim
    const honest = nodes[3]!
    await honest.gossip.publish(topic, note(honest.identity, 'after-flood', 1))
    expect(await waitFor(() => delivered.get('after-flood/1')?.has(victim.peerId) === true)).toBe(true)
  })

  it('refuses to publish what its own validator rejects', async () => {
    const node = nodes[2]!
    await expect(node.gossip.publish(topic, forged(node.identity, 9))).rejects.toMatchObject({ name: 'GossipRejectedError' })
    await expect(node.gossip.publish(topic, new Uint8Array(OBSERVATION_MAX_BYTES + 1))).rejects.toMatchObject({ name: 'GossipRejectedError' })
  })

  it('without the colocation whitelist, loopback peers score below zero (pitfall 7)', async () => {
    const plain = await loopbackNode({ network: { ...localNetwork(), gossipIpColocationWhitelist: [] } })
    try {
      plain.gossip.subscribe(topic, () => {})
      await Promise.all(nodes.map((n) => plain.libp2p.dial(multiaddr(dialAddress(n)))))
      expect(await waitFor(() => nodes.every((n) => plain.gossip.score(n.peerId) < 0), 10_000)).toBe(true)
      expect(nodes[1]!.gossip.score(plain.peerId)).toBeGreaterThanOrEqual(0)
    } finally {
      await plain.stop()
    }
  })
})

/**
 * A peer flooding the DHT. Flooders are ordinary Tally nodes whose kad-dht
 * provider store is stuffed directly (the "only the provider may announce
 * itself" check removed) with hundreds of bogus provider records for the
 * capability keys an honest provider announces, pointing at nobody or at
 * the flooder itself. Sybil providers announce themselves for real and
 * serve bad offers (bad signature, wrong key, expired, oversized, garbage,
 * stalling, wrong jurisdiction). The honest consumer must still find the
 * honest provider's offer within bounded work, refuse every bogus one with
 * its reason, and count what it capped.
 */
import type { PeerId } from '@libp2p/interface'
import { MessageType } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { type CID, encode, Identity, OPEN_TRUST_POLICY, signDocument } from '@tally/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  capabilityCid,
  capabilityKeysFor,
  DEFAULT_DISCOVER_MAX_CANDIDATES,
  DEFAULT_MAX_PROVIDERS_PER_SOURCE,
  type DiscoveryProgress,
  type DiscoveryResult,
  OFFER_DOCUMENT_TYPE,
  OFFER_MAX_BYTES,
  OFFER_PROTOCOL,
  type Offer,
  type TallyNode,
} from '../../src/index.ts'
import { dialAddress, loopbackNode, makeOffer, offerBody, selfCredential, stopAll, waitFor } from '../helpers.ts'
import { frame, identityNear, kadDistance, openStreams, reportSummary, scaled, sleep, varint } from './helpers.ts'

const HW = 'gpu.h100'
const JUR = 'DE'
/** Bogus provider records each flooder holds per capability key. */
const BOGUS_PER_KEY = scaled(150)
/** Discovery queries, each key in turn. */
const QUERIES = scaled(6)
/** Offer fetches are bounded by this; generous for a loaded machine, and the stalling sybil costs it once per query that reaches it. */
const OFFER_TIMEOUT_MS = 4_000
/** A small k, so that a dozen nodes on loopback behave like a large network: most peers do not hold a given key's records. */
const DHT = { kBucketSize: 4 }

interface ProvidersStore {
  addProvider(cid: CID, provider: PeerId): Promise<void>
  removeProvider(cid: CID, provider: PeerId): Promise<void>
  getProviders(cid: CID): Promise<PeerId[]>
}
interface KadInternals {
  providers: ProvidersStore
  network: { sendMessage(to: PeerId, msg: object, opts: { path: object; signal?: AbortSignal }): AsyncGenerator<{ name: string }> }
}
const kad = (node: TallyNode) => node.libp2p.services.dht as unknown as KadInternals

async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it) {
    // running the query is the point
  }
}

// A lookup on a loaded 2-core machine can end before the routing tables have settled, as a user's `tally find`
// can; like the user, the test asks again (up to twice) on the same network. The bounds are checked on every attempt.
describe('DHT flooding with bogus provider records and bogus offers', { retry: 2 }, () => {
  const nodes: TallyNode[] = []
  let provider: TallyNode
  let consumer: TallyNode
  let honestDht: TallyNode[]
  const flooders: TallyNode[] = []
  const sybils: Record<string, TallyNode> = {}
  const bogusIds = new Set<string>()
  const keys = capabilityKeysFor(HW, JUR)
  const cids = keys.map(capabilityCid)
  const counts = { attempts: 0, rejected: 0, violations: 0, queries: 0, floodedQueries: 0, capped: 0, sweeps: 0, skipped: {} as Record<string, number> }

  beforeAll(async () => {
    const kinds = ['badSignature', 'wrongKey', 'expired', 'oversized', 'garbage', 'stall', 'wrongJurisdiction'] as const
    // Flooders grind their peer ids next to the capability keys (two per key), so they are among the peers every lookup
    // of a key asks first. Not all k closest to a key, though: flooders holding every one of the k positions next to a
    // key eclipse it (the honest record is given only to them, and they drop it), which no consumer-side check can
    // undo; that limit of Kademlia is reported, not tested here. Identities are drawn again until no key is eclipsed.
    const draw = () => ({
      seed: Identity.generate(),
      honest: Array.from({ length: 4 }, () => Identity.generate()),
      flooders: [...cids, ...cids].map((c) => identityNear(c.multihash.bytes, 8)),
      sybils: kinds.map(() => Identity.generate()),
    })
    const eclipsed = (d: ReturnType<typeof draw>) =>
      cids.some((c) => {
        const all = [d.seed, ...d.honest, ...d.flooders, ...d.sybils].map((i) => ({ peer: i.peerId, distance: kadDistance(i.peerId, c.multihash.bytes) }))
        const nearest = all.sort((a, b) => Buffer.compare(a.distance, b.distance)).slice(0, DHT.kBucketSize)
        return nearest.every((n) => d.flooders.some((f) => f.peerId === n.peer))
      })
    let ids = draw()
    for (let tries = 1; eclipsed(ids); tries++) {
      if (tries > 100) throw new Error('could not draw identities that leave every key an honest holder')
      ids = draw()
    }
    // The consumer is far from every key (as most nodes are in a large network): it holds none of their records itself.
    const everyone = [ids.seed, ...ids.honest, ...ids.flooders, ...ids.sybils].map((i) => i.peerId)
    let far: Identity
    do far = Identity.generate()
    while (
      !cids.every((c) => {
        const nearest = everyone.map((p) => kadDistance(p, c.multihash.bytes)).sort(Buffer.compare)
        return Buffer.compare(kadDistance(far.peerId, c.multihash.bytes), nearest[DHT.kBucketSize + 1]!) > 0
      })
    )
    const seed = await loopbackNode({ dht: DHT, identity: ids.seed })
    const bootstrap = [dialAddress(seed)]
    const start = (identity: Identity) => loopbackNode({ bootstrap, dht: DHT, identity })
    const [honest, flooding, sybilNodes, [c]] = (await Promise.all(
      [ids.honest, ids.flooders, ids.sybils, [far]].map((list) => Promise.all(list.map(start))),
    )) as [TallyNode[], TallyNode[], TallyNode[], [TallyNode]]
    nodes.push(seed, ...honest, ...flooding, ...sybilNodes, c)
    honestDht = [seed, ...honest.slice(0, 3)]
    provider = honest[3]!
    consumer = c
    flooders.push(...flooding)
    kinds.forEach((k, i) => {
      sybils[k] = sybilNodes[i]!
    })
    // Everyone knows its neighbourhood before the first provide.
    await Promise.all(nodes.map((n) => drain(n.libp2p.services.dht.getClosestPeers(n.libp2p.peerId.toMultihash().bytes))))

    await provider.discovery.announce(makeOffer(provider.identity))

    // Sybil providers: real peers providing the keys for themselves, serving offers our announce() would refuse.
    const provideRaw = async (node: TallyNode) => {
      for (const c of cids) await drain(node.libp2p.services.dht.provide(c))
    }
    const good = makeOffer(sybils['badSignature']!.identity)
    sybils['badSignature']!.offers.setOffer({ ...good, body: { ...good.body, hardware: { ...good.body.hardware, count: 64 } } })
    const impostor = Identity.generate()
    sybils['wrongKey']!.offers.setOffer(signDocument(impostor, OFFER_DOCUMENT_TYPE, offerBody(impostor)) as Offer)
    sybils['expired']!.offers.setOffer(makeOffer(sybils['expired']!.identity, { validUntil: Date.now() - 1_000 }))
    const wj = sybils['wrongJurisdiction']!
    wj.offers.setOffer(makeOffer(wj.identity, { credentials: [selfCredential(wj.identity, 'FR')] }))
    const rawOffer = async (node: TallyNode, answer: (send: (b: Uint8Array) => void) => void) => {
      await node.offers.stop()
      await node.libp2p.handle(OFFER_PROTOCOL, (stream) => answer((b) => void stream.send(b)))
    }
    // A length prefix far over the 64 KiB an offer may have, then a few bytes.
    await rawOffer(sybils['oversized']!, (send) => send(Uint8Array.from([...varint(OFFER_MAX_BYTES * 16), 1, 2, 3])))
    await rawOffer(sybils['garbage']!, (send) => send(frame(Uint8Array.from([0xff, 0x00, 0x13, 0x37]))))
    await rawOffer(sybils['stall']!, () => undefined)
    await Promise.all(Object.values(sybils).map(provideRaw))

    // Flooders drop the honest record they were given (an eclipse attempt) and hold hundreds of bogus ones per key,
    // written straight into their provider store, naming peers that do not exist (a closed port) or that are not
    // who the flooder's own address answers as.
    const closed = '/ip4/127.0.0.1/tcp/1'
    for (const f of flooders) {
      for (const c of cids) await kad(f).providers.removeProvider(c, provider.libp2p.peerId)
      const self = dialAddress(f).replace(/\/p2p\/.*$/, '')
      for (let i = 0; i < BOGUS_PER_KEY; i++) {
        const id = peerIdFromString(Identity.generate().peerId)
        bogusIds.add(id.toString())
        await f.libp2p.peerStore.merge(id, { multiaddrs: [multiaddr(i % 2 === 0 ? closed : self)] })
        for (const c of cids) await kad(f).providers.addProvider(c, id)
      }
    }
  })

  afterAll(async () => {
    await stopAll(nodes)
    counts.capped = consumer?.discovery.stats.capped ?? 0
    counts.sweeps = consumer?.discovery.stats.sweeps ?? 0
    await reportSummary({ suite: 'adversary-dht-flood', ...counts })
  })

  it('honest DHT nodes refuse provider records a flooder sends on behalf of other peers', async () => {
    const cid = cids[0]!
    const f = flooders[0]!
    const forged = Array.from({ length: scaled(20) }, () => peerIdFromString(Identity.generate().peerId))
    const providers = forged.map((id) => ({ id: id.toMultihash().bytes, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1').bytes] }))
    for (const n of honestDht) {
      await drain(
        kad(f).network.sendMessage(
          n.libp2p.peerId,
          { type: MessageType.ADD_PROVIDER, key: cid.multihash.bytes, providers },
          { path: { index: 0, queued: 0, running: 0, total: 1 } },
        ),
      )
      counts.attempts += forged.length
    }
    await sleep(200)
    for (const n of honestDht) {
      const held = new Set((await kad(n).providers.getProviders(cid)).map((p) => p.toString()))
      const accepted = forged.filter((id) => held.has(id.toString())).length
      counts.violations += accepted
      counts.rejected += forged.length - accepted
      expect(accepted).toBe(0)
    }
  })

  it('a flooder cannot store offers as DHT records: every honest node refuses them', async () => {
    const f = flooders[1]!
    const bogus = makeOffer(f.identity)
    let refused = 0
    let stored = 0
    for (let i = 0; i < scaled(2); i++) {
      const key = new TextEncoder().encode(`/tally-offer/${f.peerId}/${i}`)
      const sent = new Set<string>()
      const accepted = new Set<string>()
      for await (const e of f.libp2p.services.dht.put(key, encode(bogus))) {
        if (e.name === 'SEND_QUERY' && e.messageName === 'PUT_VALUE') sent.add(e.to.toString())
        if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE') accepted.add(e.from.toString())
      }
      stored += accepted.size
      refused += sent.size - accepted.size
    }
    counts.attempts += refused + stored
    counts.rejected += refused
    counts.violations += stored
    expect(stored).toBe(0)
    expect(refused).toBeGreaterThan(0)
  })

  it('finds the honest provider through the flood within bounded work, refusing every bogus offer with its reason', async () => {
    const reasons = ['unreachable', 'signature', 'signer', 'expired', 'protocol', 'timeout', 'credential']
    const queries = [{ hardwareClass: HW }, { jurisdiction: JUR }, { hardwareClass: HW, jurisdiction: JUR }]
    let flooded = 0
    for (let q = 0; q < QUERIES; q++) {
      const query = queries[q % queries.length]!
      const progress: DiscoveryProgress[] = []
      const results: DiscoveryResult[] = []
      for await (const r of consumer.discovery.discover(query, OPEN_TRUST_POLICY, {
        limit: 1,
        offerTimeoutMs: OFFER_TIMEOUT_MS,
        onProgress: (e) => progress.push(e),
      })) {
        results.push(r)
      }
      counts.queries++
      const offers = results.filter((r) => 'offer' in r)
      const skipped = results.flatMap((r) => ('skipped' in r ? [r.skipped.code] : []))
      const candidates = progress.filter((e) => e.type === 'candidate')
      const dropped = progress.reduce((n, e) => n + (e.type === 'capped' ? e.dropped : 0), 0)
      if (dropped > 0 || candidates.some((e) => bogusIds.has(e.peer))) flooded++
      counts.attempts += candidates.length + dropped
      counts.rejected += skipped.length + dropped
      for (const code of skipped) counts.skipped[code] = (counts.skipped[code] ?? 0) + 1
      const found = offers.some((r) => r.peer === provider.peerId)
      const impostors = offers.filter((r) => r.peer !== provider.peerId).length
      const perSource = new Map<string, number>()
      for (const e of candidates) if (e.source !== undefined) perSource.set(e.source, (perSource.get(e.source) ?? 0) + 1)
      const overCap = [...perSource.values()].filter((n) => n > DEFAULT_MAX_PROVIDERS_PER_SOURCE).length
      const badReasons = skipped.filter((c) => !reasons.includes(c))
      if (!found || impostors > 0 || candidates.length > DEFAULT_DISCOVER_MAX_CANDIDATES || overCap > 0 || badReasons.length > 0) counts.violations++
      const honest = results.find((r) => r.peer === provider.peerId)
      const why = honest === undefined ? 'not a candidate' : 'skipped' in honest ? honest.skipped.message : 'accepted'
      expect({ query, found, impostors, overCap, badReasons, why }).toEqual({ query, found: true, impostors: 0, overCap: 0, badReasons: [], why: 'accepted' })
      expect(candidates.length).toBeLessThanOrEqual(DEFAULT_DISCOVER_MAX_CANDIDATES)
    }
    // How many met the flood depends on which DHT answer arrives first; the next test takes every answer.
    counts.floodedQueries = flooded
  })

  it('names each sybil provider’s offer for what it is, and accepts only the honest one', async () => {
    // Offer streams to peers that answer and never close are cut after a grace period, not kept for the connection's life.
    expect(await waitFor(() => openStreams(consumer, OFFER_PROTOCOL) === 0, 10_000)).toBe(true)
    const all: DiscoveryResult[] = []
    for await (const r of consumer.discovery.discover({ hardwareClass: HW, jurisdiction: JUR }, OPEN_TRUST_POLICY, {
      limit: 100,
      offerTimeoutMs: OFFER_TIMEOUT_MS,
    })) {
      all.push(r)
    }
    const code = (node: TallyNode) => {
      const r = all.find((x) => x.peer === node.peerId)
      return r === undefined ? 'not reached' : 'skipped' in r ? r.skipped.code : 'accepted'
    }
    const expected: Record<string, string> = {
      badSignature: 'signature',
      wrongKey: 'signer',
      expired: 'expired',
      oversized: 'protocol',
      garbage: 'protocol',
      stall: 'timeout',
      wrongJurisdiction: 'credential',
    }
    const seen = Object.fromEntries(Object.entries(sybils).map(([k, n]) => [k, code(n)]))
    expect(seen).toEqual(expected)
    expect(all.filter((r) => 'offer' in r).map((r) => r.peer)).toEqual([provider.peerId])
    const bogus = all.filter((r) => bogusIds.has(r.peer))
    expect(bogus.length).toBeGreaterThan(0)
    expect(bogus.every((r) => 'skipped' in r && r.skipped.code === 'unreachable')).toBe(true)
    expect(all.length).toBeLessThanOrEqual(DEFAULT_DISCOVER_MAX_CANDIDATES)
    // The flood was met and cut: records over the per-source cap were dropped and counted, and the k closest peers swept.
    expect(consumer.discovery.stats.capped).toBeGreaterThan(0)
    expect(consumer.discovery.stats.sweeps).toBeGreaterThan(0)
    counts.attempts += all.length
    counts.rejected += all.length - 1
  })
})

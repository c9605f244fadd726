import { Identity, issueCredential, OPEN_TRUST_POLICY, signDocument, type TrustPolicy } from '@tally/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  capabilityCid,
  capabilityKey,
  capabilityKeysFor,
  type DiscoveryResult,
  OFFER_DOCUMENT_TYPE,
  type Offer,
  type TallyNode,
  verifyOffer,
  withinPrice,
} from '../src/index.ts'
import { collect, loopbackNetwork, makeOffer, offerBody, selfCredential, stopAll, waitFor } from './helpers.ts'

describe('capability keys', () => {
  it('names hardware, jurisdiction and both, in a fixed order', () => {
    expect(capabilityKey({ hardwareClass: 'gpu.h100' })).toBe('tally/cap/v1/hw=gpu.h100')
    expect(capabilityKey({ jurisdiction: 'DE' })).toBe('tally/cap/v1/jur=DE')
    expect(capabilityKey({ jurisdiction: 'DE', hardwareClass: 'gpu.h100' })).toBe('tally/cap/v1/hw=gpu.h100/jur=DE')
    expect(capabilityKeysFor('gpu.a100', 'US-CA')).toEqual([
      'tally/cap/v1/hw=gpu.a100',
      'tally/cap/v1/jur=US-CA',
      'tally/cap/v1/hw=gpu.a100/jur=US-CA',
      'tally/cap/v1/jur=US',
      'tally/cap/v1/hw=gpu.a100/jur=US',
    ])
  })

  it('maps a key to a raw sha2-256 CIDv1 of its UTF-8 bytes', () => {
    const cid = capabilityCid('tally/cap/v1/hw=gpu.h100')
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x55)
    expect(cid.multihash.code).toBe(0x12)
    expect(cid.equals(capabilityCid('tally/cap/v1/hw=gpu.h100'))).toBe(true)
    expect(cid.equals(capabilityCid('tally/cap/v1/hw=gpu.h200'))).toBe(false)
  })

  it('refuses empty or malformed queries with a typed error', () => {
    expect(() => capabilityKey({})).toThrow(expect.objectContaining({ name: 'InvalidQueryError' }))
    expect(() => capabilityKey({ hardwareClass: 'GPU/H100' })).toThrow(expect.objectContaining({ name: 'InvalidQueryError' }))
    expect(() => capabilityKey({ jurisdiction: 'Germany' })).toThrow(expect.objectContaining({ name: 'InvalidQueryError' }))
  })

  it('compares prices as exact rates in one asset', () => {
    const price = { perEpoch: { amount: 250, asset: 'USD' }, epochMs: 60_000 }
    expect(withinPrice(price, { perEpoch: { amount: 250, asset: 'USD' }, epochMs: 60_000 })).toBe(true)
    expect(withinPrice(price, { perEpoch: { amount: 15_000, asset: 'USD' }, epochMs: 3_600_000 })).toBe(true)
    expect(withinPrice(price, { perEpoch: { amount: 14_999, asset: 'USD' }, epochMs: 3_600_000 })).toBe(false)
    expect(withinPrice(price, { perEpoch: { amount: 1_000_000, asset: 'EUR' }, epochMs: 60_000 })).toBe(false)
  })
})

describe('offer verification', () => {
  const provider = Identity.generate()
  const policy = OPEN_TRUST_POLICY

  it('accepts a well-formed offer and returns the admitted credentials', () => {
    const v = verifyOffer(makeOffer(provider), { policy, remotePeer: provider.peerId })
    expect(v.credentials).toHaveLength(1)
  })

  it('names the failing check in details.code', () => {
    const code = (value: unknown, remotePeer = provider.peerId, p: TrustPolicy = policy) => {
      try {
        verifyOffer(value, { policy: p, remotePeer })
        return 'ok'
      } catch (err) {
        expect((err as Error).name).toBe('InvalidOfferError')
        return (err as { details: { code: string } }).details.code
      }
    }
    const offer = makeOffer(provider)
    expect(code({ ...offer, body: { ...offer.body, hardware: { ...offer.body.hardware, count: 9 } } })).toBe('signature')
    expect(code({ ...offer, body: { ...offer.body, price: 'cheap' } })).toBe('schema')
    expect(code(offer, Identity.generate().peerId)).toBe('signer')
    const stranger = Identity.generate()
    expect(code(signDocument(stranger, OFFER_DOCUMENT_TYPE, offerBody(provider)), stranger.peerId)).toBe('signer')
    expect(code(makeOffer(provider, { validUntil: Date.now() - 1 }))).toBe('expired')
    expect(code(makeOffer(provider, { credentials: [] }))).toBe('credential')
    expect(code(offer, provider.peerId, { issuers: { provider: [Identity.generate().peerId] } })).toBe('credential')
    // a credential for another jurisdiction does not cover the offer
    expect(code(makeOffer(provider, { credentials: [selfCredential(provider, 'FR')] }))).toBe('credential')
    expect(code(makeOffer(provider, { jurisdiction: 'US-CA', credentials: [selfCredential(provider, 'US')] }))).toBe('ok')
  })
})

describe('discovery on a loopback network', () => {
  let nodes: TallyNode[]
  const providers: Record<string, TallyNode> = {}
  let consumer: TallyNode
  const issuer = Identity.generate()

  const peersOf = (results: DiscoveryResult[]) =>
    results
      .filter((r) => 'offer' in r)
      .map((r) => r.peer)
      .sort()
  const skips = (results: DiscoveryResult[]) => Object.fromEntries(results.flatMap((r) => ('skipped' in r ? [[r.peer, r.skipped.code]] : [])))

  beforeAll(async () => {
    nodes = await loopbackNetwork(11)
    const [, h100de, a100ca, h100fr, wrongSigner, expired, untrusted, gone, issued] = nodes as [TallyNode, ...TallyNode[]]
    Object.assign(providers, { h100de, a100ca, h100fr, wrongSigner, expired, untrusted, gone, issued })
    consumer = nodes[nodes.length - 1] as TallyNode
    await h100de!.discovery.announce(makeOffer(h100de!.identity))
    await a100ca!.discovery.announce(
      makeOffer(a100ca!.identity, { hardware: { class: 'gpu.a100', count: 4, attestationSource: 'declared' }, jurisdiction: 'US-CA' }),
    )
    await h100fr!.discovery.announce(makeOffer(h100fr!.identity, { jurisdiction: 'FR', price: { perEpoch: { amount: 900, asset: 'USD' }, epochMs: 60_000 } }))
    // Misbehaving providers serve offers our announce() would refuse, so they set them directly and provide by hand.
    const t4 = { hardware: { class: 'gpu.t4', count: 1, attestationSource: 'declared' }, jurisdiction: 'NL' } as const
    const serveRaw = async (node: TallyNode, offer: Offer) => {
      node.offers.setOffer(offer)
      for await (const _ of node.libp2p.services.dht.provide(capabilityCid(capabilityKey({ hardwareClass: 'gpu.t4' })))) {
        // drain
      }
    }
    const impostor = Identity.generate()
    await serveRaw(wrongSigner!, signDocument(impostor, OFFER_DOCUMENT_TYPE, offerBody(impostor, t4)) as Offer)
    await serveRaw(expired!, makeOffer(expired!.identity, { ...t4, validUntil: Date.now() - 1_000 }))
    await serveRaw(
      untrusted!,
      makeOffer(untrusted!.identity, { ...t4, credentials: [selfCredential(untrusted!.identity, 'NL', { issuer: Identity.generate() })] }),
    )
    await gone!.discovery.announce(makeOffer(gone!.identity, t4))
    await issued!.discovery.announce(makeOffer(issued!.identity, { ...t4, credentials: [selfCredential(issued!.identity, 'NL', { issuer })] }))
    await gone!.stop()
  })

  afterAll(async () => {
    await stopAll(nodes)
  })

  it('finds providers by hardware class, by jurisdiction and by both', async () => {
    const find = async (q: Parameters<TallyNode['discovery']['findProviders']>[0]) =>
      (await collect(consumer.discovery.findProviders(q, { timeoutMs: 5_000 }))).map((c) => c.peer).sort()
    expect(await find({ hardwareClass: 'gpu.h100' })).toEqual([providers['h100de']!.peerId, providers['h100fr']!.peerId].sort())
    expect(await find({ jurisdiction: 'DE' })).toEqual([providers['h100de']!.peerId])
    expect(await find({ hardwareClass: 'gpu.h100', jurisdiction: 'FR' })).toEqual([providers['h100fr']!.peerId])
    // a subdivision provider is found by its country
    expect(await find({ jurisdiction: 'US' })).toEqual([providers['a100ca']!.peerId])
    expect(await find({ hardwareClass: 'gpu.b200' })).toEqual([])
  })

  it('fetches and verifies offers; filters by price', async () => {
    const all = await collect(consumer.discovery.discover({ hardwareClass: 'gpu.h100' }, OPEN_TRUST_POLICY))
    expect(peersOf(all)).toEqual([providers['h100de']!.peerId, providers['h100fr']!.peerId].sort())
    const offer = all.find((r) => 'offer' in r && r.peer === providers['h100de']!.peerId)
    expect(offer !== undefined && 'offer' in offer && offer.offer.body.jurisdiction).toBe('DE')
    const cheap = await collect(
      consumer.discovery.discover({ hardwareClass: 'gpu.h100', maxPrice: { perEpoch: { amount: 300, asset: 'USD' }, epochMs: 60_000 } }, OPEN_TRUST_POLICY),
    )
    expect(peersOf(cheap)).toEqual([providers['h100de']!.peerId])
    expect(skips(cheap)).toEqual({ [providers['h100fr']!.peerId]: 'price' })
  })

  it('skips bad and unreachable providers with the reason', async () => {
    const progress: string[] = []
    const results = await collect(
      consumer.discovery.discover({ hardwareClass: 'gpu.t4' }, OPEN_TRUST_POLICY, { offerTimeoutMs: 2_000, onProgress: (e) => progress.push(e.type) }),
    )
    // OPEN_TRUST_POLICY admits any issuer, so both third-party credentials pass here
    expect(peersOf(results)).toEqual([providers['issued']!.peerId, providers['untrusted']!.peerId].sort())
    expect(skips(results)).toEqual({
      [providers['wrongSigner']!.peerId]: 'signer',
      [providers['expired']!.peerId]: 'expired',
      [providers['gone']!.peerId]: 'unreachable',
    })
    expect(progress).toContain('skipped')
    // a stricter reader trusts only self-issued provider credentials
    const strict = await collect(consumer.discovery.discover({ hardwareClass: 'gpu.t4' }, { issuers: { provider: ['self'] } }, { offerTimeoutMs: 2_000 }))
    expect(skips(strict)[providers['untrusted']!.peerId]).toBe('credential')
    expect(skips(strict)[providers['issued']!.peerId]).toBe('credential')
    // and one that trusts our issuer admits exactly its subject
    const byIssuer = await collect(
      consumer.discovery.discover({ hardwareClass: 'gpu.t4' }, { issuers: { provider: [issuer.peerId] } }, { offerTimeoutMs: 2_000 }),
    )
    expect(peersOf(byIssuer)).toEqual([providers['issued']!.peerId])
    expect(skips(byIssuer)[providers['untrusted']!.peerId]).toBe('credential')
  })

  it('re-announcing replaces the offer and its keys', async () => {
    const node = providers['h100fr']!
    await node.discovery.announce(makeOffer(node.identity, { jurisdiction: 'PL', credentials: [selfCredential(node.identity, 'PL')] }))
    expect(node.discovery.announcedKeys).toContain('tally/cap/v1/jur=PL')
    const results = await collect(consumer.discovery.discover({ jurisdiction: 'PL' }, OPEN_TRUST_POLICY))
    expect(peersOf(results)).toEqual([node.peerId])
    // an old record may still point here; the fresh offer no longer matches FR
    const fr = await collect(consumer.discovery.discover({ jurisdiction: 'FR' }, OPEN_TRUST_POLICY))
    expect(peersOf(fr)).toEqual([])
    expect(skips(fr)).toEqual({ [node.peerId]: 'mismatch' })
  })

  it('refuses to announce an offer that is not its own or expired', async () => {
    const node = providers['a100ca']!
    await expect(node.discovery.announce(makeOffer(Identity.generate()))).rejects.toMatchObject({ name: 'InvalidOfferError' })
    await expect(node.discovery.announce(makeOffer(node.identity, { validUntil: Date.now() - 1 }))).rejects.toMatchObject({ name: 'InvalidOfferError' })
    // an offer too large for one /tally/offer/1.0.0 frame is refused, and the served offer stays as it was
    const served = node.offers.offer
    const bulky = issueCredential(node.identity, {
      subject: node.peerId,
      roles: ['provider'],
      jurisdiction: 'US-CA',
      scope: { hardwareClasses: Array.from({ length: 64 }, (_, i) => `gpu.${'x'.repeat(200)}${i}`) },
      notBefore: Date.now() - 1_000,
      notAfter: Date.now() + 60_000,
    })
    const huge = makeOffer(node.identity, { jurisdiction: 'US-CA', credentials: Array(16).fill(bulky) })
    await expect(node.discovery.announce(huge)).rejects.toMatchObject({ name: 'InvalidOfferError', details: { code: 'schema' } })
    expect(node.offers.offer).toBe(served)
  })
})

describe('re-provide schedule', () => {
  it('re-provides on its interval until withdrawn, and stops cleanly', async () => {
    const nodes = await loopbackNetwork(2, { discovery: { reprovideIntervalMs: 1_000, reprovideJitter: 0.1 } })
    try {
      const provider = nodes[1]!
      await provider.discovery.announce(makeOffer(provider.identity))
      expect(provider.discovery.stats.rounds).toBe(1)
      expect(await waitFor(() => provider.discovery.stats.rounds >= 3, 8_000)).toBe(true)
      expect(provider.discovery.stats.lastReached.every((n) => n > 0)).toBe(true)
      await provider.discovery.withdraw()
      const rounds = provider.discovery.stats.rounds
      await new Promise((r) => setTimeout(r, 1_500))
      expect(provider.discovery.stats.rounds).toBe(rounds)
      expect(provider.offers.offer).toBeUndefined()
      // announcing again resumes the schedule; stop ends it
      await provider.discovery.announce(makeOffer(provider.identity))
      await provider.stop()
      const stopped = provider.discovery.stats.rounds
      await new Promise((r) => setTimeout(r, 1_500))
      expect(provider.discovery.stats.rounds).toBe(stopped)
    } finally {
      await stopAll(nodes)
    }
  })
})

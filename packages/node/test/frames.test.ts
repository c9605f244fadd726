import { multiaddr } from '@multiformats/multiaddr'
import { encode, OPEN_TRUST_POLICY } from '@tally/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  fetchOffer,
  FrameStream,
  handleProtocol,
  OFFER_PROTOCOL,
  OFFER_RATE_BURST,
  type ProtocolHandle,
  requestResponse,
  type TallyNode,
} from '../src/index.ts'
import { dialAddress, loopbackNode, makeOffer, stopAll, waitFor } from './helpers.ts'

const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

describe('framed streams and /tally/offer/1.0.0 under bad input', () => {
  let server: TallyNode
  let client: TallyNode
  let other: TallyNode
  const handles: ProtocolHandle[] = []

  beforeAll(async () => {
    server = await loopbackNode()
    client = await loopbackNode()
    other = await loopbackNode()
    server.offers.setOffer(makeOffer(server.identity))
    await client.libp2p.dial(multiaddr(dialAddress(server)))
    await other.libp2p.dial(multiaddr(dialAddress(server)))
  })

  afterAll(async () => {
    await Promise.allSettled(handles.map((h) => h.close()))
    await stopAll([server, client, other])
  })

  const fetch = (from: TallyNode) => fetchOffer(from.libp2p, server.libp2p.peerId, { policy: OPEN_TRUST_POLICY, expectedPeer: server.peerId })

  /** Open a raw offer stream and send `bytes` without framing help, like a hostile client would. */
  async function rawOfferStream(bytes: number[]) {
    const stream = await client.libp2p.dialProtocol(server.libp2p.peerId, OFFER_PROTOCOL)
    if (bytes.length > 0) stream.send(Uint8Array.from(bytes))
    return stream
  }

  it('serves a signed offer that the client verifies', async () => {
    const { offer, credentials } = await fetch(client)
    expect(offer.by).toBe(server.peerId)
    expect(credentials).toHaveLength(1)
  })

  it('cuts off an oversized frame and keeps serving', async () => {
    const before = server.offers.stats.cutOff['FrameTooLargeError'] ?? 0
    const stream = await rawOfferStream([...varint(1024 * 1024), 1, 2, 3])
    expect(await waitFor(() => (server.offers.stats.cutOff['FrameTooLargeError'] ?? 0) === before + 1)).toBe(true)
    expect(await waitFor(() => stream.status !== 'open')).toBe(true)
    // an overlong varint is refused before any length is believed
    await rawOfferStream(Array(12).fill(0xff))
    expect(await waitFor(() => (server.offers.stats.cutOff['FrameTooLargeError'] ?? 0) === before + 2)).toBe(true)
    expect((await fetch(client)).offer.by).toBe(server.peerId)
    expect((await fetch(other)).offer.by).toBe(server.peerId)
  })

  it('cuts off garbage and unknown message types', async () => {
    const garbage = [0xff, 0xfe, 0x00, 0x13, 0x37]
    await rawOfferStream([...varint(garbage.length), ...garbage])
    expect(await waitFor(() => server.offers.stats.cutOff['FrameDecodeError'] === 1)).toBe(true)
    const unknown = [...encode({ type: 'gimme-everything' })]
    await rawOfferStream([...varint(unknown.length), ...unknown])
    expect(await waitFor(() => server.offers.stats.cutOff['UnexpectedMessageError'] === 1)).toBe(true)
    expect((await fetch(other)).offer.by).toBe(server.peerId)
  })

  it('cuts off a client that stalls mid-frame or never sends, while serving others', async () => {
    const before = server.offers.stats.cutOff['FrameTimeoutError'] ?? 0
    const midFrame = await rawOfferStream([...varint(40), 0xa1, 0x64])
    const silent = await rawOfferStream([])
    // meanwhile another peer is served at once
    expect((await fetch(other)).offer.by).toBe(server.peerId)
    expect(await waitFor(() => (server.offers.stats.cutOff['FrameTimeoutError'] ?? 0) === before + 2, 8_000)).toBe(true)
    expect(await waitFor(() => midFrame.status !== 'open' && silent.status !== 'open')).toBe(true)
  })

  it('rate-limits one peer opening streams too fast, not the others', async () => {
    const flooder = await loopbackNode()
    try {
      await flooder.libp2p.dial(multiaddr(dialAddress(server)))
      const request = encode({ type: 'get-offer' })
      const ask = async () => {
        const stream = await flooder.libp2p.dialProtocol(server.libp2p.peerId, OFFER_PROTOCOL)
        const frames = new FrameStream(stream, { maxFrameBytes: 64 * 1024, idleTimeoutMs: 2_000 })
        // the server may cut the stream before we even write
        return frames
          .write(request)
          .then(() => frames.read())
          .then(
            async (f) => {
              await frames.close()
              return f === null ? 'ended' : 'served'
            },
            (e: Error) => e.name,
          )
      }
      // 4 at a time (the per-connection stream cap), far faster than the 5/s refill even on a loaded machine
      const outcomes: string[] = []
      for (let i = 0; i < OFFER_RATE_BURST + 40; i += 4) outcomes.push(...(await Promise.all([ask(), ask(), ask(), ask()])))
      expect(outcomes.filter((o) => o === 'served').length).toBeGreaterThanOrEqual(OFFER_RATE_BURST)
      expect(outcomes.filter((o) => o !== 'served').length).toBeGreaterThan(0)
      expect(server.offers.stats.cutOff['RateLimitedError']).toBeGreaterThan(0)
      expect((await fetch(other)).offer.by).toBe(server.peerId)
    } finally {
      await flooder.stop()
    }
  })

  it('times out a server that stalls, and refuses an oversized response', async () => {
    handles.push(
      await handleProtocol(
        server.libp2p,
        '/tally-test/stall/1.0.0',
        async ({ frames, signal }) => {
          await frames.readRequired('request')
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
        },
        { frames: { maxFrameBytes: 64 }, log: server.log },
      ),
      await handleProtocol(
        server.libp2p,
        '/tally-test/big/1.0.0',
        async ({ frames }) => {
          await frames.readRequired('request')
          await frames.write(new Uint8Array(4096))
        },
        { frames: { maxFrameBytes: 64, maxWriteFrameBytes: 8192 }, log: server.log },
      ),
    )
    const stalled = requestResponse(client.libp2p, server.libp2p.peerId, '/tally-test/stall/1.0.0', Uint8Array.of(1), { maxResponseBytes: 64, timeoutMs: 500 })
    await expect(stalled).rejects.toMatchObject({ name: 'FrameTimeoutError' })
    const big = requestResponse(client.libp2p, server.libp2p.peerId, '/tally-test/big/1.0.0', Uint8Array.of(1), { maxResponseBytes: 1024, timeoutMs: 2_000 })
    await expect(big).rejects.toMatchObject({ name: 'FrameTooLargeError' })
    const nobody = requestResponse(client.libp2p, server.libp2p.peerId, '/tally-test/absent/1.0.0', Uint8Array.of(1), {
      maxResponseBytes: 64,
      timeoutMs: 2_000,
    })
    await expect(nobody).rejects.toMatchObject({ name: 'PeerUnreachableError' })
  })

  it('carries many typed messages on one long-lived stream', async () => {
    const message = z.discriminatedUnion('type', [z.strictObject({ type: z.literal('n'), n: z.number().int() }), z.strictObject({ type: z.literal('end') })])
    let sum = 0
    handles.push(
      await handleProtocol(
        server.libp2p,
        '/tally-test/sum/1.0.0',
        async ({ frames }) => {
          for (;;) {
            const m = await frames.readMessage(message, 'sum message')
            if (m.type === 'end') break
            sum += m.n
            await frames.writeMessage({ type: 'n', n: sum })
          }
        },
        { frames: { maxFrameBytes: 64 }, log: server.log },
      ),
    )
    const stream = await client.libp2p.dialProtocol(server.libp2p.peerId, '/tally-test/sum/1.0.0')
    const frames = new FrameStream(stream, { maxFrameBytes: 64, idleTimeoutMs: 2_000 })
    for (let i = 1; i <= 200; i++) {
      await frames.writeMessage({ type: 'n', n: i })
      expect(await frames.readMessage(message, 'sum reply')).toEqual({ type: 'n', n: (i * (i + 1)) / 2 })
    }
    await frames.writeMessage({ type: 'end' })
    expect(await frames.read()).toBeNull()
    // the server rejects a wrong shape on the same protocol with a typed error
    const bad = new FrameStream(await client.libp2p.dialProtocol(server.libp2p.peerId, '/tally-test/sum/1.0.0'), { maxFrameBytes: 64, idleTimeoutMs: 2_000 })
    await bad.writeMessage({ type: 'n', n: 'seven' })
    await expect(bad.read()).rejects.toMatchObject({ name: 'StreamEndedError' })
  })
})

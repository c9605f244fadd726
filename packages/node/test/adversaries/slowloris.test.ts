/**
 * Slowloris on every Tally protocol. Adversary nodes open as many streams
 * as they are allowed (and more) to /tally/offer, /tally/probe, /tally/pair
 * and /tally/arbitrate on one honest server, and keep each alive as cheaply
 * as they can: silence, a byte every few hundred ms inside a frame, or a
 * valid arbitration case header followed by nothing. The server must cut
 * every one of them off within its bounds, keep serving an honest client
 * throughout (offer, probe, arbitration case, pair session), and end with
 * no adversary stream open.
 */
import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { encode, Identity, OPEN_TRUST_POLICY, toBlock } from '@tally/core'
import { signRuling } from '@tally/deal'
import { pairIdOf } from '@tally/lineage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ARBITRATE_PROTOCOL,
  ARBITRATE_PROTOCOL_VERSION,
  type ArbitrationCase,
  ArbitrationServer,
  type CaseAnswer,
  caseHeader,
  OFFER_PROTOCOL,
  PAIR_PROTOCOL,
  PROBE_PROTOCOL,
  ProbeResponder,
  probeProvider,
  submitCase,
  type TallyNode,
} from '../../src/index.ts'
import { dialAddress, loopbackNode, makeOffer, stopAll, waitFor } from '../helpers.ts'
import { type Peer, pairPeer, stopPeers } from '../pair-helpers.ts'
import { frame, openStreams, reportSummary, scaled, sleep, trickle, varint } from './helpers.ts'

const ADVERSARIES = scaled(3)
/** Streams each adversary opens per protocol: past every per-connection allowance (offer 4, probe 8, pair 8, arbitrate 2). */
const STREAMS: Record<string, number> = { [OFFER_PROTOCOL]: 6, [PROBE_PROTOCOL]: 10, [PAIR_PROTOCOL]: 10, [ARBITRATE_PROTOCOL]: 3 }
const PROTOCOLS = Object.keys(STREAMS)
/** One byte this often: slow enough to stall, fast enough that no idle timeout fires between bytes. */
const TRICKLE_MS = 300

const pairOf = { provider: Identity.generate().peerId, consumer: Identity.generate().peerId }
const deal = toBlock({ deal: 'slowloris' }).cid
const dispute = toBlock({ dispute: 'slowloris' }).cid

function rulingFor(c: ArbitrationCase, by: Identity): CaseAnswer {
  const ruling = signRuling(by, {
    pair: pairIdOf(c.request.pair),
    deal: c.request.deal,
    dispute: c.request.dispute,
    epochs: [1],
    award: { toProvider: { amount: 0, asset: 'USD' }, collateralToConsumer: { amount: 0, asset: 'USD' } },
    reasons: createHash('sha256').update(c.request.record).digest('hex'),
    relied: [],
    appealOf: null,
    issuedAt: 1,
  })
  return { type: 'ruling', caseId: c.id, ruling }
}

describe('slowloris streams on every protocol', () => {
  let server: Peer
  let client: Peer
  let responder: ProbeResponder
  let arbitration: ArbitrationServer
  let adversaries: TallyNode[]
  let appending = true
  let appender: Promise<void> | undefined
  const streams: { protocol: string; stream: Stream; mode: string }[] = []
  const counts = { attempts: 0, rejected: 0, violations: 0, refusedAtOpen: 0, honestBusy: 0, peakHeld: 0, cutOff: {} as Record<string, Record<string, number>> }

  beforeAll(async () => {
    server = await pairPeer({ sessions: { accept: () => true } })
    client = await pairPeer()
    const s = server.node
    s.offers.setOffer(makeOffer(s.identity))
    responder = new ProbeResponder(s.libp2p, { identity: s.identity, log: s.log.newScope('probe') })
    await s.register(responder)
    arbitration = new ArbitrationServer(s.libp2p, { handler: async (c) => rulingFor(c, s.identity), log: s.log.newScope('arbitrate') })
    await arbitration.start()
    adversaries = await Promise.all(Array.from({ length: ADVERSARIES }, () => loopbackNode()))
    // The honest client keeps a pair session with the server and appends all along.
    const pair = { provider: s.peerId, consumer: client.node.peerId }
    await client.sessions.connect(pair, [dialAddress(s)])
    const log = client.sessions.logOf(pair)
    appender = (async () => {
      for (let i = 0; appending && i < 5_000; i++) {
        await log.append('note', { i })
        await sleep(50)
      }
    })()
  })

  afterAll(async () => {
    appending = false
    await appender
    await arbitration?.stop()
    await stopPeers([client, server])
    await stopAll(adversaries ?? [])
    counts.cutOff = {
      offer: server?.node.offers.stats.cutOff ?? {},
      probe: responder?.stats.cutOff ?? {},
      arbitrate: arbitration?.stats.cutOff ?? {},
      pair: server?.sessions.stats.cutOff ?? {},
    }
    await reportSummary({ suite: 'adversary-slowloris', ...counts })
  })

  it('cuts every slow stream off within its bound while serving the honest client, and ends with none open', async () => {
    const s = server.node
    const target = multiaddr(dialAddress(s))
    const stop = new AbortController()
    const trickles: Promise<number>[] = []
    const header = encode(caseHeader({ pair: pairOf, deal, dispute, appeal: false, size: 1024 * 1024 }, ARBITRATE_PROTOCOL_VERSION))
    // All adversaries at once, each opening its streams one after another.
    const open = async (a: TallyNode) => {
      for (const protocol of PROTOCOLS) {
        for (let i = 0; i < STREAMS[protocol]!; i++) {
          counts.attempts++
          let stream: Stream
          try {
            stream = await a.libp2p.dialProtocol(target, protocol)
          } catch {
            // Refused at negotiation: over the per-connection allowance or the stream rate.
            counts.refusedAtOpen++
            counts.rejected++
            continue
          }
          // Modes: silence; a frame whose bytes trickle in; for arbitration, a valid case header and then nothing (the first
          // adversary trickles its header instead), taking every case slot the server has.
          const mode = protocol === ARBITRATE_PROTOCOL ? (a === adversaries[0] ? 'trickle' : 'header-then-silence') : i % 2 === 0 ? 'silence' : 'trickle'
          streams.push({ protocol, stream, mode })
          if (mode === 'trickle') trickles.push(trickle(stream, Uint8Array.from([...varint(200), ...new Uint8Array(200).fill(0xa1)]), TRICKLE_MS, stop.signal))
          if (mode === 'header-then-silence') {
            try {
              stream.send(frame(header))
            } catch {
              // Already reset: the server refused it over the allowance.
            }
          }
        }
      }
    }
    const held = () => PROTOCOLS.reduce((n, p) => n + openStreams(s, p), 0) - 1
    const sampler = setInterval(() => {
      counts.peakHeld = Math.max(counts.peakHeld, held())
    }, 50)
    await Promise.all(adversaries.map(open))
    clearInterval(sampler)
    counts.peakHeld = Math.max(counts.peakHeld, held())
    // Many held at once (the earliest may be cut off before the last are open, on a loaded machine).
    expect(counts.peakHeld).toBeGreaterThan(ADVERSARIES * 4)

    // While they hang on, the honest client is served on every protocol.
    const offer = await client.node.discovery.fetchOffer(s.peerId, { policy: OPEN_TRUST_POLICY })
    expect(offer.offer.by).toBe(s.peerId)
    const probe = await probeProvider(client.node, s.peerId, { addrs: [dialAddress(s)] })
    expect(probe.identity?.ok).toBe(true)
    // Arbitration: the slots may all be held for now; the honest party is answered once the server has cut the holders off.
    const record = new Uint8Array(300_000).fill(7)
    let answer: Awaited<ReturnType<typeof submitCase>> | undefined
    const until = Date.now() + 40_000
    while (answer === undefined && Date.now() < until) {
      try {
        answer = await submitCase(client.node, target, { pair: pairOf, deal, dispute, appeal: false, record })
      } catch (err) {
        if ((err as { code?: string }).code !== 'busy') throw err
        counts.honestBusy++
        // An honest party retries politely: under the server's case rate (0.5/s).
        await sleep(2_500)
      }
    }
    expect(answer?.type).toBe('ruling')
    const pair = { provider: s.peerId, consumer: client.node.peerId }
    const seq = server.sessions.logOf(pair).heads().consumer?.seq ?? 0
    expect(await waitFor(() => (server.sessions.logOf(pair).heads().consumer?.seq ?? 0) > seq + 5, 10_000)).toBe(true)

    // Every adversary stream is cut within its bound (idle 2-5 s, frame 2-10 s, arbitration chunk idle 10 s); generous wait.
    const fromAdversaries = () => adversaries.reduce((n, a) => n + PROTOCOLS.reduce((m, p) => m + openStreams(s, p, a.peerId), 0), 0)
    const gone = await waitFor(() => fromAdversaries() === 0, 30_000, 200)
    stop.abort()
    await Promise.all(trickles)
    const left = fromAdversaries()
    counts.violations += left
    expect({ left }).toEqual({ left: 0 })
    expect(gone).toBe(true)
    counts.rejected += streams.filter((x) => x.stream.status !== 'open').length
    // Only the honest pair session remains.
    for (const p of PROTOCOLS) expect(openStreams(s, p)).toBe(p === PAIR_PROTOCOL ? 1 : 0)
    expect(arbitration.active).toBe(0)
    // The server says why it cut them off.
    expect(s.offers.stats.cutOff['FrameTimeoutError'] ?? 0).toBeGreaterThan(0)
    expect(responder.stats.cutOff['FrameTimeoutError'] ?? 0).toBeGreaterThan(0)
    expect(arbitration.stats.cutOff['FrameTimeoutError'] ?? 0).toBeGreaterThan(0)
    expect(server.sessions.stats.cutOff['FrameTimeoutError'] ?? 0).toBeGreaterThan(0)
    await client.sessions.waitForSync(pair, 10_000)
  })
})

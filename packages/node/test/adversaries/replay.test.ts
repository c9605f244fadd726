/**
 * A replaying peer. An honest provider P and consumer C settle a real deal
 * (proposal to acknowledged voucher) over live pair sessions, each vetting
 * the other's entries with the deal reducer. C's outbound pair stream is
 * recorded byte for byte. Then adversaries built from our own packages
 * replay: the whole captured transcript from a stranger's connection, the
 * same transcript from a second connection under C's own key, C's old
 * entries (the voucher among them) re-sent on a fresh well-formed session,
 * and finally the voucher's body re-issued as a new entry. P must store no
 * replayed entry, stay in sync with C, and count the payment once.
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { CID, EntryBlock } from '@tally/core'
import { Identity } from '@tally/core'
import { buildAck, buildEvaluation, buildObservation, buildUsage, buildVoucher, type DealState, recomputeBalances, signAttestationBody } from '@tally/deal'
import { type PairDescriptor, pairIdOf, signEntryFast } from '@tally/lineage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PAIR_PROTOCOL, type PairSessionEvent, PairSessions, type PairSessionsNode, type TallyNode } from '../../src/index.ts'
import { dialAddress, loopbackNode, waitFor } from '../helpers.ts'
import { type Peer, pairPeer, stopPeers, TEST_LIMITS, tempLevelStore } from '../pair-helpers.ts'
import {
  attestationBody,
  captureLog,
  dealStateOf,
  dealTerms,
  dealValidator,
  EPOCH_MS,
  epochObservation,
  LARGE,
  PAIR_STREAM_PACE_MS,
  rawPairClient,
  reportSummary,
  scaled,
  sleep,
  usageFigures,
  WORKLOAD,
} from './helpers.ts'

/** libp2p for a PairSessions whose outbound streams copy every byte they send into `transcript`. */
function recording(libp2p: Libp2p, transcript: Uint8Array[]): PairSessionsNode['libp2p'] {
  const dialProtocol = async (...args: Parameters<Libp2p['dialProtocol']>): Promise<Stream> => {
    const stream = await libp2p.dialProtocol(...args)
    const send = stream.send.bind(stream)
    stream.send = (data) => {
      transcript.push(data instanceof Uint8Array ? data.slice() : data.subarray())
      return send(data)
    }
    return stream
  }
  return {
    handle: libp2p.handle.bind(libp2p),
    unhandle: libp2p.unhandle.bind(libp2p),
    peerStore: libp2p.peerStore,
    peerRouting: libp2p.peerRouting,
    dialProtocol,
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

describe('a peer replaying entries and whole sessions', () => {
  let p: Peer
  let removeStore: () => Promise<void>
  let cNode: TallyNode
  let cSessions: PairSessions
  const cEvents: PairSessionEvent[] = []
  let pair: PairDescriptor
  let deal: CID
  const transcript: Uint8Array[] = []
  const lines: string[] = []
  const others: TallyNode[] = []
  const counts = { attempts: 0, rejected: 0, violations: 0, duplicatesAcked: 0, cutOff: {} as Record<string, number> }
  const monitors = [Identity.generate(), Identity.generate(), Identity.generate()]

  /** Both chains as P holds them. */
  async function pHolds(): Promise<string[]> {
    const out: string[] = []
    const id = pairIdOf(pair)
    for (const author of [pair.provider, pair.consumer]) {
      for await (const { seq, cid } of p.store.cids(id, author, 1, Number.MAX_SAFE_INTEGER)) out.push(`${author.slice(-6)} ${seq} ${cid}`)
    }
    return out
  }

  async function pDeal(): Promise<DealState> {
    const { state, problems } = await dealStateOf(p.sessions.logOf(pair))
    expect(problems).toEqual([])
    return state.deals.get(deal.toString())!
  }

  async function synced(): Promise<void> {
    await Promise.all([p.sessions.waitForSync(pair, 20_000), cSessions.waitForSync(pair, 20_000)])
    expect(p.sessions.logOf(pair).heads()).toEqual(cSessions.logOf(pair).heads())
  }

  beforeAll(async () => {
    const level = await tempLevelStore()
    removeStore = level.remove
    p = await pairPeer({
      store: level.store,
      sessions: { log: captureLog(lines), accept: () => true, validate: (d) => dealValidator(() => p.sessions.logOf(d)) },
    })
    // C's id sorts before P's, so a stream C opens always wins the simultaneous-open rule against one P opens:
    // the replays below, under C's key, meet P's full checks rather than a DuplicateSessionError.
    let cId = Identity.generate()
    while (cId.peerId >= p.node.peerId) cId = Identity.generate()
    cNode = await loopbackNode({ identity: cId })
    const { MemoryStore } = await import('@tally/lineage')
    cSessions = new PairSessions({
      node: { identity: cNode.identity, libp2p: recording(cNode.libp2p, transcript) },
      store: new MemoryStore(),
      validate: (d) => dealValidator(() => cSessions.logOf(d)),
      limits: TEST_LIMITS,
      onEvent: (e) => cEvents.push(e),
    })
    await cSessions.start()
    pair = { provider: p.node.peerId, consumer: cNode.peerId }
    await cSessions.connect(pair, [dialAddress(p.node)])
    const plog = p.sessions.logOf(pair)
    const clog = cSessions.logOf(pair)

    // A one-epoch deal, settled: proposal, acceptance, attestation, manifest, usage, two named monitors' observations,
    // the evaluation, the voucher and its acknowledgement, each party vetting the other's entries as they arrive.
    const t0 = Date.now() - 10 * EPOCH_MS
    const proposal = await clog.append(
      'proposal',
      {
        terms: dealTerms(
          monitors.map((m) => m.peerId),
          Identity.generate().peerId,
        ),
      },
      { time: t0 - 2_000 },
    )
    deal = proposal.cid
    await synced()
    await plog.append('acceptance', { deal, offer: proposal.cid }, { time: t0 })
    await plog.append('attestation', { deal, attestation: signAttestationBody(p.node.identity, attestationBody(t0)) }, { time: t0 + 2 })
    await synced()
    await clog.append('manifest', { deal, workload: WORKLOAD }, { time: t0 + 3 })
    await synced()
    const end = t0 + EPOCH_MS
    await plog.append('usage', buildUsage(deal, 0, usageFigures()), { time: end })
    await plog.append('observation', buildObservation(deal, epochObservation(monitors[0]!, pair.provider, t0, 100, 1)), { time: end + 100 })
    await synced()
    await clog.append('observation', buildObservation(deal, epochObservation(monitors[1]!, pair.provider, t0, 100, 1)), { time: end + 200 })
    const ev = buildEvaluation((await dealStateOf(clog)).state, deal, 0)
    expect(ev.verdict).toBe('performed')
    await clog.append('evaluation', ev, { time: end + 400 })
    await clog.append('voucher', buildVoucher((await dealStateOf(clog)).state, deal), { time: end + 500 })
    await synced()
    await plog.append('ack', buildAck((await dealStateOf(plog)).state, deal), { time: end + 600 })
    await synced()
    const settled = await pDeal()
    expect({ paid: settled.paid, acknowledged: settled.acknowledged, vouchers: settled.vouchers.size }).toEqual({ paid: 1000, acknowledged: 1000, vouchers: 1 })
    expect(transcript.length).toBeGreaterThan(5)
  })

  afterAll(async () => {
    await cSessions?.stop()
    await stopPeers([p])
    await removeStore?.()
    await Promise.allSettled([cNode?.stop(), ...others.map((o) => o.stop())])
    counts.cutOff = p?.sessions.stats.cutOff ?? {}
    await reportSummary({ suite: 'adversary-replay', ...counts })
  })

  const cutOff = (peer: string, code?: string) =>
    p.events.filter((e) => e.type === 'cut-off' && e.peer === peer && (code === undefined || e.code === code)).length

  it('refuses a captured session replayed from a stranger’s connection', async () => {
    const before = await pHolds()
    for (let i = 0; i < scaled(2); i++) {
      const stranger = await loopbackNode()
      others.push(stranger)
      const stream = await stranger.libp2p.dialProtocol(multiaddr(dialAddress(p.node)), PAIR_PROTOCOL)
      counts.attempts++
      stream.send(concat(transcript))
      // The hello names a pair whose consumer is C, and the connection is authenticated as someone else.
      expect(await waitFor(() => cutOff(stranger.peerId, 'PairHelloError') === 1, 5_000)).toBe(true)
      counts.rejected++
      await stranger.stop()
    }
    expect(await pHolds()).toEqual(before)
    await synced()
  })

  it('stores nothing from the same transcript replayed under C’s own key on a second connection, and resyncs with C', {
    timeout: LARGE ? 240_000 : 60_000,
  }, async () => {
    const before = await pHolds()
    const paid = (await pDeal()).paid
    for (let i = 0; i < scaled(2); i++) {
      // C's key, another process and connection: what a thief of C's key, or C itself, could replay.
      await sleep(PAIR_STREAM_PACE_MS)
      const twin = await loopbackNode({ identity: cNode.identity })
      others.push(twin)
      const stream = await twin.libp2p.dialProtocol(multiaddr(dialAddress(p.node)), PAIR_PROTOCOL)
      const cuts = cutOff(cNode.peerId)
      counts.attempts++
      stream.send(concat(transcript))
      // The replayed acks name P's entries at positions of the old session: refused, or, where they happen to match,
      // a session that carries nothing new.
      await waitFor(() => cutOff(cNode.peerId) > cuts || stream.status !== 'open', 1_500)
      counts.rejected++
      expect(await pHolds()).toEqual(before)
      await twin.stop()
    }
    expect((await pDeal()).paid).toBe(paid)
    await synced()
  })

  it('acknowledges old entries re-sent on a fresh session as duplicates, storing nothing new', async () => {
    const before = await pHolds()
    const paid = (await pDeal()).paid
    const old: EntryBlock[] = []
    for await (const b of cSessions.logOf(pair).range(pair.consumer, 1)) old.push(b)
    const voucher = old.find((b) => b.entry.kind === 'voucher')!
    const twin = await loopbackNode({ identity: cNode.identity })
    others.push(twin)
    const heads = cSessions.logOf(pair).heads()
    const client = await rawPairClient(twin, p.node, pair)
    await client.handshake({ provider: wire(heads.provider), consumer: wire(heads.consumer) })
    const frames = [old.map((b) => b.bytes), [voucher.bytes], [voucher.bytes], old.slice(0, 3).map((b) => b.bytes)]
    for (let r = 0; r < scaled(1); r++) {
      for (const blocks of frames) {
        counts.attempts += blocks.length
        await client.send({ type: 'entries', blocks, head: heads.consumer!.seq })
        const ack = await client.next('ack')
        // Acknowledged (the entries are held) without anything being stored again.
        expect(ack?.seq).toBe(decodeSeq(blocks.at(-1)!, old))
        counts.duplicatesAcked += blocks.length
        counts.rejected += blocks.length
      }
    }
    client.frames.abort(new Error('done'))
    await twin.stop()
    expect(await pHolds()).toEqual(before)
    const after = await pDeal()
    expect(after.paid).toBe(paid)
    expect(after.vouchers.size).toBe(1)
    await synced()
  })

  it('counts a voucher re-issued as a new entry once: the cumulative amount does not move', async () => {
    // C turns adversary: its honest service stops, and a raw client under its key signs the last voucher's body again as a new entry.
    const clog = cSessions.logOf(pair)
    await cSessions.stop()
    const mine: EntryBlock[] = []
    for await (const b of clog.range(pair.consumer, 1)) mine.push(b)
    const last = mine.at(-1)!
    const voucher = mine.findLast((b) => b.entry.kind === 'voucher')!
    const heads = p.sessions.logOf(pair).heads()
    const reissued = signEntryFast(cNode.identity, {
      v: 1,
      pair: last.entry.pair,
      author: pair.consumer,
      seq: last.entry.seq + 1,
      prev: last.cid,
      seen: heads.provider!.cid,
      time: Math.max(Date.now() - EPOCH_MS, last.entry.time + 1),
      kind: 'voucher',
      body: voucher.entry.body,
    })
    const twin = await loopbackNode({ identity: cNode.identity })
    others.push(twin)
    const client = await rawPairClient(twin, p.node, pair)
    await client.handshake({ provider: wire(heads.provider), consumer: { seq: reissued.entry.seq, cid: reissued.cid } })
    counts.attempts++
    await client.send({ type: 'entries', blocks: [reissued.bytes], head: reissued.entry.seq })
    const ack = await client.next('ack')
    client.frames.abort(new Error('done'))
    const d = await pDeal()
    const balances = recomputeBalances((await dealStateOf(p.sessions.logOf(pair))).state)
    // Stored or refused, the payment is counted once.
    expect(d.paid).toBe(1000)
    expect(balances['USD']?.paid).toBe(1000)
    if (ack === undefined) counts.rejected++
    else expect(d.vouchers.size).toBe(2)
    if (d.paid !== 1000) counts.violations++
  })
})

/** A head as hello carries it. */
function wire(head: { seq: number; cid: CID } | null): { seq: number; cid: CID } | null {
  return head === null ? null : { seq: head.seq, cid: head.cid }
}

/** Seq of the entry whose bytes are `bytes`, among `blocks`. */
function decodeSeq(bytes: Uint8Array, blocks: readonly EntryBlock[]): number {
  return blocks.find((b) => b.bytes.byteLength === bytes.byteLength && b.bytes.every((x, i) => x === bytes[i]))!.entry.seq
}

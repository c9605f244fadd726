import { type CID, decode } from '@tally/core'
import { afterEach, describe, expect, it } from 'vitest'
import { dialAddress, waitFor } from './helpers.ts'
import { chainCids, type Peer, pairOf, pairPeer, stopPeers, tempLevelStore } from './pair-helpers.ts'

describe('pair sessions between two loopback nodes', () => {
  const peers: Peer[] = []
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    await stopPeers(peers.splice(0))
    for (const c of cleanups.splice(0)) await c()
  })

  it('replicates both chains live and acknowledges only durable entries', async () => {
    const p = await pairPeer()
    const c = await pairPeer()
    peers.push(p, c)
    const pair = pairOf(p, c)
    await p.sessions.add(pair)
    const status = await c.sessions.connect(pair, [dialAddress(p.node)])
    expect(status.connected).toBe(true)
    const plog = p.sessions.logOf(pair)
    const clog = c.sessions.logOf(pair)
    const a = await plog.append('note', { n: 1 })
    await p.sessions.awaitRemoteDurable(pair, a.cid, 5_000)
    // acknowledged means stored at the consumer
    expect((await clog.get(a.cid))?.entry.seq).toBe(2)
    const b = await clog.append('note', { n: 2 })
    expect(b.entry.seen?.equals(a.cid)).toBe(true)
    await c.sessions.awaitRemoteDurable(pair, b.cid, 5_000)
    for (let i = 0; i < 20; i++) await (i % 2 === 0 ? plog : clog).append('note', { i })
    await Promise.all([p.sessions.waitForSync(pair, 5_000), c.sessions.waitForSync(pair, 5_000)])
    expect(await chainCids(p.store, pair)).toEqual(await chainCids(c.store, pair))
    expect(plog.heads()).toEqual(clog.heads())
    const st = p.sessions.status(pair)
    expect(st).toMatchObject({ connected: true, synced: true, lag: { toRemote: 0, fromRemote: 0 } })
    expect(st.counters.acksIn).toBeGreaterThan(0)
    // The receive position was written in the same batch as the entries it names.
    const recv = decode((await c.store.getMeta(`tally/pair-session/recv/${st.pairId}`))!) as { seq: number; cid: CID; peer: string }
    expect(recv.peer).toBe(p.node.peerId)
    expect(recv.seq).toBe(clog.heads().provider!.seq)
    expect(recv.cid.equals(clog.heads().provider!.cid)).toBe(true)
    // Only our own durable entries can be awaited; an unacknowledged one times out.
    await expect(p.sessions.awaitRemoteDurable(pair, b.cid, 100)).rejects.toMatchObject({ name: 'UnknownEntryError' })
    await p.node.libp2p.hangUp(c.node.libp2p.peerId)
    await c.sessions.stop()
    const lone = await plog.append('note', { alone: true })
    await expect(p.sessions.awaitRemoteDurable(pair, lone.cid, 200)).rejects.toMatchObject({ name: 'RemoteDurableTimeoutError' })
    await expect(p.sessions.waitForSync(pair, 200)).rejects.toMatchObject({ name: 'SyncTimeoutError' })
  })

  it('catches up after a disconnect and after a restart of either side', async () => {
    const tmp = await tempLevelStore()
    cleanups.push(tmp.remove)
    const p = await pairPeer({ store: tmp.store })
    const c = await pairPeer()
    peers.push(p, c)
    const pair = pairOf(p, c)
    await p.sessions.add(pair)
    await c.sessions.connect(pair, [dialAddress(p.node)])
    const plog = () => p.sessions.logOf(pair)
    const clog = () => c.sessions.logOf(pair)
    await plog().append('note', { n: 0 })
    await c.sessions.waitForSync(pair, 5_000)

    // The connection drops: both sides redial by themselves and catch up.
    await p.node.libp2p.hangUp(c.node.libp2p.peerId)
    for (let i = 0; i < 30; i++) await plog().append('note', { i })
    for (let i = 0; i < 10; i++) await clog().append('note', { i })
    await Promise.all([p.sessions.waitForSync(pair, 10_000), c.sessions.waitForSync(pair, 10_000)])
    expect(await chainCids(p.store, pair)).toEqual(await chainCids(c.store, pair))

    // The provider's service restarts (its pair registration and the consumer's address come from the store).
    await p.sessions.stop()
    for (let i = 0; i < 15; i++) await clog().append('note', { offline: i })
    await p.restart()
    expect(p.sessions.list().map((s) => s.pairId)).toEqual([c.sessions.status(pair).pairId])
    await Promise.all([p.sessions.waitForSync(pair, 10_000), c.sessions.waitForSync(pair, 10_000)])
    expect(await chainCids(p.store, pair)).toEqual(await chainCids(c.store, pair))

    // The consumer's service restarts while the provider appends.
    await c.sessions.stop()
    for (let i = 0; i < 15; i++) await plog().append('note', { away: i })
    await c.restart()
    await Promise.all([p.sessions.waitForSync(pair, 10_000), c.sessions.waitForSync(pair, 10_000)])
    const cids = await chainCids(c.store, pair)
    expect(cids).toEqual(await chainCids(p.store, pair))
    expect(cids.provider).toHaveLength(1 + 1 + 30 + 15)
    expect(cids.consumer).toHaveLength(1 + 10 + 15)
  })

  it('catches up 5,000 entries in bounded, pipelined batches', async () => {
    const limits = { maxBatchEntries: 200, window: 3 }
    const p = await pairPeer({ sessions: { limits } })
    const c = await pairPeer({ sessions: { limits } })
    peers.push(p, c)
    const pair = pairOf(p, c)
    await p.sessions.add(pair)
    const plog = p.sessions.logOf(pair)
    const appends = []
    for (let i = 0; i < 5_000; i++) appends.push(plog.append('note', { i }))
    await Promise.all(appends)
    await c.sessions.connect(pair, [dialAddress(p.node)])
    await c.sessions.waitForSync(pair, 30_000)
    const st = c.sessions.status(pair)
    expect(st.local.provider).toBe(5_001)
    expect(st.counters.entriesIn).toBe(5_001)
    // 5,001 entries in frames of at most 200: at least 26 frames, each acknowledged after its ingest
    expect(st.counters.framesIn).toBeGreaterThanOrEqual(26)
    expect(st.counters.acksOut).toBe(st.counters.framesIn)
    // Keepalive frames may still be in flight, so the sender can count more than the receiver.
    expect(p.sessions.status(pair).counters.framesOut).toBeGreaterThanOrEqual(st.counters.framesIn)
    expect(await chainCids(c.store, pair)).toEqual(await chainCids(p.store, pair))
  })

  it('resolves a simultaneous open to one stream on both sides', async () => {
    const p = await pairPeer()
    const c = await pairPeer()
    peers.push(p, c)
    const pair = pairOf(p, c)
    // both know each other's address and dial at once, several times over
    for (let round = 0; round < 4; round++) {
      await Promise.all([
        p.sessions.connect(pair, [dialAddress(c.node)]).catch(() => undefined),
        c.sessions.connect(pair, [dialAddress(p.node)]).catch(() => undefined),
      ])
      // settles on one stream: outbound on one side, inbound on the other (a losing stream may live a moment longer)
      const directions = () => [p.sessions.status(pair).session?.direction, c.sessions.status(pair).session?.direction].sort().join()
      expect(await waitFor(() => directions() === 'inbound,outbound', 5_000)).toBe(true)
      await p.sessions.logOf(pair).append('note', { round })
      await c.sessions.logOf(pair).append('note', { round })
      await Promise.all([p.sessions.waitForSync(pair, 5_000), c.sessions.waitForSync(pair, 5_000)])
      // exactly one pair stream per side
      const streams = (node: Peer) =>
        node.node.libp2p.getConnections().flatMap((conn) => conn.streams.filter((s) => s.protocol === '/tally/pair/1.0.0' && s.status === 'open'))
      expect(await waitFor(() => streams(p).length === 1 && streams(c).length === 1, 3_000)).toBe(true)
      await p.node.libp2p.hangUp(c.node.libp2p.peerId)
      await waitFor(() => !p.sessions.status(pair).connected && !c.sessions.status(pair).connected, 3_000)
    }
    expect(await chainCids(p.store, pair)).toEqual(await chainCids(c.store, pair))
    // the races did happen, and the lower peer id's stream won them
    expect(p.sessions.stats.raced + c.sessions.stats.raced).toBeGreaterThan(0)
    const lower = p.node.peerId < c.node.peerId ? p : c
    const wonByLower = lower.events.filter((e) => e.type === 'session-open' && e.direction === 'outbound').length
    expect(wonByLower).toBeGreaterThanOrEqual(2)
  })
})

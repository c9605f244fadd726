/**
 * An equivocating writer over a live pair session. The adversary is a
 * provider built from our own packages: a real PairLog for its chain, and
 * lineage's signer (signEntryFast) to sign a second, different entry with a
 * seq it already sent, pushed with the pair-session checks removed. The
 * honest consumer must refuse the fork, keep the entry it holds, and turn
 * the two signed entries into an equivocation proof and a warrant that it
 * keeps in its store, gossips to others, and that anyone can check offline.
 */
import { type EntryBlock, Identity } from '@tally/core'
import {
  decodeEquivocationProof,
  encodeEquivocationProof,
  MemoryStore,
  type PairDescriptor,
  PairLog,
  pairIdOf,
  signEntryFast,
  verifyEquivocationProof,
} from '@tally/lineage'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PairSessionEvent, type TallyNode, verifyWarrant, WARRANT_META_PREFIX, WARRANT_TOPIC, WarrantGossip } from '../../src/index.ts'
import { dialAddress, loopbackNode, waitFor } from '../helpers.ts'
import { type Peer, pairPeer, stopPeers, tempLevelStore } from '../pair-helpers.ts'
import { captureLog, PAIR_STREAM_PACE_MS, rawPairClient, reportSummary, scaled, sleep } from './helpers.ts'

async function chain(log: PairLog): Promise<EntryBlock[]> {
  const out: EntryBlock[] = []
  for await (const b of log.range(log.me, 1)) out.push(b)
  return out
}

/** The adversary's second entry at `at`'s seq: same chain position, different body, validly signed. */
function fork(id: Identity, at: EntryBlock, body: unknown): EntryBlock {
  const e = at.entry
  return signEntryFast(id, { v: 1, pair: e.pair, author: e.author, seq: e.seq, prev: e.prev, seen: e.seen, time: e.time + 1, kind: e.kind, body })
}

/** The next entry after `prev` on the adversary's forked branch. */
function extend(id: Identity, prev: EntryBlock, body: unknown): EntryBlock {
  const e = prev.entry
  return signEntryFast(id, { v: 1, pair: e.pair, author: e.author, seq: e.seq + 1, prev: prev.cid, seen: e.seen, time: e.time + 1, kind: 'note', body })
}

describe('an equivocating provider on a live pair session', () => {
  let h: Peer
  let removeStore: () => Promise<void>
  let hWarrants: WarrantGossip
  let witness: TallyNode
  let wWarrants: WarrantGossip
  const lines: string[] = []
  const adversaries: TallyNode[] = []
  const counts = { attempts: 0, rejected: 0, violations: 0, proofs: 0, warrants: 0, cutOff: {} as Record<string, number> }

  beforeAll(async () => {
    const level = await tempLevelStore()
    removeStore = level.remove
    // H's pair sessions report a counterparty's fork to H's warrant service, which keeps warrants in H's store.
    let warrants: WarrantGossip | undefined
    h = await pairPeer({
      store: level.store,
      sessions: { log: captureLog(lines), accept: () => true, warrants: { reportEntries: (x, y) => warrants!.reportEntries(x, y) } },
    })
    hWarrants = new WarrantGossip({ gossip: h.node.gossip, identity: h.node.identity, log: h.node.log.newScope('warrant'), store: level.store })
    warrants = hWarrants
    await h.node.register(hWarrants)
    witness = await loopbackNode()
    wWarrants = new WarrantGossip({ gossip: witness.gossip, identity: witness.identity, log: witness.log.newScope('warrant') })
    await witness.register(wWarrants)
    await witness.libp2p.dial(multiaddr(dialAddress(h.node)))
    expect(await waitFor(() => h.node.gossip.meshPeers(WARRANT_TOPIC).includes(witness.peerId), 15_000)).toBe(true)
  })

  afterAll(async () => {
    await stopPeers([h])
    await removeStore?.()
    await Promise.allSettled([witness?.stop(), ...adversaries.map((a) => a.stop())])
    counts.proofs = h?.sessions.stats.equivocations ?? 0
    counts.warrants = hWarrants?.counters.issued ?? 0
    counts.cutOff = h?.sessions.stats.cutOff ?? {}
    await reportSummary({ suite: 'adversary-equivocation', ...counts })
  })

  /** A fresh adversarial provider with an honest-looking chain of `n` entries in a real pair log. */
  async function adversary(n: number) {
    const m = await loopbackNode()
    adversaries.push(m)
    const pair: PairDescriptor = { provider: m.peerId, consumer: h.node.peerId }
    const mlog = await PairLog.open(new MemoryStore(), pair, m.identity)
    for (let i = 1; i < n; i++) await mlog.append('note', { n: i })
    return { m, pair, mlog, blocks: await chain(mlog) }
  }

  /** What H holds of the adversary's chain: seq -> CID. */
  async function held(pair: PairDescriptor): Promise<string[]> {
    const out: string[] = []
    for await (const { seq, cid } of h.store.cids(pairIdOf(pair), pair.provider, 1, Number.MAX_SAFE_INTEGER)) out.push(`${seq} ${cid}`)
    return out
  }

  const cutOffs = (peer: string, code: string) => h.events.filter((e) => e.type === 'cut-off' && e.peer === peer && e.code === code).length
  const equivocations = (peer: string) =>
    h.events.filter((e): e is Extract<PairSessionEvent, { type: 'equivocation' }> => e.type === 'equivocation' && e.peer === peer)

  it('refuses a second entry #N sent after the first on the same session, keeps the first, and warrants the writer', async () => {
    const { m, pair, blocks } = await adversary(3)
    const client = await rawPairClient(m, h.node, pair)
    expect((await client.handshake()).fromSeq).toBe(1)
    await client.send({ type: 'entries', blocks: blocks.map((b) => b.bytes), head: 3 })
    const ack = await client.next('ack')
    expect(ack?.seq).toBe(3)
    const before = await held(pair)
    expect(before).toHaveLength(3)

    const forked = fork(m.identity, blocks[2]!, { n: 2, paid: 'twice' })
    counts.attempts++
    await client.send({ type: 'entries', blocks: [forked.bytes], head: 3 })
    expect(await waitFor(() => cutOffs(m.peerId, 'EquivocationError') === 1, 5_000)).toBe(true)
    counts.rejected++

    // The first entry #3 stays; the fork is not stored anywhere.
    expect(await held(pair)).toEqual(before)
    expect(await h.store.getBlock(forked.cid)).toBeUndefined()
    // A proof that anyone can check with no other input: both entries, both signatures, same (pair, author, seq).
    const [event] = equivocations(m.peerId)
    expect(event?.seq).toBe(3)
    const proof = decodeEquivocationProof(encodeEquivocationProof(event!.proof))
    const shown = verifyEquivocationProof(proof)
    expect(shown.author).toBe(m.peerId)
    expect([shown.a.cid.toString(), shown.b.cid.toString()].sort()).toEqual([blocks[2]!.cid.toString(), forked.cid.toString()].sort())
    expect(lines.some((l) => l.includes(m.peerId) && l.includes('signed two different entries #3'))).toBe(true)

    // H issued a warrant, kept it in its store, and the witness received it over gossip.
    const offence = `entry/${pairIdOf(pair)}/${m.peerId}/3`
    expect(await waitFor(async () => (await h.store.getMeta(`${WARRANT_META_PREFIX}${offence}`)) !== undefined, 5_000)).toBe(true)
    const stored = (await h.store.getMeta(`${WARRANT_META_PREFIX}${offence}`))!
    const warrant = verifyWarrant(stored)
    expect({ offender: warrant.offender, reporter: warrant.reporter, offence: warrant.offence }).toEqual({
      offender: m.peerId,
      reporter: h.node.peerId,
      offence,
    })
    expect(await waitFor(() => wWarrants.registry.standing(m.peerId) !== undefined, 10_000)).toBe(true)
    expect(verifyWarrant(wWarrants.registry.standing(m.peerId)!.warrants[0]!.bytes).offence).toBe(offence)
    if ((await held(pair)).join() !== before.join()) counts.violations++
  })

  it('refuses the fork again on a new session: no second warrant for the same offence; an unprovable fork is cut off as a broken link', async () => {
    const { m, pair, blocks } = await adversary(3)
    const first = await rawPairClient(m, h.node, pair)
    await first.handshake()
    await first.send({ type: 'entries', blocks: blocks.map((b) => b.bytes), head: 3 })
    expect((await first.next('ack'))?.seq).toBe(3)
    first.frames.abort(new Error('adversary reconnects'))
    const before = await held(pair)
    const issued = hWarrants.counters.issued

    // Its forked branch: B3 (instead of A3), B4 on top.
    const b3 = fork(m.identity, blocks[2]!, { n: 2, branch: 'b' })
    const b4 = extend(m.identity, b3, { n: 3, branch: 'b' })
    // Only B4: H asks for #4 and gets an entry whose prev is not its #3. No proof is possible (H never saw B3): refused all the same.
    const second = await rawPairClient(m, h.node, pair)
    expect((await second.handshake({ provider: { seq: 4, cid: b4.cid }, consumer: null })).fromSeq).toBe(4)
    counts.attempts++
    await second.send({ type: 'entries', blocks: [b4.bytes], head: 4 })
    expect(await waitFor(() => cutOffs(m.peerId, 'BrokenLinkError') === 1, 5_000)).toBe(true)
    counts.rejected++
    expect(equivocations(m.peerId)).toHaveLength(0)

    // B3 and B4: B3 conflicts with the held #3, so the proof comes back.
    for (let i = 0; i < scaled(2); i++) {
      await sleep(PAIR_STREAM_PACE_MS)
      const again = await rawPairClient(m, h.node, pair)
      await again.handshake({ provider: { seq: 4, cid: b4.cid }, consumer: null })
      counts.attempts++
      await again.send({ type: 'entries', blocks: [b3.bytes, b4.bytes], head: 4 })
      expect(await waitFor(() => cutOffs(m.peerId, 'EquivocationError') === i + 1, 5_000)).toBe(true)
      counts.rejected++
    }
    expect(equivocations(m.peerId).length).toBe(scaled(2))
    expect(await waitFor(() => hWarrants.registry.standing(m.peerId) !== undefined, 5_000)).toBe(true)
    // One offence, one warrant, however often the fork is sent.
    expect(hWarrants.counters.issued).toBe(issued + 1)
    expect(hWarrants.registry.standing(m.peerId)!.warrants).toHaveLength(1)
    expect(await held(pair)).toEqual(before)
    if ((await held(pair)).join() !== before.join()) counts.violations++
  })

  it('refuses a batch that carries both versions of one entry and stores nothing of it', async () => {
    const { m, pair, blocks } = await adversary(2)
    const client = await rawPairClient(m, h.node, pair)
    await client.handshake()
    const forked = fork(m.identity, blocks[1]!, { n: 1, branch: 'b' })
    counts.attempts++
    await client.send({ type: 'entries', blocks: [blocks[0]!.bytes, blocks[1]!.bytes, forked.bytes], head: 2 })
    expect(await waitFor(() => cutOffs(m.peerId, 'EquivocationError') === 1, 5_000)).toBe(true)
    counts.rejected++
    expect(await held(pair)).toEqual([])
    expect(equivocations(m.peerId)[0]?.seq).toBe(2)
    expect(await waitFor(() => wWarrants.registry.standing(m.peerId) !== undefined, 10_000)).toBe(true)
    if ((await held(pair)).length > 0) counts.violations++
  })

  it('keeps warrants across a restart of the warrant service, checkable from the stored bytes alone', async () => {
    const stored: string[] = []
    for await (const { value } of h.store.metaEntries(WARRANT_META_PREFIX)) stored.push(verifyWarrant(value).offender)
    expect(stored.sort()).toEqual([adversaries[0]!.peerId, adversaries[1]!.peerId, adversaries[2]!.peerId].sort())
    const again = new WarrantGossip({ gossip: h.node.gossip, identity: h.node.identity, log: h.node.log.newScope('warrant'), store: h.store })
    hWarrants.stop()
    await again.start()
    try {
      for (const a of adversaries) expect(again.registry.standing(a.peerId)).toBeDefined()
      expect(again.registry.standing(Identity.generate().peerId)).toBeUndefined()
    } finally {
      again.stop()
    }
  })
})

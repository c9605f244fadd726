/**
 * Bad peers on /tally/pair/1.0.0. The honest node H serves an honest
 * consumer C (which keeps appending throughout) and, one case at a time, an
 * adversary built from our own packages with the checks removed: it writes
 * raw frames on a pair stream. Each adversary must be cut off with a logged
 * reason, H must store nothing from it, and C must keep syncing.
 */
import { format } from 'node:util'
import type { Logger, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { CID, encode, type EntryBlock, Identity, TallyError } from '@tally/core'
import { MemoryStore, type PairDescriptor, PairLog, pairIdOf, scanEnvelope } from '@tally/lineage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PAIR_PROTOCOL, type TallyNode } from '../src/index.ts'
import { dialAddress, loopbackNode, waitFor } from './helpers.ts'
import { type Peer, pairPeer, stopPeers } from './pair-helpers.ts'

class IllegalTransitionError extends TallyError {}

function captureLog(lines: string[]): Logger {
  const log = Object.assign((fmt: unknown, ...args: unknown[]) => void lines.push(format(fmt, ...args)), {
    error: (fmt: unknown, ...args: unknown[]) => void lines.push(format(fmt, ...args)),
    trace: () => undefined,
    enabled: true,
    newScope: () => log,
  }) as Logger
  return log
}

const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

function frame(payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint(payload.byteLength), ...payload])
}

/** Bytes of `b` with one signature byte flipped: still canonical, no longer valid. */
function badSignature(b: EntryBlock): Uint8Array {
  const s = scanEnvelope(b.bytes)!
  const out = b.bytes.slice()
  out[s.sigStart + 3] = out[s.sigStart + 3]! ^ 0x01
  return out
}

async function chain(log: PairLog): Promise<EntryBlock[]> {
  const out: EntryBlock[] = []
  for await (const b of log.range(log.me, 1)) out.push(b)
  return out
}

/** What H's store holds of `pair`: heads, entries and every meta key naming the pair. */
async function holdings(h: Peer, pair: PairDescriptor): Promise<string[]> {
  const id = pairIdOf(pair)
  const out: string[] = []
  for (const author of [pair.provider, pair.consumer]) {
    out.push(`head ${author} ${(await h.store.getHead(id, author))?.seq ?? 0}`)
    for await (const { seq, cid } of h.store.cids(id, author, 1, Number.MAX_SAFE_INTEGER)) out.push(`entry ${seq} ${cid}`)
  }
  for await (const { key } of h.store.metaEntries('')) if (key.includes(id.toString())) out.push(`meta ${key}`)
  for await (const p of h.store.pairs()) if (p.id.equals(CID.parse(id.toString()))) out.push('pair registered')
  return out
}

describe('pair sessions under bad input', () => {
  let h: Peer
  let c: Peer
  let honestPair: PairDescriptor
  const lines: string[] = []
  const adversaries: TallyNode[] = []
  let appending = true
  let appender: Promise<void> | undefined

  beforeAll(async () => {
    h = await pairPeer({
      sessions: {
        log: captureLog(lines),
        accept: () => true,
        // a stream allowance that a sequential opener exhausts even on a slow machine
        limits: { streamRate: { perSecond: 0.2, burst: 6 } },
        validate: () => async (added) => {
          for (const b of added) {
            const body = b.entry.body as { illegal?: boolean; slow?: boolean } | null
            if (body?.slow === true) await new Promise((r) => setTimeout(r, 300))
            if (body?.illegal === true) throw new IllegalTransitionError(`entry #${b.entry.seq} is not a legal transition`)
          }
        },
      },
    })
    c = await pairPeer()
    honestPair = { provider: h.node.peerId, consumer: c.node.peerId }
    await c.sessions.connect(honestPair, [dialAddress(h.node)])
    const clog = c.sessions.logOf(honestPair)
    appender = (async () => {
      for (let i = 0; appending && i < 2_000; i++) {
        await clog.append('note', { i })
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
  })

  afterAll(async () => {
    appending = false
    await appender
    await stopPeers([h, c])
    await Promise.allSettled(adversaries.map((a) => a.stop()))
  })

  /** A fresh adversary, its pair with H, and a raw pair stream to H. */
  async function adversary() {
    const m = await loopbackNode()
    adversaries.push(m)
    const pair: PairDescriptor = { provider: h.node.peerId, consumer: m.peerId }
    const stream: Stream = await m.libp2p.dialProtocol(multiaddr(dialAddress(h.node)), PAIR_PROTOCOL)
    const mlog = await PairLog.open(new MemoryStore(), pair, m.identity)
    const send = (bytes: Uint8Array) => void stream.send(bytes)
    const msg = (value: unknown) => send(frame(encode(value)))
    const hello = (p: PairDescriptor = pair) => msg({ type: 'hello', v: 1, pair: p, heads: { provider: null, consumer: null }, window: 8 })
    return { m, pair, stream, mlog, send, msg, hello, before: await holdings(h, pair) }
  }

  /** H cut `m` off for `code`, logged why, stored nothing of `pair`, and kept syncing with C. */
  async function expectCutOff(m: TallyNode, pair: PairDescriptor, before: string[], code: string) {
    const cut = () => h.events.find((e) => e.type === 'cut-off' && e.peer === m.peerId && e.code === code)
    expect(await waitFor(() => cut() !== undefined, 5_000)).toBe(true)
    expect(lines.some((l) => l.includes(m.peerId) && l.includes(code))).toBe(true)
    expect(await holdings(h, pair)).toEqual(before)
    const seq = c.sessions.logOf(honestPair).heads().consumer?.seq ?? 0
    expect(await waitFor(() => (h.sessions.logOf(honestPair).heads().consumer?.seq ?? 0) > seq, 5_000)).toBe(true)
    await c.sessions.waitForSync(honestPair, 5_000)
  }

  it('cuts off an oversized frame', async () => {
    const a = await adversary()
    a.hello()
    a.send(Uint8Array.from([...varint(8 * 1024 * 1024), 1, 2, 3]))
    await expectCutOff(a.m, a.pair, a.before, 'FrameTooLargeError')
  })

  it('cuts off garbage, before and after hello', async () => {
    const a = await adversary()
    a.send(frame(Uint8Array.from([0xff, 0xfe, 0x00, 0x13, 0x37])))
    await expectCutOff(a.m, a.pair, a.before, 'FrameDecodeError')
    const b = await adversary()
    b.hello()
    b.msg({ type: 'entries', blocks: 'not a list', head: 1 })
    await expectCutOff(b.m, b.pair, b.before, 'FrameDecodeError')
    const u = await adversary()
    u.hello()
    u.msg({ type: 'gimme-everything' })
    await expectCutOff(u.m, u.pair, u.before, 'UnexpectedMessageError')
  })

  it('cuts off a hello for a pair the peer is not part of', async () => {
    const a = await adversary()
    a.hello(honestPair)
    await expectCutOff(a.m, a.pair, a.before, 'PairHelloError')
    expect(h.sessions.status(honestPair).connected).toBe(true)
  })

  it('cuts off entries of another pair', async () => {
    const a = await adversary()
    const other: PairDescriptor = { provider: a.m.peerId, consumer: Identity.generate().peerId }
    const olog = await PairLog.open(new MemoryStore(), other, a.m.identity)
    await olog.append('note', { n: 1 })
    a.hello()
    a.msg({ type: 'entries', blocks: (await chain(olog)).map((b) => b.bytes), head: 2 })
    await expectCutOff(a.m, a.pair, a.before, 'ForeignPairError')
  })

  it('cuts off well-formed entries with a bad signature', async () => {
    const a = await adversary()
    await a.mlog.append('note', { n: 1 })
    await a.mlog.append('note', { n: 2 })
    const blocks = await chain(a.mlog)
    a.hello()
    a.msg({ type: 'entries', blocks: [...blocks.slice(0, -1).map((b) => b.bytes), badSignature(blocks.at(-1)!)], head: 3 })
    await expectCutOff(a.m, a.pair, a.before, 'SignatureError')
  })

  it('cuts off a peer that stalls in the middle of a message', async () => {
    const a = await adversary()
    a.hello()
    a.send(Uint8Array.from([...varint(200), 0xa1, 0x64]))
    await expectCutOff(a.m, a.pair, a.before, 'FrameTimeoutError')
  })

  it('cuts off entries the validator refuses, keeping what it stored before', async () => {
    const a = await adversary()
    await a.mlog.append('note', { n: 1 })
    a.hello()
    a.msg({ type: 'entries', blocks: (await chain(a.mlog)).map((b) => b.bytes), head: 2 })
    // the legal part is stored and acknowledged ...
    expect(await waitFor(async () => (await holdings(h, a.pair)).includes('head ' + a.m.peerId + ' 2'), 5_000)).toBe(true)
    const stored = await holdings(h, a.pair)
    // ... the illegal transition is refused before anything of its batch is stored
    await a.mlog.append('note', { n: 2 })
    await a.mlog.append('note', { n: 3, illegal: true })
    a.msg({ type: 'entries', blocks: (await chain(a.mlog)).slice(2).map((b) => b.bytes), head: 4 })
    await expectCutOff(a.m, a.pair, stored, 'IllegalTransitionError')
  })

  it('cuts off a sender that ignores the flow-control window', async () => {
    const a = await adversary()
    await a.mlog.append('note', { n: 1, slow: true })
    const blocks = (await chain(a.mlog)).map((b) => b.bytes)
    a.hello()
    // the first ingest takes 300 ms (slow validator); 9 more frames before any ack overrun a window of 8
    for (let i = 0; i < 10; i++) a.msg({ type: 'entries', blocks, head: 2 })
    expect(await waitFor(() => h.events.some((e) => e.type === 'cut-off' && e.peer === a.m.peerId && e.code === 'FlowControlError'), 5_000)).toBe(true)
    await c.sessions.waitForSync(honestPair, 5_000)
  })

  it('cuts off a peer that opens pair streams faster than its allowance', async () => {
    const a = await adversary()
    a.stream.abort(new Error('next'))
    for (let i = 0; i < 8; i++) {
      const s = await a.m.libp2p.dialProtocol(multiaddr(dialAddress(h.node)), PAIR_PROTOCOL)
      s.abort(new Error('next'))
    }
    expect(await waitFor(() => h.events.some((e) => e.type === 'cut-off' && e.peer === a.m.peerId && e.code === 'RateLimitedError'), 5_000)).toBe(true)
    expect(await holdings(h, a.pair)).toEqual(a.before)
    await c.sessions.waitForSync(honestPair, 5_000)
  })

  it('stays in sync with the honest consumer throughout', async () => {
    appending = false
    await appender
    await Promise.all([h.sessions.waitForSync(honestPair, 5_000), c.sessions.waitForSync(honestPair, 5_000)])
    expect(h.sessions.logOf(honestPair).heads()).toEqual(c.sessions.logOf(honestPair).heads())
    expect(h.sessions.logOf(honestPair).heads().consumer!.seq).toBeGreaterThan(10)
    expect(h.sessions.status(honestPair).counters.cutOffs).toBe(0)
  })
})

import { createHash, randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { decode, Identity, toBlock } from '@tally/core'
import { signRuling } from '@tally/deal'
import { pairIdOf } from '@tally/lineage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ARBITRATE_CHUNK_BYTES,
  ARBITRATE_PROTOCOL,
  ARBITRATE_WINDOW_CHUNKS,
  type ArbitrationCase,
  ArbitrationServer,
  type ArbitrationServerOptions,
  type CaseAnswer,
  type CaseRequest,
  caseIdOf,
  errorAnswer,
  openFrameStream,
  submitCase,
  type TallyNode,
} from '../src/index.ts'
import { dialAddress, loopbackNode, stopAll, waitFor } from './helpers.ts'

const pair = { provider: Identity.generate().peerId, consumer: Identity.generate().peerId }
const deal = toBlock({ deal: 1 }).cid
const dispute = toBlock({ dispute: 1 }).cid

function request(record: Uint8Array, over: Partial<CaseRequest> = {}): CaseRequest {
  return { pair, deal, dispute, appeal: false, record, ...over }
}

/** A ruling about the case submitted, signed by `by`, whose reasons carry the sha-256 of the record received. */
function rulingFor(c: ArbitrationCase, by: Identity, over: { dispute?: typeof dispute } = {}): CaseAnswer {
  const ruling = signRuling(by, {
    pair: pairIdOf(c.request.pair),
    deal: c.request.deal,
    dispute: over.dispute ?? c.request.dispute,
    epochs: [1],
    award: { toProvider: { amount: 0, asset: 'USD' }, collateralToConsumer: { amount: 0, asset: 'USD' } },
    reasons: createHash('sha256').update(c.request.record).digest('hex'),
    relied: [],
    appealOf: null,
    issuedAt: 1,
  })
  return { type: 'ruling', caseId: c.id, ruling }
}

describe('/tally/arbitrate/1.0.0 over real libp2p on loopback', () => {
  let server: TallyNode
  let client: TallyNode
  let target: ReturnType<typeof multiaddr>

  beforeAll(async () => {
    server = await loopbackNode()
    client = await loopbackNode()
    target = multiaddr(dialAddress(server))
  })
  afterAll(async () => {
    await stopAll([server, client])
  })

  async function serve(handler: ArbitrationServerOptions['handler'], over: Partial<ArbitrationServerOptions> = {}): Promise<ArbitrationServer> {
    const s = new ArbitrationServer(server.libp2p, { handler, log: server.log.newScope('arbitrate'), ...over })
    await s.start()
    return s
  }

  it('streams a record larger than the credit window and returns the verified ruling', async () => {
    const seen: ArbitrationCase[] = []
    const s = await serve(async (c) => {
      seen.push(c)
      return rulingFor(c, server.identity)
    })
    try {
      // More chunks than the window, and a short last chunk.
      const record = randomBytes((ARBITRATE_WINDOW_CHUNKS + 2) * ARBITRATE_CHUNK_BYTES + 12_345)
      const out = await submitCase(client.libp2p, target, request(record))
      expect(out.type).toBe('ruling')
      if (out.type !== 'ruling') return
      expect(out.ruling.body.reasons).toBe(createHash('sha256').update(record).digest('hex'))
      expect(out.caseId).toBe(caseIdOf(pair, deal, dispute, false))
      expect(seen).toHaveLength(1)
      expect(seen[0]?.remotePeer).toBe(client.peerId)
      // Compare digests: a deep equality over 10 MiB element by element takes minutes.
      expect(createHash('sha256').update(seen[0]!.request.record).digest('hex')).toBe(createHash('sha256').update(record).digest('hex'))
      expect(s.stats.answered).toEqual({ ruling: 1 })
    } finally {
      await s.stop()
    }
  })

  it('refuses answers signed by someone else or about another dispute', async () => {
    const stranger = Identity.generate()
    let mode: 'stranger' | 'other-dispute' = 'stranger'
    const s = await serve(async (c) => (mode === 'stranger' ? rulingFor(c, stranger) : rulingFor(c, server.identity, { dispute: deal })))
    try {
      await expect(submitCase(client.libp2p, target, request(randomBytes(100)))).rejects.toMatchObject({ name: 'InvalidCaseAnswerError' })
      mode = 'other-dispute'
      await expect(submitCase(client.libp2p, target, request(randomBytes(100)))).rejects.toMatchObject({ name: 'InvalidCaseAnswerError' })
      // With the expected signer given explicitly, a multiaddr without /p2p/ still checks the signer.
      mode = 'stranger'
      const bare = multiaddr(dialAddress(server))
      await expect(submitCase(client.libp2p, bare, request(randomBytes(100)), { arbiter: server.peerId })).rejects.toMatchObject({
        name: 'InvalidCaseAnswerError',
      })
    } finally {
      await s.stop()
    }
  })

  it('refuses an oversized record before it is sent, and passes on the arbiter’s refusal code', async () => {
    let called = 0
    const s = await serve(
      async (c) => {
        called++
        return errorAnswer('not-arbiter', 'the contract names someone else', c.id)
      },
      { maxRecordBytes: 4096 },
    )
    try {
      await expect(submitCase(client.libp2p, target, request(randomBytes(5000)))).rejects.toMatchObject({ name: 'CaseRefusedError', code: 'too-large' })
      expect(called).toBe(0)
      await expect(submitCase(client.libp2p, target, request(randomBytes(4096)))).rejects.toMatchObject({ name: 'CaseRefusedError', code: 'not-arbiter' })
      expect(called).toBe(1)
    } finally {
      await s.stop()
    }
  })

  it('answers busy beyond the concurrent case limit and rate-limited beyond the per-peer allowance', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => {
      release = r
    })
    const s = await serve(
      async (c) => {
        await gate
        return rulingFor(c, server.identity)
      },
      { maxConcurrentCases: 1, caseRate: { perSecond: 0.001, burst: 3 } },
    )
    try {
      const first = submitCase(client.libp2p, target, request(randomBytes(1000)))
      expect(await waitFor(() => s.active === 1)).toBe(true)
      await expect(submitCase(client.libp2p, target, request(randomBytes(1000)))).rejects.toMatchObject({ code: 'busy' })
      release()
      expect((await first).type).toBe('ruling')
      await expect(submitCase(client.libp2p, target, request(randomBytes(1000)))).resolves.toMatchObject({ type: 'ruling' })
      await expect(submitCase(client.libp2p, target, request(randomBytes(1000)))).rejects.toMatchObject({ code: 'rate-limited' })
    } finally {
      await s.stop()
    }
  })

  it('cuts off a client that sends garbage, a chunk first, or chunks that do not add up', async () => {
    const s = await serve(async (c) => rulingFor(c, server.identity))
    const frames = { maxFrameBytes: 1 << 20 }
    try {
      const garbage = await openFrameStream(client.libp2p, target, ARBITRATE_PROTOCOL, { frames })
      await garbage.write(Uint8Array.from([0xff, 0x00, 0x13]))
      await expect(garbage.read()).rejects.toMatchObject({ name: 'StreamEndedError' })

      const chunkFirst = await openFrameStream(client.libp2p, target, ARBITRATE_PROTOCOL, { frames })
      await chunkFirst.writeMessage({ type: 'chunk', data: new Uint8Array(10) })
      await expect(chunkFirst.read()).rejects.toMatchObject({ name: 'StreamEndedError' })

      const short = await openFrameStream(client.libp2p, target, ARBITRATE_PROTOCOL, { frames })
      await short.writeMessage({ type: 'case', v: 1, pair, deal, dispute, appeal: false, size: ARBITRATE_CHUNK_BYTES + 10 })
      expect(decode((await short.read()) ?? new Uint8Array())).toEqual({ type: 'ready', window: ARBITRATE_WINDOW_CHUNKS, chunkBytes: ARBITRATE_CHUNK_BYTES })
      await short.writeMessage({ type: 'chunk', data: new Uint8Array(10) })
      await expect(short.read()).rejects.toMatchObject({ name: 'StreamEndedError' })

      expect(await waitFor(() => Object.values(s.stats.cutOff).reduce((a, b) => a + b, 0) === 3)).toBe(true)
      expect(s.stats.cutOff).toEqual({ FrameDecodeError: 1, UnexpectedMessageError: 1, CaseFlowError: 1 })
      expect(s.active).toBe(0)
    } finally {
      await s.stop()
    }
  })

  it('reports an arbiter that does not serve the protocol as unreachable', async () => {
    await expect(submitCase(client.libp2p, target, request(randomBytes(10)), { timeoutMs: 5000 })).rejects.toMatchObject({ name: 'PeerUnreachableError' })
  })
})

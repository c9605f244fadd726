import { randomBytes } from 'node:crypto'
import { encode, Identity } from '@tally/core'
import { solveChallenge } from '@tally/executor'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  checkIdentityProof,
  decodeProbeResponse,
  type IdentityRequest,
  PROBE_PROTOCOL,
  ProbeResponder,
  probeProvider,
  requestResponse,
  signIdentityProof,
  type TallyNode,
} from '../src/index.ts'
import { dialAddress, loopbackNode, stopAll } from './helpers.ts'

function identityRequest(monitor: string): IdentityRequest {
  return { type: 'identity', nonce: new Uint8Array(randomBytes(32)), monitor, time: Date.now() }
}

describe('identity proofs (pure)', () => {
  const provider = Identity.generate()
  const other = Identity.generate()
  const monitor = Identity.generate().peerId

  it('verifies for the provider that signed this request', () => {
    const req = identityRequest(monitor)
    expect(() => checkIdentityProof(req, signIdentityProof(provider, req), provider.peerId)).not.toThrow()
  })

  it('refuses another key, another nonce, another monitor and a renamed signer', () => {
    const req = identityRequest(monitor)
    expect(() => checkIdentityProof(req, signIdentityProof(other, req), provider.peerId)).toThrow(expect.objectContaining({ name: 'IdentityProofError' }))
    const proof = signIdentityProof(provider, req)
    const otherNonce = { ...req, nonce: new Uint8Array(randomBytes(32)) }
    expect(() => checkIdentityProof(otherNonce, proof, provider.peerId)).toThrow(expect.objectContaining({ name: 'IdentityProofError' }))
    const otherMonitor = { ...req, monitor: Identity.generate().peerId }
    expect(() => checkIdentityProof(otherMonitor, proof, provider.peerId)).toThrow(expect.objectContaining({ name: 'IdentityProofError' }))
    const renamed = { ...signIdentityProof(other, req), provider: provider.peerId }
    expect(() => checkIdentityProof(req, renamed, provider.peerId)).toThrow(expect.objectContaining({ name: 'IdentityProofError' }))
  })
})

describe('/tally/probe/1.0.0 against a real responder', () => {
  let provider: TallyNode
  let dishonest: TallyNode
  let slow: TallyNode
  let monitor: TallyNode
  let responder: ProbeResponder
  let wrongResponder: ProbeResponder

  beforeAll(async () => {
    ;[provider, dishonest, slow, monitor] = await Promise.all([loopbackNode(), loopbackNode(), loopbackNode(), loopbackNode()])
    responder = new ProbeResponder(provider.libp2p, { identity: provider.identity, log: provider.log.newScope('probe'), maxN: 128 })
    await provider.register(responder)
    // A provider that answers with a made-up product instead of computing it.
    wrongResponder = new ProbeResponder(dishonest.libp2p, {
      identity: dishonest.identity,
      log: dishonest.log.newScope('probe'),
      solve: ({ n }) => ({ c: new Uint8Array(4 * n * n), durationMs: 1, solver: 'gpu' }),
    })
    await dishonest.register(wrongResponder)
    // A provider whose answer is correct but takes at least 3 s, far beyond a cpu-class bound at n = 8 (~251 ms).
    await slow.register(
      new ProbeResponder(slow.libp2p, {
        identity: slow.identity,
        log: slow.log.newScope('probe'),
        solve: async (params) => {
          await new Promise((r) => setTimeout(r, 3_000))
          return solveChallenge(params)
        },
      }),
    )
  })

  afterAll(async () => {
    await stopAll([provider, dishonest, slow, monitor].filter(Boolean))
  })

  it('measures rtt, verifies identity and a correct, timely compute answer', async () => {
    const sample = await probeProvider(monitor, provider.peerId, {
      addrs: [dialAddress(provider)],
      compute: { n: 64, hardwareClass: 'cpu.x86-64' },
    })
    expect(sample.reachable).toBe(true)
    expect(sample.rttUs).toBeGreaterThan(0)
    expect(sample.identity).toMatchObject({ ok: true })
    expect(sample.compute).toMatchObject({ ok: true, correct: true, n: 64, solver: 'cpu' })
    expect(sample.compute?.judgement).toMatchObject({ ok: true, reason: 'fits' })
    expect(responder.stats.identity).toBeGreaterThanOrEqual(1)
    expect(responder.stats.compute).toBeGreaterThanOrEqual(1)
  })

  it('reports an unreachable provider without throwing', async () => {
    const gone = Identity.generate().peerId
    const sample = await probeProvider(monitor, gone, { addrs: ['/ip4/127.0.0.1/tcp/1'], timeoutMs: 2_000 })
    expect(sample).toMatchObject({ reachable: false, rttUs: null, identity: null, compute: null })
    expect(sample.error).toBeTruthy()
  })

  it('does not accept another peer answering at the provider address', async () => {
    const impostor = Identity.generate().peerId
    const sample = await probeProvider(monitor, impostor, { addrs: [`${dialAddress(provider).replace(/\/p2p\/.*$/, '')}`], timeoutMs: 2_000 })
    expect(sample.reachable).toBe(false)
  })

  it('catches a wrong product (Freivalds)', async () => {
    const sample = await probeProvider(monitor, dishonest.peerId, { addrs: [dialAddress(dishonest)], compute: { n: 32, hardwareClass: 'gpu.h100' } })
    expect(sample.identity?.ok).toBe(true)
    expect(sample.compute).toMatchObject({ ok: false, correct: false, solver: 'gpu' })
  })

  it('judges the duration it measured itself against the claimed class', async () => {
    const timed = await probeProvider(monitor, slow.peerId, { addrs: [dialAddress(slow)], identity: false, compute: { n: 8, hardwareClass: 'cpu.x86-64' } })
    expect(timed.compute).toMatchObject({ correct: true, ok: false })
    expect(timed.compute?.judgement).toMatchObject({ ok: false, reason: 'too-slow' })
  })

  it('refuses n above its bound and rate-limits compute challenges per monitor', async () => {
    const fresh = await loopbackNode()
    try {
      const big = await probeProvider(fresh, provider.peerId, { addrs: [dialAddress(provider)], identity: false, compute: { n: 256 } })
      expect(big.compute?.error).toMatch(/bad-request/)
      const results = []
      for (let i = 0; i < 3; i++) {
        results.push(await probeProvider(fresh, provider.peerId, { addrs: [dialAddress(provider)], identity: false, compute: { n: 16 } }))
      }
      expect(results.slice(0, 2).every((r) => r.compute?.ok === true)).toBe(true)
      expect(results[2]?.compute?.error).toMatch(/rate-limited/)
      expect(responder.stats.refused['rate-limited']).toBeGreaterThanOrEqual(1)
      await expect(probeProvider(fresh, provider.peerId, { compute: { n: 4096 } })).rejects.toMatchObject({ name: 'ProbeRequestError' })
    } finally {
      await fresh.stop()
    }
  })

  it('refuses an identity request naming another monitor, and one far off its clock', async () => {
    const ask = async (req: IdentityRequest) =>
      decodeProbeResponse(
        await requestResponse(monitor.libp2p, provider.libp2p.peerId, PROBE_PROTOCOL, encode(req), { maxResponseBytes: 1024, timeoutMs: 3_000 }),
      )
    await monitor.libp2p.dial(provider.libp2p.getMultiaddrs())
    expect(await ask(identityRequest(Identity.generate().peerId))).toMatchObject({ type: 'error', code: 'bad-request' })
    expect(await ask({ ...identityRequest(monitor.peerId), time: Date.now() - 10 * 60_000 })).toMatchObject({ type: 'error', code: 'bad-request' })
    expect(await ask(identityRequest(monitor.peerId))).toMatchObject({ type: 'identity', provider: provider.peerId })
  })

  it('cuts off a stream that sends garbage', async () => {
    const before = responder.stats.cutOff['FrameDecodeError'] ?? 0
    await expect(
      requestResponse(monitor.libp2p, provider.libp2p.peerId, PROBE_PROTOCOL, new Uint8Array([0xff, 0x00, 0x13]), { maxResponseBytes: 1024, timeoutMs: 3_000 }),
    ).rejects.toBeDefined()
    await expect.poll(() => responder.stats.cutOff['FrameDecodeError'] ?? 0).toBeGreaterThan(before)
  })
})

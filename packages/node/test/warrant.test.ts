import { cidOfBytes, decode, encode, Identity, signEntry } from '@tally/core'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  encodeWarrant,
  evidenceAdmissible,
  makeEntryWarrant,
  makeObservationWarrant,
  observationTopic,
  registerObservationValidator,
  type TallyNode,
  verifyWarrant,
  WarrantGossip,
  WarrantRegistry,
} from '../src/index.ts'
import { dialAddress, loopbackNode, stopAll, waitFor } from './helpers.ts'
import { observationBytes } from './observations.ts'

const reporter = Identity.generate()
const monitor = Identity.generate()
const subject = Identity.generate().peerId
const t = 1_800_000_000_000

const obsA = observationBytes(monitor, subject, 7, { issuedAt: t })
const obsB = observationBytes(monitor, subject, 7, { issuedAt: t + 5, samples: { sent: 10, ok: 0 }, availabilityBp: 0, latencyUs: null })

function entry(author: Identity, seq: number, body: unknown) {
  const pair = cidOfBytes(encode({ type: 'tally-pair', provider: author.peerId, consumer: reporter.peerId }))
  const prev = seq === 1 ? null : cidOfBytes(encode({ prev: seq - 1 }))
  return signEntry(author, { v: 1, pair, author: author.peerId, seq, prev, seen: null, time: t + seq, kind: 'note', body })
}

function expectInvalid(fn: () => unknown): void {
  expect(fn).toThrow(expect.objectContaining({ name: 'InvalidWarrantError' }))
}

describe('warrants (offline)', () => {
  it('turns two conflicting observations into a warrant anyone can verify from its bytes alone', () => {
    const bytes = encodeWarrant(makeObservationWarrant(reporter, obsB, obsA, t + 60_000))
    const v = verifyWarrant(bytes)
    expect(v).toMatchObject({ kind: 'observation', reporter: reporter.peerId, offender: monitor.peerId, offence: `observation/${monitor.peerId}/7` })
    // The offence is complete when the second record exists, not when someone reports it.
    expect(v.time).toBe(t + 5)
    // The same pair in either order gives the same warrant body.
    expect(makeObservationWarrant(reporter, obsA, obsB, t + 60_000).body).toEqual(v.warrant.body)
  })

  it('turns two conflicting pair-log entries into a warrant (lineage equivocation proof)', () => {
    const author = Identity.generate()
    const x = entry(author, 3, { text: 'paid' })
    const y = entry(author, 3, { text: 'not paid' })
    const v = verifyWarrant(encodeWarrant(makeEntryWarrant(reporter, x, y, t + 60_000)))
    expect(v.kind).toBe('entry')
    expect(v.offender).toBe(author.peerId)
    expect(v.offence).toBe(`entry/${x.entry.pair.toString()}/${author.peerId}/3`)
    expect(v.time).toBe(t + 3)
  })

  it('refuses what does not conflict', () => {
    expectInvalid(() => makeObservationWarrant(reporter, obsA, obsA, t))
    expectInvalid(() => makeObservationWarrant(reporter, obsA, observationBytes(monitor, subject, 8, { issuedAt: t }), t))
    expectInvalid(() => makeObservationWarrant(reporter, obsA, observationBytes(Identity.generate(), subject, 7, { issuedAt: t }), t))
    const author = Identity.generate()
    expectInvalid(() => makeEntryWarrant(reporter, entry(author, 3, { a: 1 }), entry(author, 4, { a: 2 }), t))
  })

  it('detects tampering anywhere in the warrant', () => {
    const bytes = encodeWarrant(makeObservationWarrant(reporter, obsA, obsB, t + 60_000))
    let detected = 0
    for (let i = 0; i < bytes.byteLength; i += 7) {
      const copy = bytes.slice()
      copy[i]! ^= 0x01
      try {
        verifyWarrant(copy)
      } catch (err) {
        expect((err as Error).name).toBe('InvalidWarrantError')
        detected++
        continue
      }
      throw new Error(`flipping byte ${i} went unnoticed`)
    }
    expect(detected).toBeGreaterThan(10)
    // A warrant re-signed by nobody: the reporter's signature must verify.
    const doc = decode(bytes) as { sig: Uint8Array }
    expectInvalid(() => verifyWarrant(encode({ ...doc, sig: new Uint8Array(64) })))
    expectInvalid(() => verifyWarrant(new Uint8Array(700 * 1024)))
  })

  it('registers offenders and refuses their evidence for deals accepted after the offence', () => {
    const registry = new WarrantRegistry()
    const v = verifyWarrant(encodeWarrant(makeObservationWarrant(reporter, obsA, obsB, t + 60_000)))
    expect(registry.add(v)).toBe(true)
    expect(registry.add(verifyWarrant(encodeWarrant(makeObservationWarrant(Identity.generate(), obsA, obsB, t + 90_000))))).toBe(false)
    expect(registry.standing(monitor.peerId)).toMatchObject({ since: t + 5 })
    expect(evidenceAdmissible(registry, monitor.peerId, t)).toBe(true)
    expect(evidenceAdmissible(registry, monitor.peerId, t + 6)).toBe(false)
    expect(evidenceAdmissible(registry, Identity.generate().peerId, t + 6)).toBe(true)
  })
})

describe('warrants on gossip', () => {
  let nodes: TallyNode[]
  let gossips: WarrantGossip[]

  beforeAll(async () => {
    nodes = await Promise.all(Array.from({ length: 3 }, () => loopbackNode()))
    gossips = nodes.map((node) => new WarrantGossip({ gossip: node.gossip, identity: node.identity, log: node.log.newScope('warrant') }))
    for (const [i, node] of nodes.entries()) await node.register(gossips[i]!)
    // node 0 watches the observation topic and reports conflicts it sees, as a monitor does
    registerObservationValidator(nodes[0]!.gossip, {
      onConflict: (a, b) => void gossips[0]!.reportObservations(a, b),
    })
    nodes[0]!.gossip.subscribe(observationTopic(subject), () => {})
    for (const node of nodes.slice(1)) await node.libp2p.dial(multiaddr(dialAddress(nodes[0]!)))
    expect(await waitFor(() => nodes.slice(1).every((n) => n.gossip.meshPeers('/tally/warrant/1').length > 0), 15_000)).toBe(true)
  })

  afterAll(async () => {
    await stopAll(nodes ?? [])
  })

  it('a conflict seen on gossip becomes a warrant that reaches every node', async () => {
    const rogue = await loopbackNode()
    try {
      rogue.gossip.subscribe(observationTopic(subject), () => {})
      await rogue.libp2p.dial(multiaddr(dialAddress(nodes[0]!)))
      expect(await waitFor(() => nodes[0]!.gossip.meshPeers(observationTopic(subject)).includes(rogue.peerId), 10_000)).toBe(true)
      await rogue.gossip.pubsub.publish(observationTopic(subject), observationBytes(rogue.identity, subject, 42))
      await rogue.gossip.pubsub.publish(
        observationTopic(subject),
        observationBytes(rogue.identity, subject, 42, { samples: { sent: 10, ok: 0 }, availabilityBp: 0, latencyUs: null }),
      )
      expect(await waitFor(() => gossips.every((g) => g.registry.standing(rogue.peerId) !== undefined))).toBe(true)
      expect(gossips[0]!.counters.issued).toBe(1)
      expect(gossips[1]!.counters.received).toBe(1)
      const held = gossips[2]!.registry.standing(rogue.peerId)!.warrants[0]!
      expect(verifyWarrant(held.bytes).reporter).toBe(nodes[0]!.peerId)
    } finally {
      await rogue.stop()
    }
  })

  it('drops a forged warrant before relay and costs its sender score', async () => {
    const forger = nodes[1]!
    const doc = makeObservationWarrant(forger.identity, obsA, obsB, Date.now())
    const before = gossips[0]!.counters.invalid
    await forger.gossip.pubsub.publish('/tally/warrant/1', encode({ ...doc, body: { ...doc.body, reportedAt: 1 } }))
    expect(await waitFor(() => gossips[0]!.counters.invalid > before)).toBe(true)
    expect(await waitFor(() => nodes[0]!.gossip.score(forger.peerId) < 0)).toBe(true)
    expect(gossips[2]!.registry.standing(monitor.peerId)).toBeUndefined()
  })
})

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity } from '@tally/core'
import { LevelStore } from '@tally/lineage'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  encodeWarrant,
  makeObservationWarrant,
  ObservationIntake,
  observationTopic,
  registerObservationValidator,
  type TallyNode,
  verifyWarrant,
  WarrantRegistry,
} from '../src/index.ts'
import { dialAddress, loopbackNode, stopAll, waitFor } from './helpers.ts'
import { observationBytes } from './observations.ts'

describe('ObservationIntake', () => {
  let dir: string
  let store: LevelStore
  let party: TallyNode
  let contracted: TallyNode
  let outsider: TallyNode
  let intake: ObservationIntake
  const provider = Identity.generate().peerId
  const topic = observationTopic(provider)
  const conflicts: [Uint8Array, Uint8Array][] = []
  const warrants = new WarrantRegistry()
  const now = Date.now()
  const window = (i: number) => ({ start: now - 100_000 + i * 10_000, end: now - 90_000 + i * 10_000 })

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-intake-'))
    store = await LevelStore.open(join(dir, 'store'))
    ;[party, contracted, outsider] = await Promise.all([loopbackNode(), loopbackNode(), loopbackNode()])
    intake = new ObservationIntake({ gossip: party.gossip, store, log: party.log.newScope('intake'), warrants, onConflict: (a, b) => conflicts.push([a, b]) })
    await party.register(intake)
    await intake.watch('deal-1', provider, [contracted.peerId])
    for (const m of [contracted, outsider]) {
      registerObservationValidator(m.gossip)
      m.gossip.subscribe(topic, () => {})
      await m.libp2p.dial(multiaddr(dialAddress(party)))
    }
    expect(await waitFor(() => party.gossip.meshPeers(topic).length === 2, 15_000)).toBe(true)
  })

  afterAll(async () => {
    await stopAll([party, contracted, outsider].filter(Boolean))
    await store?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('stores the contract monitors’ observations and keeps outsiders apart', async () => {
    for (let i = 0; i < 3; i++) {
      await contracted.gossip.publish(topic, observationBytes(contracted.identity, provider, i + 1, { window: window(i), issuedAt: now }))
      await outsider.gossip.publish(topic, observationBytes(outsider.identity, provider, i + 1, { window: window(i), issuedAt: now }))
    }
    expect(await waitFor(() => intake.counters.stored === 3 && intake.counters.outside === 3)).toBe(true)
    const counted = await intake.observationsFor({ subject: provider, monitors: [contracted.peerId, outsider.peerId], from: 0, to: now })
    expect(counted.map((o) => [o.by, o.body.seq])).toEqual([
      [contracted.peerId, 1],
      [contracted.peerId, 2],
      [contracted.peerId, 3],
    ])
    const apart = await intake.outsideObservations({ subject: provider, from: 0, to: now })
    expect(apart.every((o) => o.by === outsider.peerId)).toBe(true)
    expect(apart).toHaveLength(3)
  })

  it('answers by window range', async () => {
    const middle = await intake.observationsFor({ subject: provider, monitors: [contracted.peerId], from: window(1).start, to: window(1).end })
    expect(middle.map((o) => o.body.seq)).toEqual([2])
    expect(await intake.observationsFor({ subject: provider, monitors: [contracted.peerId], from: window(0).start + 1, to: window(2).end - 1 })).toEqual(middle)
  })

  it('drops duplicates and reports a conflicting observation from the store', async () => {
    const original = observationBytes(contracted.identity, provider, 2, { window: window(1), issuedAt: now })
    expect(await intake.ingest(original)).toBe('duplicate')
    const other = observationBytes(contracted.identity, provider, 2, {
      window: window(1),
      issuedAt: now,
      samples: { sent: 10, ok: 0 },
      availabilityBp: 0,
      latencyUs: null,
    })
    expect(await intake.ingest(other)).toBe('conflict')
    expect(conflicts).toHaveLength(1)
    // The pair is a warrant as it stands.
    expect(verifyWarrant(encodeWarrant(makeObservationWarrant(party.identity, conflicts[0]![0], conflicts[0]![1], now))).offender).toBe(contracted.peerId)
    const stored = await intake.observationsFor({ subject: provider, monitors: [contracted.peerId], from: 0, to: now })
    expect(stored.find((o) => o.body.seq === 2)?.body.availabilityBp).toBe(9_000)
  })

  it('ignores subjects nobody watches', async () => {
    const elsewhere = Identity.generate().peerId
    expect(await intake.ingest(observationBytes(contracted.identity, elsewhere, 99))).toBe('unwatched')
  })

  it('moves a monitor’s observations into the counted partition when a contract names it', async () => {
    await intake.watch('deal-2', provider, [outsider.peerId])
    const counted = await intake.observationsFor({ subject: provider, monitors: [outsider.peerId], from: 0, to: now })
    expect(counted).toHaveLength(3)
    expect(await intake.outsideObservations({ subject: provider, from: 0, to: now })).toHaveLength(0)
  })

  it('leaves out a monitor warranted before the deal was accepted', async () => {
    const a = observationBytes(outsider.identity, provider, 50, { issuedAt: now - 50_000 })
    const b = observationBytes(outsider.identity, provider, 50, { issuedAt: now - 50_000, samples: { sent: 10, ok: 1 }, availabilityBp: 1_000 })
    warrants.add(verifyWarrant(encodeWarrant(makeObservationWarrant(party.identity, a, b, now))))
    const q = { subject: provider, monitors: [contracted.peerId, outsider.peerId], from: 0, to: now }
    expect((await intake.observationsFor({ ...q, acceptedAt: now - 60_000 })).some((o) => o.by === outsider.peerId)).toBe(true)
    expect((await intake.observationsFor({ ...q, acceptedAt: now - 1_000 })).some((o) => o.by === outsider.peerId)).toBe(false)
  })

  it('keeps what it stored across a restart', async () => {
    await party.stop()
    await store.close()
    store = await LevelStore.open(join(dir, 'store'))
    const restarted = await loopbackNode({ identity: party.identity })
    try {
      const again = new ObservationIntake({ gossip: restarted.gossip, store, log: restarted.log.newScope('intake') })
      await restarted.register(again)
      const counted = await again.observationsFor({ subject: provider, monitors: [contracted.peerId], from: 0, to: now })
      expect(counted.map((o) => o.body.seq)).toEqual([1, 2, 3])
      await again.watch('deal-1', provider, [contracted.peerId])
      expect(await again.ingest(observationBytes(contracted.identity, provider, 3, { window: window(2), issuedAt: now }))).toBe('duplicate')
    } finally {
      await restarted.stop()
    }
  })
})

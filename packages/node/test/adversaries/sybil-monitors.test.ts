/**
 * Sybil monitors not named in the contract. Real gossip publishers (our own
 * nodes, publishing straight into gossipsub with their own validator
 * skipped) outnumber the contract's three named monitors and report the
 * provider down when the named ones saw it up, and up when the named ones
 * were too few to decide. They also replay named monitors' observations as
 * their own, publish garbage, stale and mis-sharded ones. Then the provider
 * itself attaches the Sybils' reports to the pair log, as many as an epoch
 * holds. The honest consumer's intake and deal reducer, on the live path
 * (gossip -> intake -> pair log -> evaluation), must give exactly the
 * verdicts the named monitors' evidence implies.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { type CID, encode, Identity } from '@tally/core'
import {
  buildEvaluation,
  buildObservation,
  buildUsage,
  evaluateEpoch,
  MAX_FOREIGN_OBSERVATIONS_PER_EPOCH,
  type Observation,
  observationEvidence,
  type PairState,
  reduce,
  signAttestationBody,
} from '@tally/deal'
import type { PairDescriptor, PairLog } from '@tally/lineage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ObservationIntake, observationTopic, registerObservationValidator, type TallyNode } from '../../src/index.ts'
import { dialAddress, loopbackNode, stopAll, waitFor } from '../helpers.ts'
import { type Peer, pairPeer, stopPeers, tempLevelStore } from '../pair-helpers.ts'
import {
  attestationBody,
  dealStateOf,
  dealTerms,
  dealValidator,
  EPOCH_MS,
  epochObservation,
  LARGE,
  reportSummary,
  scaled,
  usageFigures,
  WORKLOAD,
} from './helpers.ts'

const SYBIL_NODES = LARGE ? 12 : 6
/** Valid observations each Sybil publishes per epoch window (distinct seqs); within the gossip burst of 50 per origin. */
const PER_SYBIL = LARGE ? 20 : 3
/** The intake's bound on observations kept apart for the provider: half of what the Sybils send. */
const OUTSIDE_CAP = SYBIL_NODES * PER_SYBIL

/** Append an own entry only if the deal reducer takes it (what a party's deal engine does before appending). */
async function appendChecked(log: PairLog, kind: Parameters<PairLog['append']>[0], body: unknown, time?: number) {
  const { state } = await dealStateOf(log)
  let s: PairState = state
  return log.append(kind, body, {
    ...(time === undefined ? {} : { time }),
    validate: (blocks) => {
      for (const b of blocks) s = reduce(s, b)
    },
  })
}

describe('Sybil monitors not named in the contract', () => {
  let h: Peer
  let p: Peer
  let removeStore: () => Promise<void>
  let intake: ObservationIntake
  let named: TallyNode[]
  let sybils: TallyNode[]
  let pair: PairDescriptor
  let deal: CID
  let t0: number
  let topic: string
  const published: { e0: Observation[]; e1: Observation[] } = { e0: [], e1: [] }
  const counts = { attempts: 0, rejected: 0, violations: 0, storedApart: 0, droppedApart: 0, foreignAttached: 0, verdicts: {} as Record<string, string> }

  beforeAll(async () => {
    const level = await tempLevelStore()
    removeStore = level.remove
    h = await pairPeer({ store: level.store, sessions: { validate: (d) => dealValidator(() => h.sessions.logOf(d)) } })
    p = await pairPeer({ sessions: { accept: () => true, validate: (d) => dealValidator(() => p.sessions.logOf(d)) } })
    ;[named, sybils] = await Promise.all([
      Promise.all(Array.from({ length: 3 }, () => loopbackNode())),
      Promise.all(Array.from({ length: SYBIL_NODES }, () => loopbackNode())),
    ])
    pair = { provider: p.node.peerId, consumer: h.node.peerId }
    topic = observationTopic(pair.provider)
    intake = new ObservationIntake({ gossip: h.node.gossip, store: level.store, log: h.node.log.newScope('intake'), maxOutsidePerSubject: OUTSIDE_CAP })
    await h.node.register(intake)
    for (const m of named) registerObservationValidator(m.gossip)

    // The deal: accepted 150 s ago, one-minute epochs; epochs 0 and 1 are over.
    await h.sessions.connect(pair, [dialAddress(p.node)])
    const hlog = h.sessions.logOf(pair)
    const plog = p.sessions.logOf(pair)
    const synced = () => Promise.all([h.sessions.waitForSync(pair, 20_000), p.sessions.waitForSync(pair, 20_000)])
    t0 = Date.now() - 150_000
    const proposal = await appendChecked(
      hlog,
      'proposal',
      {
        terms: dealTerms(
          named.map((m) => m.peerId),
          Identity.generate().peerId,
        ),
      },
      t0 - 2_000,
    )
    deal = proposal.cid
    await synced()
    await appendChecked(plog, 'acceptance', { deal, offer: proposal.cid }, t0)
    await appendChecked(plog, 'attestation', { deal, attestation: signAttestationBody(p.node.identity, attestationBody(t0)) }, t0 + 2)
    await synced()
    await appendChecked(hlog, 'manifest', { deal, workload: WORKLOAD }, t0 + 3)
    await synced()
    await appendChecked(plog, 'usage', buildUsage(deal, 0, usageFigures()))
    await appendChecked(plog, 'usage', buildUsage(deal, 1, usageFigures()))
    await synced()
    // The consumer watches the provider's shard for the contract's monitors, as its engine does once a deal is on.
    await intake.watch(
      deal.toString(),
      pair.provider,
      named.map((m) => m.peerId),
    )
    for (const n of [...named, ...sybils]) await n.libp2p.dial(multiaddr(dialAddress(h.node)))
    expect(await waitFor(() => [...named, ...sybils].every((n) => n.gossip.subscribers(topic).includes(h.node.peerId)), 15_000)).toBe(true)
  })

  afterAll(async () => {
    await stopPeers([h, p])
    await removeStore?.()
    await stopAll([...(named ?? []), ...(sybils ?? [])])
    await reportSummary({ suite: 'adversary-sybil-monitors', ...counts })
  })

  it('keeps Sybil reports out of the counted evidence at intake, and refuses their forgeries on gossip', async () => {
    const e0 = t0
    const e1 = t0 + EPOCH_MS
    // Named monitors: in epoch 0 two of three saw the provider down; in epoch 1 only one reported (below quorum).
    published.e0 = [epochObservation(named[0]!.identity, pair.provider, e0, 0, 1), epochObservation(named[1]!.identity, pair.provider, e0, 0, 1)]
    published.e0.push(epochObservation(named[2]!.identity, pair.provider, e0, 100, 1))
    published.e1 = [epochObservation(named[0]!.identity, pair.provider, e1, 100, 2)]
    for (const [i, obs] of [...published.e0, ...published.e1].entries()) {
      const m = named.find((n) => n.peerId === obs.by)!
      await m.gossip.publish(topic, encode(obs))
      expect(i).toBeLessThan(4)
    }
    const before = { ...intake.counters.rejected }
    const otherSubject = (() => {
      for (;;) {
        const id = Identity.generate().peerId
        if (observationTopic(id) !== topic) return id
      }
    })()
    for (const [i, s] of sybils.entries()) {
      // Sybils report what the provider would like: up in both epochs.
      for (let k = 0; k < PER_SYBIL; k++) {
        await s.gossip.pubsub.publish(topic, encode(epochObservation(s.identity, pair.provider, e0, 100, 1 + 2 * k)))
        await s.gossip.pubsub.publish(topic, encode(epochObservation(s.identity, pair.provider, e1, 100, 2 + 2 * k)))
        counts.attempts += 2
      }
      // A named monitor's observation published as the Sybil's own, garbage, another shard's subject, a stale report.
      await s.gossip.pubsub.publish(topic, encode(published.e0[i % 2]!))
      await s.gossip.pubsub.publish(topic, Uint8Array.from([0xa1, 0x61, 0x78, 0xff]))
      await s.gossip.pubsub.publish(topic, encode(epochObservation(s.identity, otherSubject, e0, 0, 1000)))
      await s.gossip.pubsub.publish(topic, encode(epochObservation(s.identity, pair.provider, e0 - 10 * EPOCH_MS, 0, 1001)))
      counts.attempts += 4
    }
    const n = SYBIL_NODES
    // Stored apart up to the bound; the rest of the crowd's reports are dropped and counted, the named monitors' all kept.
    expect(await waitFor(() => intake.counters.stored === 4 && intake.counters.outside + intake.counters.outsideDropped === n * PER_SYBIL * 2, 15_000)).toBe(
      true,
    )
    expect({ outside: intake.counters.outside, dropped: intake.counters.outsideDropped }).toEqual({ outside: OUTSIDE_CAP, dropped: OUTSIDE_CAP })
    const dropped = (r: string) => (intake.counters.rejected[r as 'origin'] ?? 0) - (before[r as 'origin'] ?? 0)
    expect(await waitFor(() => dropped('origin') === n && dropped('malformed') === n && dropped('shard') === n && dropped('stale') === n, 15_000)).toBe(true)
    counts.storedApart = intake.counters.outside
    counts.droppedApart = intake.counters.outsideDropped
    counts.rejected += 4 * n + intake.counters.outside + intake.counters.outsideDropped
    // Forgeries cost their senders standing with the honest node.
    expect(await waitFor(() => sybils.every((s) => h.node.gossip.score(s.peerId) < 0), 15_000)).toBe(true)
    // The counted evidence of each epoch is the named monitors' own, whatever the Sybils sent.
    const q = { subject: pair.provider, monitors: named.map((m) => m.peerId), acceptedAt: t0 }
    const got0 = await intake.observationsFor({ ...q, from: e0, to: e0 + EPOCH_MS })
    const got1 = await intake.observationsFor({ ...q, from: e1, to: e1 + EPOCH_MS })
    expect(got0.map((o) => o.sig).sort()).toEqual(published.e0.map((o) => o.sig).sort())
    expect(got1.map((o) => o.sig)).toEqual(published.e1.map((o) => o.sig))
    const apart = await intake.outsideObservations({ subject: pair.provider, from: e0, to: e1 + EPOCH_MS })
    expect(apart.every((o) => sybils.some((s) => s.peerId === o.by))).toBe(true)
  })

  it('gives the verdicts the named monitors imply, though the provider attaches the Sybils’ reports to the log', async () => {
    const hlog = h.sessions.logOf(pair)
    const plog = p.sessions.logOf(pair)
    const synced = () => Promise.all([h.sessions.waitForSync(pair, 30_000), p.sessions.waitForSync(pair, 30_000)])
    // The provider attaches Sybil reports ("up") to epoch 0 first: as many as an epoch holds observations, and more,
    // so that the named monitors' "down" reports would find no room left.
    const forge = (k: number) => epochObservation(Identity.generate(), pair.provider, t0, 100, 1, Date.now() - 1_000 + k)
    const flood = MAX_FOREIGN_OBSERVATIONS_PER_EPOCH + scaled(8)
    let refused = 0
    for (let k = 0; k < flood; k++) {
      counts.attempts++
      try {
        await appendChecked(plog, 'observation', buildObservation(deal, forge(k)))
        counts.foreignAttached++
      } catch (err) {
        // Its own reducer stops the provider when an epoch's foreign share is full.
        expect((err as Error).name).toBe('ObservationLimitError')
        refused++
      }
    }
    counts.rejected += refused
    await synced()
    // The consumer attaches what its intake counts: the named monitors' observations. None is crowded out.
    const q = { subject: pair.provider, monitors: named.map((m) => m.peerId), acceptedAt: t0 }
    for (const e of [0, 1]) {
      for (const obs of await intake.observationsFor({ ...q, from: t0 + e * EPOCH_MS, to: t0 + (e + 1) * EPOCH_MS })) {
        await appendChecked(hlog, 'observation', buildObservation(deal, obs))
      }
    }
    await synced()
    const { state } = await dealStateOf(hlog)
    const rule = state.deals.get(deal.toString())!.terms!.rule
    for (const [e, namedObs] of [published.e0, published.e1].entries()) {
      const expected = evaluateEpoch(rule, { usage: { claimBp: 10_000 }, observations: namedObs.map(observationEvidence) })
      const ev = buildEvaluation((await dealStateOf(hlog)).state, deal, e)
      await appendChecked(hlog, 'evaluation', ev)
      counts.verdicts[`epoch${e}`] = ev.verdict
      if (ev.verdict !== expected.verdict) counts.violations++
      expect({ epoch: e, verdict: ev.verdict }).toEqual({ epoch: e, verdict: expected.verdict })
    }
    // Epoch 0: a quorum of named monitors saw it down while the provider claims service: a dispute, not a payment.
    expect(counts.verdicts).toEqual({ epoch0: 'disputed', epoch1: 'insufficient' })
    await synced()
    // The provider's replay of the same log gives the same verdicts (invariant 4), and the Sybil reports are held apart.
    const pState = (await dealStateOf(plog)).state
    const hState = (await dealStateOf(hlog)).state
    for (const e of [0, 1]) {
      const ep = (s: PairState) => s.deals.get(deal.toString())!.epochs.get(String(e))!
      expect(ep(pState).evaluation?.verdict).toBe(ep(hState).evaluation?.verdict)
      expect(ep(hState).observations.every((o) => named.some((m) => m.peerId === o.monitor))).toBe(true)
    }
    expect(hState.deals.get(deal.toString())!.epochs.get('0')!.foreign.length).toBeGreaterThanOrEqual(MAX_FOREIGN_OBSERVATIONS_PER_EPOCH)
  })
})

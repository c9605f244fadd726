/**
 * The live protocol handlers under mutated byte streams (issue 7, part 3):
 * real libp2p nodes on loopback. Adversaries built from our own packages
 * write mutated /tally/pair/1.0.0 sessions and /tally/arbitrate/1.0.0 cases
 * (a valid transcript with one frame's payload, the whole stream, or the
 * submitted record mutated by test/fuzz/mutate.ts) on raw streams. The
 * server must cut each off or answer it with a typed reason (no TypeError
 * and the like in its log, no `internal` answers), store only what
 * verifies, and serve an honest client afterwards.
 */
import { format } from 'node:util'
import type { CID } from '@tally/core'
import { encode } from '@tally/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decideCase } from '../apps/arbiter/src/decide.ts'
import { exportPairLogBytes, MemoryStore, type PairDescriptor, PairLog, verifyExport } from '../packages/lineage/src/index.ts'
import {
  ARBITRATE_PROTOCOL,
  ARBITRATE_PROTOCOL_VERSION,
  ArbitrationServer,
  type ArbitrationServerOptions,
  type CaseAnswer,
  caseHeader,
  errorAnswer,
  multiaddr,
  PAIR_PROTOCOL,
  PAIR_PROTOCOL_VERSION,
  submitCase,
  type TallyNode,
} from '../packages/node/src/index.ts'
import { dialAddress, loopbackNode, stopAll, waitFor } from '../packages/node/test/helpers.ts'
import { type Peer, pairPeer, stopPeers } from '../packages/node/test/pair-helpers.ts'
import { arbiter, consumer, fixtures, NOW, provider } from './fuzz/fixtures.ts'
import { applyMutations, type Mutation, mutationsArb } from './fuzz/mutate.ts'
import { framed } from './fuzz/targets.ts'

const SEED = Number(process.env['TALLY_FUZZ_SEED'] ?? 7_000_003)
/** `pnpm reliability` (TALLY_SCALE=large) sends three times as many streams. */
const SCALE = process.env['TALLY_SCALE'] === 'large' ? 3 : 1
/** Streams per pair adversary (three of them). */
const PAIR_STREAMS = 12 * SCALE
/** Cases per arbitration adversary: within the server's stream allowance (burst 20 per peer), so none is refused for rate. */
const CASES = 15
const CASE_PEERS = 2 * SCALE
/** Errors that are crashes, not refusals; one in a handler's log is a finding. */
const CRASH = /: (TypeError|RangeError|ReferenceError|SyntaxError|AggregateError): /

type Logger = ArbitrationServerOptions['log']

function captureLog(lines: string[]): Logger {
  const log = Object.assign((fmt: unknown, ...args: unknown[]) => void lines.push(format(fmt, ...args)), {
    error: (fmt: unknown, ...args: unknown[]) => void lines.push(format(fmt, ...args)),
    trace: () => undefined,
    enabled: true,
    newScope: () => log,
  }) as Logger
  return log
}

/**
 * How a transcript gets mutated: one frame's payload (re-framed, so it
 * reaches the message decoder; the last frame, which carries the entries
 * or the record, most often) or the raw stream.
 */
type Plan = { where: 'frame'; frame: number; ms: Mutation[] } | { where: 'stream'; ms: Mutation[] }

const planArb: fc.Arbitrary<Plan> = fc.oneof(
  { arbitrary: fc.record({ where: fc.constant('frame' as const), frame: fc.constant(-1), ms: mutationsArb }), weight: 2 },
  { arbitrary: fc.record({ where: fc.constant('frame' as const), frame: fc.nat(), ms: mutationsArb }), weight: 1 },
  { arbitrary: fc.record({ where: fc.constant('stream' as const), ms: mutationsArb }), weight: 1 },
)

function mutateTranscript(payloads: Uint8Array[], plan: Plan, corpus: Uint8Array[]): Uint8Array {
  if (plan.where === 'stream') return applyMutations(framed(...payloads), plan.ms, corpus)
  const i = plan.frame < 0 ? payloads.length - 1 : plan.frame % payloads.length
  return framed(...payloads.map((p, j) => (j === i ? applyMutations(p, plan.ms, corpus) : p)))
}

/**
 * Write `bytes` on a fresh raw stream, wait (bounded) until the server cut
 * it off or `settled` holds, half-close, and wait (bounded) for the server
 * to finish with it.
 */
async function blast(from: TallyNode, to: TallyNode, protocol: string, bytes: Uint8Array, settled?: () => boolean): Promise<void> {
  const stream = await from.libp2p.dialProtocol(multiaddr(dialAddress(to)), protocol)
  if (bytes.byteLength > 0) stream.send(bytes)
  if (settled !== undefined) await waitFor(() => stream.status !== 'open' || settled(), 500, 10)
  await stream.close().catch(() => undefined)
  await waitFor(() => stream.status !== 'open', 2_000, 20)
  if (stream.status === 'open') stream.abort(new Error('fuzz stream done'))
}

describe('live protocol handlers under mutated byte streams', () => {
  const adversaries: TallyNode[] = []
  afterAll(async () => {
    await stopAll(adversaries)
  })

  describe('/tally/pair/1.0.0', () => {
    let h: Peer
    let c: Peer
    let honest: PairDescriptor
    const lines: string[] = []

    beforeAll(async () => {
      h = await pairPeer({ sessions: { log: captureLog(lines), accept: () => true, limits: { streamRate: { perSecond: 50, burst: 100 } } } })
      c = await pairPeer()
      honest = { provider: h.node.peerId, consumer: c.node.peerId }
      await c.sessions.connect(honest, [dialAddress(h.node)])
      for (let i = 0; i < 3; i++) await c.sessions.logOf(honest).append('note', { i })
      await c.sessions.waitForSync(honest, 10_000)
    })
    afterAll(async () => {
      await stopPeers([h, c])
    })

    it(`cuts off or closes ${3 * PAIR_STREAMS} mutated sessions with typed reasons, stores only what verifies, and keeps serving`, async () => {
      const corpus = (await fixtures()).entries.map((b) => b.bytes)
      const plans = fc.sample(planArb, { numRuns: 3 * PAIR_STREAMS, seed: SEED })
      const pairs: PairDescriptor[] = []
      // Three adversaries, each with its own pair with H and a real chain, in parallel.
      await Promise.all(
        [0, 1, 2].map(async (a) => {
          const m = await loopbackNode()
          adversaries.push(m)
          const pair: PairDescriptor = { provider: h.node.peerId, consumer: m.peerId }
          pairs.push(pair)
          const log = await PairLog.open(new MemoryStore(), pair, m.identity)
          for (let i = 0; i < 3; i++) await log.append('note', { i, by: a })
          const blocks: Uint8Array[] = []
          for await (const b of log.range(log.me, 1)) blocks.push(b.bytes)
          const transcript = [
            encode({ type: 'hello', v: PAIR_PROTOCOL_VERSION, pair, heads: { provider: null, consumer: null }, window: 8 }),
            encode({ type: 'request', author: h.node.peerId, fromSeq: 1, toSeq: null }),
            encode({ type: 'entries', blocks, head: blocks.length }),
          ]
          for (const plan of plans.slice(a * PAIR_STREAMS, (a + 1) * PAIR_STREAMS)) {
            const n0 = h.events.length
            // Keep the stream open until H has stored the entries (or cut us off): a session that ends first stores nothing.
            const ingested = () => h.events.slice(n0).some((e) => e.type === 'ingested' && e.peer === m.peerId)
            await blast(m, h.node, PAIR_PROTOCOL, mutateTranscript(transcript, plan, [...corpus, ...transcript]), ingested)
          }
          await log.close()
        }),
      )

      const crashes = lines.filter((l) => CRASH.test(l))
      expect(crashes).toEqual([])
      const local = h.events.filter((e) => e.type === 'session-close' && e.reason.startsWith('local failure'))
      expect(local).toEqual([])
      const adversaryIds = new Set(pairs.map((p) => p.consumer))
      const outcomes = h.events.filter((e) => (e.type === 'cut-off' || e.type === 'session-close') && adversaryIds.has(e.peer))
      expect(outcomes.length).toBeGreaterThan(0)

      // Whatever H kept of an adversary's pair is a chain that verifies offline.
      for (const pair of pairs) {
        let log: PairLog | undefined
        try {
          log = h.sessions.logOf(pair)
        } catch {
          continue // never registered: nothing stored
        }
        const report = await verifyExport(await exportPairLogBytes(log))
        expect(report.problems).toEqual([])
      }

      // The honest consumer still syncs, and a new honest peer gets a session.
      for (let i = 0; i < 3; i++) await c.sessions.logOf(honest).append('note', { after: i })
      await c.sessions.waitForSync(honest, 10_000)
      expect(h.sessions.logOf(honest).heads()).toEqual(c.sessions.logOf(honest).heads())
      const d = await pairPeer()
      try {
        const fresh = { provider: h.node.peerId, consumer: d.node.peerId }
        await d.sessions.connect(fresh, [dialAddress(h.node)])
        await d.sessions.logOf(fresh).append('note', { hello: true })
        await d.sessions.waitForSync(fresh, 10_000)
        expect(h.sessions.logOf(fresh).heads().consumer?.seq).toBe(2)
      } finally {
        await stopPeers([d])
      }
    })
  })

  describe('/tally/arbitrate/1.0.0', () => {
    let server: TallyNode
    let arbitration: ArbitrationServer
    const lines: string[] = []

    beforeAll(async () => {
      server = await loopbackNode({ identity: arbiter })
      arbitration = new ArbitrationServer(server.libp2p, {
        log: captureLog(lines),
        caseRate: { perSecond: 50, burst: 100 },
        uploadTimeoutMs: 5_000,
        // The arbiter daemon's decision: verify the record, replay it with the deal reducer, judge, sign.
        handler: async (c): Promise<CaseAnswer> => {
          const d = await decideCase(c.request.record, c.request, { identity: arbiter, arbiter: arbiter.peerId, now: NOW })
          if (d.type === 'ruling') return { type: 'ruling', caseId: c.id, ruling: d.ruling }
          if (d.type === 'evidence-request') return { type: 'evidence-request', caseId: c.id, request: d.request }
          return errorAnswer(d.code, d.message, c.id)
        },
      })
      await arbitration.start()
    })
    afterAll(async () => {
      await arbitration.stop()
      await stopAll([server])
    })

    it(`refuses or cuts off ${CASE_PEERS * CASES} mutated cases with typed reasons, then rules on an honest one`, async () => {
      const f = await fixtures()
      const pair = { provider: provider.peerId, consumer: consumer.peerId }
      const header = (record: Uint8Array, deal: CID = f.deal) =>
        encode(caseHeader({ pair, deal, dispute: f.dispute, appeal: false, size: record.byteLength }, ARBITRATE_PROTOCOL_VERSION))
      const chunk = (record: Uint8Array) => encode({ type: 'chunk', data: record })
      const plans = fc.sample(fc.tuple(fc.boolean(), planArb), { numRuns: CASE_PEERS * CASES, seed: SEED + 1 })
      await Promise.all(
        Array.from({ length: CASE_PEERS }, async (_, a) => {
          const m = await loopbackNode()
          adversaries.push(m)
          for (const [mutateRecord, plan] of plans.slice(a * CASES, (a + 1) * CASES)) {
            let bytes: Uint8Array
            if (mutateRecord) {
              // A well-framed case whose record is mutated: it reaches the arbiter's verification and judgement.
              const record = applyMutations(f.record, plan.ms, [f.record, f.smallCar])
              bytes = record.byteLength === 0 ? framed(header(f.record)) : framed(header(record), chunk(record))
            } else {
              bytes = mutateTranscript([header(f.record), chunk(f.record)], plan, [f.record])
            }
            await blast(m, server, ARBITRATE_PROTOCOL, bytes)
          }
        }),
      )
      expect(await waitFor(() => arbitration.active === 0, 5_000)).toBe(true)

      expect(lines.filter((l) => CRASH.test(l))).toEqual([])
      expect(Object.keys(arbitration.stats.cutOff).filter((n) => /^(TypeError|RangeError|ReferenceError|SyntaxError|Error)$/.test(n))).toEqual([])
      expect(arbitration.stats.answered['internal']).toBeUndefined()
      const handled = Object.values(arbitration.stats.answered).reduce((n, k) => n + k, 0) + Object.values(arbitration.stats.cutOff).reduce((n, k) => n + k, 0)
      expect(handled).toBeGreaterThanOrEqual(CASES)

      const honest = await loopbackNode()
      adversaries.push(honest)
      const out = await submitCase(honest.libp2p, multiaddr(dialAddress(server)), {
        pair,
        deal: f.deal,
        dispute: f.dispute,
        appeal: false,
        record: f.record,
      })
      expect(out.type).toBe('ruling')
    })
  })
})

/**
 * A gossip benchmark host: many Tally nodes in one process, each
 * subscribed to every observation shard with the real observation
 * validator, driven by scripts/bench/gossip.ts over the fork IPC channel
 * (`{id, op, args}` in, `{id, ok, value | error}` out).
 */
import '@tally/core'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { encode, Identity, type PeerIdString } from '@tally/core'
import { signObservation } from '../../../packages/deal/src/index.ts'
import {
  createTallyNode,
  localNetwork,
  observationTopic,
  observationTopics,
  registerObservationValidator,
  type TallyNode,
} from '../../../packages/node/src/index.ts'
import { type BenchOps, serveBenchOps } from '../common.ts'

const nodes: TallyNode[] = []
const subjects: PeerIdString[] = Array.from({ length: 64 }, () => Identity.generate().peerId)
const seqs = new Map<TallyNode, number>()
/** key `${monitor}#${seq}` -> [publish time (ms, shared wall clock with sub-ms resolution), topic]. */
let sent = new Map<string, [number, string]>()
/** key -> [last receipt time, receipts] */
let received = new Map<string, [number, number]>()
let cpuMark = process.cpuUsage()
let wallMark = performance.now()
let payloadBytes = 0
const lag = monitorEventLoopDelay({ resolution: 5 })
lag.enable()

/**
 * Connection-monitor pings every 60 s instead of 10 s: 25 nodes share this
 * process, so their ~700 connections' pings (a stream each) would cost a
 * tenth of a core here that one node in its own process never notices.
 */
const PING_INTERVAL_MS = 60_000

const clock = () => performance.timeOrigin + performance.now()
// Fills the observation to ~1 KiB, the size the issue names.
const PADDING = 'x'.repeat(200)

function loopback(node: TallyNode): string {
  const addr = node.multiaddrs().find((a) => a.startsWith('/ip4/127.0.0.1/'))
  if (addr === undefined) throw new Error('no loopback address')
  return addr
}

function observation(node: TallyNode): { topic: string; bytes: Uint8Array; key: string } {
  const seq = (seqs.get(node) ?? 0) + 1
  seqs.set(node, seq)
  const subject = subjects[Math.floor(Math.random() * subjects.length)]!
  const now = Date.now()
  const doc = signObservation(node.identity, {
    subject,
    seq,
    window: { start: now - 10_000, end: now },
    samples: { sent: 10, ok: 10 },
    availabilityBp: 10_000,
    latencyUs: { p50: 300, p95: 700, p99: 900 },
    challenges: [
      { kind: 'identity', ok: true, durationMs: 1, detail: PADDING },
      { kind: 'identity', ok: true, durationMs: 1, detail: PADDING },
      { kind: 'compute', ok: true, durationMs: 12, detail: PADDING },
    ],
    credential: null,
    issuedAt: now,
  })
  return { topic: observationTopic(subject), bytes: encode(doc), key: `${node.peerId}#${seq}` }
}

/** Node `index` (network-wide) follows `count` of the shards, round-robin, so each shard has the same number of subscribers. */
function shardsOf(index: number, count: number): string[] {
  const all = observationTopics()
  return Array.from({ length: count }, (_, j) => all[(index * count + j) % all.length]!)
}

const subscribed = new Map<TallyNode, string[]>()

async function add(bootstrap: string[], index: number, shardsPerNode: number): Promise<TallyNode> {
  const node = await createTallyNode({
    identity: Identity.generate(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    network: { ...localNetwork(), pingIntervalMs: PING_INTERVAL_MS },
    bootTimeoutMs: 20_000,
  })
  const topics = shardsOf(index, shardsPerNode)
  const mine = new Set(topics)
  registerObservationValidator(node.gossip, {
    onAccept: (obs, _bytes, ctx) => {
      if (obs.by === node.peerId || !mine.has(ctx.topic)) return
      const key = `${obs.by}#${obs.body.seq}`
      const t = clock()
      const r = received.get(key)
      if (r === undefined) received.set(key, [t, 1])
      else {
        r[0] = Math.max(r[0], t)
        r[1]++
      }
    },
  })
  for (const topic of topics) node.gossip.subscribe(topic, () => {})
  subscribed.set(node, topics)
  nodes.push(node)
  return node
}

const ops: BenchOps = {
  async start(args) {
    const count = args['count'] as number
    const offset = args['offset'] as number
    const shardsPerNode = args['shardsPerNode'] as number
    const bootstrap = args['bootstrap'] as string[]
    let first = 0
    if (bootstrap.length === 0) {
      bootstrap.push(loopback(await add([], offset, shardsPerNode)))
      first = 1
    }
    for (let i = first; i < count; i += 4)
      await Promise.all(Array.from({ length: Math.min(4, count - i) }, (_, j) => add(bootstrap, offset + i + j, shardsPerNode)))
    return { addrs: nodes.map(loopback), subscriptions: nodes.map((n) => [n.peerId, subscribed.get(n)]) }
  },

  /** One self-lookup per node so routing tables (and connections) fill, then the smallest mesh over nodes and topics. */
  async settle() {
    for (const node of nodes) {
      try {
        for await (const _ of node.libp2p.services.dht.getClosestPeers(node.libp2p.peerId.toMultihash().bytes, { signal: AbortSignal.timeout(10_000) })) {
          // draining fills the routing table
        }
      } catch {
        // a slow lookup only means fewer connections
      }
    }
    return ops['mesh']!({})
  },

  async mesh() {
    let min = Number.POSITIVE_INFINITY
    for (const node of nodes) for (const topic of subscribed.get(node) ?? []) min = Math.min(min, node.gossip.meshPeers(topic).length)
    const connections = nodes.reduce((s, n) => s + n.libp2p.getConnections().length, 0) / nodes.length
    return { meshMin: min, connectionsAvg: connections }
  },

  async mark() {
    sent = new Map()
    received = new Map()
    lag.reset()
    cpuMark = process.cpuUsage()
    wallMark = performance.now()
    return {}
  },

  /** Publish from local node `node` at each wall-clock time in `at` (ms, shared clock). */
  async publish(args) {
    const schedule = args['schedule'] as { node: number; at: number }[]
    await Promise.all(
      schedule.map(
        ({ node: index, at }) =>
          new Promise<void>((resolve) => {
            setTimeout(
              () => {
                const node = nodes[index]!
                const { topic, bytes, key } = observation(node)
                payloadBytes = bytes.byteLength
                sent.set(key, [clock(), topic])
                node.gossip.publish(topic, bytes).then(
                  () => resolve(),
                  () => resolve(),
                )
              },
              Math.max(0, at - clock()),
            )
          }),
      ),
    )
    return { published: schedule.length }
  },

  async collect() {
    const cpu = process.cpuUsage(cpuMark)
    return {
      sent: [...sent.entries()],
      received: [...received.entries()].map(([k, [t, n]]) => [k, t, n]),
      cpuUs: cpu.user + cpu.system,
      wallMs: performance.now() - wallMark,
      lagP50Ms: lag.percentile(50) / 1e6,
      lagP99Ms: lag.percentile(99) / 1e6,
      lagMaxMs: lag.max / 1e6,
      bytes: payloadBytes,
    }
  },

  async stop() {
    await Promise.allSettled(nodes.map((n) => n.stop()))
    return {}
  },
}

serveBenchOps(ops)

/**
 * A benchmark host: runs many Tally nodes in one process and obeys the
 * driver (scripts/bench/net-discovery.ts) over the fork IPC channel. Each
 * request is `{id, op, args}`; each answer `{id, ok, value | error}`.
 */
import '@tally/core'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Identity, issueCredential } from '@tally/core'
import {
  capabilityCid,
  capabilityKey,
  createTallyNode,
  FrameStream,
  handleProtocol,
  localNetwork,
  multiaddr,
  signOffer,
  type TallyNode,
} from '../../../packages/node/src/index.ts'
import { type BenchOps, serveBenchOps } from '../common.ts'

const ECHO = '/tally-bench/echo/1.0.0'
const lag = monitorEventLoopDelay({ resolution: 10 })
lag.enable()
const nodes: TallyNode[] = []

function loopback(node: TallyNode): string {
  const addr = node.multiaddrs().find((a) => a.startsWith('/ip4/127.0.0.1/'))
  if (addr === undefined) throw new Error('no loopback address')
  return addr
}

function rssMiB(): number {
  return process.memoryUsage().rss / 1024 / 1024
}

async function settleMemory(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 3; i++) {
    gc?.()
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn))
}

const churn = { opened: 0, closed: 0 }
function watch(node: TallyNode): TallyNode {
  node.libp2p.addEventListener('connection:open', () => churn.opened++)
  node.libp2p.addEventListener('connection:close', () => churn.closed++)
  return node
}

const ops: BenchOps = {
  async baseline() {
    await settleMemory()
    return { rssMiB: rssMiB() }
  },

  /** Start `count` nodes bootstrapping from `bootstrap` (the first becomes a seed when the list is empty). */
  async start(args) {
    const count = args['count'] as number
    let bootstrap = args['bootstrap'] as string[]
    const config = (b: string[]) => ({
      identity: Identity.generate(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: b,
      network: { ...localNetwork(), ...(process.env['BENCH_PING_MS'] ? { pingIntervalMs: Number(process.env['BENCH_PING_MS']) } : {}) },
      bootTimeoutMs: 20_000,
    })
    if (bootstrap.length === 0) {
      nodes.push(watch(await createTallyNode(config([]))))
      bootstrap = [loopback(nodes[0]!)]
    }
    const todo = count - nodes.length
    await inBatches(
      Array.from({ length: todo }, (_, i) => i),
      3,
      async () => {
        nodes.push(watch(await createTallyNode(config(bootstrap))))
      },
    )
    const failed = nodes.filter((n) => n.boot !== undefined && n.boot.configured > 0 && n.boot.connected === 0)
    return {
      addrs: nodes.map(loopback),
      peers: nodes.map((n) => n.peerId),
      bootFailed: failed.length,
      bootFailures: failed.slice(0, 3).flatMap((n) => n.boot?.failures ?? []),
    }
  },

  /**
   * What a running network does on its own within minutes: a self-lookup
   * (the periodic self-query) and lookups of random keys (the routing-table
   * refresh), per node, once everyone has joined.
   */
  async settle(args) {
    let timedOut = 0
    const rounds = (args['rounds'] as number | undefined) ?? 3
    await inBatches(nodes, 5, async (node) => {
      for (let r = 0; r < rounds; r++) {
        const key = r === 0 ? node.libp2p.peerId.toMultihash().bytes : crypto.getRandomValues(new Uint8Array(32))
        try {
          for await (const _ of node.libp2p.services.dht.getClosestPeers(key, { signal: AbortSignal.timeout(30_000) })) {
            // drain
          }
        } catch {
          timedOut++ // aborting a query throws (pitfall 8); the table is filled as far as it got
        }
      }
    })
    const sizes = nodes.map((n) => (n.libp2p.services.dht as unknown as { routingTable: { size: number } }).routingTable.size)
    return { timedOut, routingTableMin: Math.min(...sizes), connectionsAvg: nodes.reduce((s, n) => s + n.libp2p.getConnections().length, 0) / nodes.length }
  },

  async connections() {
    return { connections: nodes.reduce((sum, n) => sum + n.libp2p.getConnections().length, 0) / nodes.length }
  },

  /** CPU time used so far (ms) and event-loop delay since the last call. */
  async cpu() {
    const c = process.cpuUsage()
    const value = { cpuMs: (c.user + c.system) / 1000, lagP50Ms: lag.percentile(50) / 1e6, lagP99Ms: lag.percentile(99) / 1e6, lagMaxMs: lag.max / 1e6 }
    lag.reset()
    return value
  },

  async churn() {
    const value = { ...churn }
    churn.opened = 0
    churn.closed = 0
    return value
  },

  async rss() {
    await settleMemory()
    return { rssMiB: rssMiB(), nodes: nodes.length }
  },

  async announce(args) {
    const node = nodes[args['node'] as number]!
    const hw = args['hw'] as string
    const now = Date.now()
    const credential = issueCredential(node.identity, {
      subject: node.peerId,
      roles: ['provider'],
      jurisdiction: 'DE',
      scope: {},
      notBefore: now - 60_000,
      notAfter: now + 3_600_000,
    })
    const offer = signOffer(node.identity, {
      provider: node.peerId,
      hardware: { class: hw, count: 1, attestationSource: 'declared' },
      jurisdiction: 'DE',
      price: { perEpoch: { amount: 100, asset: 'USD' }, epochMs: 60_000 },
      sla: { availabilityBp: 9_900, latencyP95Us: 5_000 },
      monitors: [],
      arbiters: [],
      rails: ['ledger'],
      credentials: [credential],
      validUntil: now + 3_600_000,
      addresses: [loopback(node)],
    })
    const result = await node.discovery.announce(offer)
    return { ms: result.durationMs, reached: result.reached, peer: node.peerId }
  },

  /** One provide of one capability key (what Discovery does per key), timed to completion. */
  async provide(args) {
    const node = nodes[args['node'] as number]!
    const cid = capabilityCid(capabilityKey({ hardwareClass: args['hw'] as string }))
    const start = performance.now()
    let reached = 0
    for await (const e of node.libp2p.services.dht.provide(cid, { signal: AbortSignal.timeout(30_000) })) {
      if (e.name === 'PEER_RESPONSE' && e.messageName === 'ADD_PROVIDER') reached++
    }
    return { ms: performance.now() - start, reached, peer: node.peerId }
  },

  /** Time until the first provider of `hw` is reported. */
  async find(args) {
    const node = nodes[args['node'] as number]!
    const start = performance.now()
    for await (const candidate of node.discovery.findProviders({ hardwareClass: args['hw'] as string }, { limit: 1, timeoutMs: 10_000 })) {
      return { ms: performance.now() - start, peer: candidate.peer }
    }
    return { ms: performance.now() - start, peer: null }
  },

  async echoServe(args) {
    const node = nodes[args['node'] as number]!
    await handleProtocol(
      node.libp2p,
      ECHO,
      async ({ frames }) => {
        for (;;) {
          const frame = await frames.read()
          if (frame === null) return
          await frames.write(frame)
        }
      },
      { frames: { maxFrameBytes: 1024 }, log: node.log },
    )
    return { addr: loopback(node) }
  },

  /** Request/response round trips on one open stream to `target`. */
  async echoRtt(args) {
    const node = nodes[args['node'] as number]!
    const stream = await node.libp2p.dialProtocol(multiaddr(args['target'] as string), ECHO)
    const frames = new FrameStream(stream, { maxFrameBytes: 1024 })
    const payload = new Uint8Array(64)
    const samples: number[] = []
    for (let i = 0; i < (args['n'] as number); i++) {
      const start = performance.now()
      await frames.write(payload)
      await frames.read()
      samples.push(performance.now() - start)
    }
    await frames.close()
    return { samples }
  },

  async stop() {
    await Promise.allSettled(nodes.map((n) => n.stop()))
    setImmediate(() => process.exit(0))
    return {}
  },
}

serveBenchOps(ops)

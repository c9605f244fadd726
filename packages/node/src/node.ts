import '@tally/core' // Node 20 polyfills libp2p needs, before any libp2p code runs
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, type Identify } from '@libp2p/identify'
import type { Libp2p, Logger, PeerDiscovery } from '@libp2p/interface'
import { kadDHT, type KadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { logger } from '@libp2p/logger'
import { mdns } from '@libp2p/mdns'
import { noise } from '@libp2p/noise'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { type Identity, loadOrCreateIdentity, type PeerIdString } from '@tally/core'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { type NodeConfig, parseNodeConfig, type ResolvedNodeConfig } from './config.ts'
import {
  BOOTSTRAP_RETRY_INTERVAL_MS,
  GOSSIP_MAX_RPC_BYTES,
  KAD_PROTOCOL,
  OBSERVATION_MAX_BYTES,
  PING_MAX_INBOUND_STREAMS,
  PING_MAX_OUTBOUND_STREAMS,
} from './constants.ts'
import { Discovery } from './discovery.ts'
import { Gossip } from './gossip.ts'
import { SCORE_THRESHOLDS, scoreParams } from './gossip-score.ts'
import { OfferServer } from './offer-protocol.ts'
import { tallyTopics } from './topics.ts'

export type TallyServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
}
export type TallyLibp2p = Libp2p<TallyServices>

/** Something that lives as long as the node (a pair-session service, an app's daemon loop). */
export interface NodeComponent {
  start?(): void | Promise<void>
  stop(): void | Promise<void>
}

export interface BootReport {
  /** Bootstrap peers dialed successfully. */
  connected: number
  /** Bootstrap peers configured. */
  configured: number
  /** DHT routing table size after the first self-lookup. */
  routingTable: number
  /** Why bootstrap dials failed (latest reason per address, at most 8). */
  failures: string[]
}

export type NodeStatus = 'stopped' | 'starting' | 'started' | 'stopping'

export interface TallyNode {
  readonly identity: Identity
  readonly peerId: PeerIdString
  readonly libp2p: TallyLibp2p
  readonly config: ResolvedNodeConfig
  /** Scoped logger (`tally:node:<peer suffix>`); enable with DEBUG=tally:*. */
  readonly log: Logger
  readonly status: NodeStatus
  /** The offer this node serves on /tally/offer/1.0.0. */
  readonly offers: OfferServer
  readonly discovery: Discovery
  readonly gossip: Gossip
  /** Outcome of the last boot (bootstrap dials and first self-lookup). */
  readonly boot: BootReport | undefined
  /** Dialable addresses including `/p2p/<peer id>`. */
  multiaddrs(): string[]
  /** Start (idempotent): listen, serve, dial the bootstrap list, fill the routing table (bounded by bootTimeoutMs). */
  start(): Promise<void>
  /** Stop (idempotent): components, discovery, protocols, then libp2p; resolves when all of it has stopped. */
  stop(): Promise<void>
  /** Tie `component` to the node's lifecycle: started now if the node runs, stopped (in reverse order) before libp2p. */
  register(component: NodeComponent): Promise<void>
}

export interface CreateNodeOptions {
  /** Start before returning (default true). */
  start?: boolean
}

/** Assemble a Tally node from `config` (validated; `NodeConfigError` names the bad field). */
export async function createTallyNode(config: NodeConfig, opts: CreateNodeOptions = {}): Promise<TallyNode> {
  const resolved = parseNodeConfig(config)
  const identity = resolved.identity ?? (await loadOrCreateIdentity(resolved.dataDir as string)).identity
  const libp2p = await createLibp2p<TallyServices>(libp2pOptions(resolved, identity))
  const node = new Node(resolved, identity, libp2p)
  if (opts.start !== false) {
    try {
      await node.start()
    } catch (err) {
      await node.stop().catch(() => {})
      throw err
    }
  }
  return node
}

function libp2pOptions(config: ResolvedNodeConfig, identity: Identity): Libp2pOptions<TallyServices> {
  const net = config.network
  const peerDiscovery: ((components: Parameters<ReturnType<typeof mdns>>[0]) => PeerDiscovery)[] = net.mdns ? [mdns()] : []
  return {
    start: false,
    privateKey: identity.privateKey,
    addresses: { listen: config.listen, ...(config.announce === undefined ? {} : { announce: config.announce }) },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: { allow: net.allowList, maxConnections: net.maxConnections },
    connectionMonitor: { pingInterval: net.pingIntervalMs },
    services: {
      identify: identify(),
      ping: ping({ maxInboundStreams: PING_MAX_INBOUND_STREAMS, maxOutboundStreams: PING_MAX_OUTBOUND_STREAMS }),
      dht: kadDHT({
        protocol: KAD_PROTOCOL,
        // Auto mode picks server only with a public address; every Tally node serves the DHT (pitfall 4).
        clientMode: false,
        kBucketSize: config.dht.kBucketSize,
        querySelfInterval: config.dht.querySelfIntervalMs,
        peerInfoMapper: net.allowPrivateAddresses ? passthroughMapper : removePrivateAddressesMapper,
        // Discovery re-provides on its own schedule; kad-dht's reprovider only drops expired records of others.
        reprovide: { interval: Math.min(config.dht.providerRecordValidityMs, 60 * 60_000), validity: config.dht.providerRecordValidityMs, threshold: 0 },
        logPrefix: 'tally:kad',
        metricsPrefix: 'tally_kad',
        datastorePrefix: '/tally/kad',
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        maxInboundDataLength: GOSSIP_MAX_RPC_BYTES,
        fastMsgIdFn: fastMessageId,
        // IDONTWANT pays off for large messages (warrants); for an observation it is one more frame per mesh peer,
        // costing about what the duplicate it might prevent costs, and most duplicates are already in flight.
        idontwantMinDataSize: OBSERVATION_MAX_BYTES + 1,
        scoreParams: scoreParams(tallyTopics(config.gossip.observationShards), net.gossipIpColocationWhitelist),
        scoreThresholds: SCORE_THRESHOLDS,
      }),
    },
  }
}

/**
 * Lets gossipsub drop a duplicate before checking its signature: every node
 * gets each message from several mesh peers, and without this each copy
 * cost an Ed25519 verify (measured: most of gossip's CPU in `pnpm bench
 * gossip`). Under StrictSign, origin and seqno are the message id itself,
 * and gossipsub caches a fast id only after the message validated, so a
 * forged copy cannot shadow the real one.
 */
function fastMessageId(msg: { from?: Uint8Array; seqno?: Uint8Array; data?: Uint8Array }): string {
  if (msg.from != null && msg.seqno != null) return `${Buffer.from(msg.from).toString('base64')}/${Buffer.from(msg.seqno).toString('base64')}`
  return createHash('sha256')
    .update(msg.data ?? new Uint8Array(0))
    .digest('base64')
}

class Node implements TallyNode {
  readonly identity: Identity
  readonly peerId: PeerIdString
  readonly libp2p: TallyLibp2p
  readonly config: ResolvedNodeConfig
  readonly log: Logger
  readonly offers: OfferServer
  readonly discovery: Discovery
  readonly gossip: Gossip
  boot: BootReport | undefined
  status: NodeStatus = 'stopped'
  readonly #components: NodeComponent[] = []
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined
  #retry: ReturnType<typeof setInterval> | undefined
  #lifetime = new AbortController()

  constructor(config: ResolvedNodeConfig, identity: Identity, libp2p: TallyLibp2p) {
    this.config = config
    this.identity = identity
    this.peerId = identity.peerId
    this.libp2p = libp2p
    this.log = logger(`tally:node:${identity.peerId.slice(-8)}`)
    this.offers = new OfferServer(libp2p, this.log.newScope('offer'))
    this.discovery = new Discovery(libp2p, this.offers, { log: this.log.newScope('discovery'), kBucketSize: config.dht.kBucketSize, ...config.discovery })
    this.gossip = new Gossip(libp2p.services.pubsub, identity.peerId, { log: this.log.newScope('gossip'), shards: config.gossip.observationShards })
  }

  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((a) => a.toString())
  }

  start(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping.then(() => this.start())
    this.#starting ??= this.#start()
    return this.#starting
  }

  async #start(): Promise<void> {
    this.status = 'starting'
    this.#lifetime = new AbortController()
    await this.libp2p.start()
    await this.offers.start()
    for (const c of this.#components) await c.start?.()
    this.status = 'started'
    this.boot = await this.#boot(true)
    if (this.config.bootstrap.length > 0) {
      this.#retry = setInterval(() => {
        if (this.libp2p.getConnections().length === 0) void this.#boot().then((b) => (this.boot = b))
      }, BOOTSTRAP_RETRY_INTERVAL_MS)
    }
    this.log('started %s on %s; boot %o', this.peerId, this.multiaddrs().join(' '), this.boot)
  }

  stop(): Promise<void> {
    if (this.#starting === undefined) return this.#stopping ?? Promise.resolve()
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => {})
    this.status = 'stopping'
    this.#lifetime.abort()
    if (this.#retry !== undefined) clearInterval(this.#retry)
    this.#retry = undefined
    for (const c of [...this.#components].reverse()) {
      await Promise.resolve(c.stop()).catch((err: unknown) => this.log.error('component stop failed: %s', (err as Error).message))
    }
    await this.discovery.stop()
    await this.offers.stop()
    this.gossip.stop()
    await this.libp2p.stop()
    this.status = 'stopped'
    this.#starting = undefined
    this.#stopping = undefined
  }

  async register(component: NodeComponent): Promise<void> {
    this.#components.push(component)
    if (this.status === 'started') await component.start?.()
  }

  /**
   * Dial the bootstrap list, retrying with backoff until one answers or the
   * boot timeout passes, then wait until the routing table is filled
   * (pitfall 5): at first start by kad-dht's own initial self-lookup, which
   * runs once the first peer is in the table (a second lookup of ours
   * would double the cost of joining); on a later re-boot by one explicit
   * self-lookup.
   */
  async #boot(first = false): Promise<BootReport> {
    const configured = this.config.bootstrap.length
    const dht = this.libp2p.services.dht
    if (configured === 0) return { connected: 0, configured, routingTable: routingTableSize(dht), failures: [] }
    const signal = AbortSignal.any([this.#lifetime.signal, AbortSignal.timeout(this.config.bootTimeoutMs)])
    setMaxListeners(Infinity, signal)
    const selfQueryDone = first ? nextEvent(this.libp2p as unknown as EventTarget, 'kad-dht:query:self', signal) : undefined
    const failures = new Map<string, string>()
    let connected = 0
    for (let attempt = 0; connected === 0 && !signal.aborted; attempt++) {
      const dials = await Promise.allSettled(this.config.bootstrap.map((addr) => this.libp2p.dial(multiaddr(addr), { signal })))
      connected = dials.filter((d) => d.status === 'fulfilled').length
      dials.forEach((d, i) => {
        if (d.status === 'rejected') failures.set(this.config.bootstrap[i] as string, `${(d.reason as Error).name}: ${(d.reason as Error).message}`)
      })
      if (connected === 0) await sleep(Math.min(250 * 2 ** attempt, 4_000), signal)
    }
    for (const [addr, why] of failures) this.log('bootstrap dial %s failed: %s', addr, why)
    if (connected > 0 && selfQueryDone !== undefined) {
      if (!(await selfQueryDone)) this.log('initial self-lookup did not finish within the boot timeout')
    } else if (connected > 0) {
      try {
        for await (const _ of dht.getClosestPeers(this.libp2p.peerId.toMultihash().bytes, { signal })) {
          // draining the query is what fills the routing table
        }
      } catch (err) {
        this.log('self-lookup ended early: %s', (err as Error).message)
      }
    }
    return { connected, configured, routingTable: routingTableSize(dht), failures: [...failures].slice(0, 8).map(([addr, why]) => `${addr}: ${why}`) }
  }
}

/** Resolves true at the next `type` event on `target`, false if `signal` aborts first. */
function nextEvent(target: EventTarget, type: string, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (happened: boolean) => () => {
      target.removeEventListener(type, onEvent)
      signal.removeEventListener('abort', onAbort)
      resolve(happened)
    }
    const onEvent = finish(true)
    const onAbort = finish(false)
    target.addEventListener(type, onEvent, { once: true })
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}

function routingTableSize(dht: KadDHT): number {
  const table = (dht as Partial<{ routingTable: { size: number } }>).routingTable
  return typeof table?.size === 'number' ? table.size : -1
}

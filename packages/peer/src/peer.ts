import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { type CID, type Identity, loadOrCreateIdentity, type PeerIdString } from '@tally/core'
import type { Log } from '@tally/daemon'
import type { DealState, Observation } from '@tally/deal'
import { exportPairLogBytes, LevelStore, PairLog, type PairDescriptor, pairIdOf, type StoreWriteError } from '@tally/lineage'
import { createTallyNode, type NodeConfig, ObservationIntake, PairSessions, submitCase, type TallyNode, WarrantGossip, WarrantRegistry } from '@tally/node'
import { type ArbitrationAnswer, DealEngine, type EngineEvent, type EngineHooks } from './deal-engine.ts'

export interface PeerOptions {
  dataDir: string
  /** libp2p settings (listen, bootstrap, network); identity and data directory come from `dataDir`. */
  node: Omit<NodeConfig, 'dataDir' | 'identity'>
  log: Log
  /** Role-specific I/O for the deals of one pair (provider: executor; consumer: workload, rail). */
  hooks: (peer: TallyPeer, pair: PairDescriptor) => EngineHooks
  /** Known peers (multiaddrs ending in /p2p/<id>): arbiters, counterparties. Added to the peer store. */
  addressBook?: readonly string[]
  /** Whether to serve a pair a remote peer opens (a provider accepts consumers; a consumer only its own pairs). */
  acceptPair?: (pair: PairDescriptor, remote: PeerIdString) => boolean
  onEngineEvent?: (pair: PairDescriptor, event: EngineEvent) => void
  tickMs?: number
  /**
   * The store failed a durable write (disk full, directory unwritable …): it now refuses every write, so this
   * node can neither sign entries nor acknowledge the counterparty's until it is restarted on a repaired disk.
   * Already logged as an error naming the data directory. Daemons stop (`stopOnFault` of @tally/daemon).
   */
  onStoreFailure?: (err: StoreWriteError) => void
}

/**
 * The running peer: one identity, one LevelDB, one libp2p node; a pair
 * session and a deal engine per pair; monitor observations from gossip.
 * Daemons and the CLI differ only in the hooks they give it.
 */
export class TallyPeer {
  readonly identity: Identity
  readonly store: LevelStore
  readonly node: TallyNode
  readonly sessions: PairSessions
  readonly intake: ObservationIntake
  /** Warrants against equivocating monitors and parties, from gossip and our own intake. */
  readonly warrants: WarrantGossip
  readonly log: Log
  readonly #opts: PeerOptions
  readonly #logs = new Map<string, PairLog>()
  readonly #opening = new Map<string, Promise<PairLog>>()
  readonly #engines = new Map<string, DealEngine>()
  readonly #engineStarts = new Map<string, Promise<DealEngine>>()
  #stopped = false

  private constructor(opts: PeerOptions, identity: Identity, store: LevelStore, node: TallyNode) {
    this.#opts = opts
    this.identity = identity
    this.store = store
    this.node = node
    this.log = opts.log
    const registry = new WarrantRegistry()
    this.warrants = new WarrantGossip({
      gossip: node.gossip,
      identity,
      log: node.log,
      registry,
      store,
      onWarrant: (w, origin) => this.log.warn('warrant', { offender: w.offender, offence: w.offence, origin }),
    })
    // A monitor that signs two observations with one seq is warranted, and its evidence refused for later deals.
    this.intake = new ObservationIntake({
      gossip: node.gossip,
      store,
      log: node.log,
      warrants: registry,
      onConflict: (a, b) => void this.warrants.reportObservations(a, b).catch(() => undefined),
    })
    this.sessions = new PairSessions({
      node,
      store,
      logFor: (pair) => this.pairLog(pair),
      // Every batch of the counterparty's entries must be legal transitions before it is stored.
      validate: (pair) => async (added) => (await this.engine(pair)).validate(added),
      accept: (pair, remote) => opts.acceptPair?.(pair, remote) ?? false,
      // A counterparty that forks its chain is warranted: kept in our store and gossiped.
      warrants: this.warrants,
      onEvent: (e) => {
        if (e.type === 'cut-off') this.log.warn('pair session cut off', { peer: e.peer, code: e.code, reason: e.message })
        else if (e.type === 'session-open') {
          this.log.info('pair session open', { peer: e.peer, direction: e.direction })
          void this.#engineFor(e.pairId)
        } else if (e.type === 'session-close') this.log.info('pair session closed', { peer: e.peer, reason: e.reason })
      },
    })
  }

  static async start(opts: PeerOptions): Promise<TallyPeer> {
    const { identity } = await loadOrCreateIdentity(opts.dataDir)
    const store = await LevelStore.open(join(opts.dataDir, 'db'), {
      onWriteFailure: (err) => {
        opts.log.error('the store cannot write: no entry can be stored or acknowledged until the disk is fixed and the node restarted', {
          dataDir: opts.dataDir,
          store: err.dir,
          code: err.code,
          err: err.name,
          reason: err.message,
        })
        opts.onStoreFailure?.(err)
      },
    })
    let node: TallyNode
    try {
      node = await createTallyNode({ ...opts.node, identity, dataDir: opts.dataDir })
    } catch (err) {
      await store.close()
      throw err
    }
    const peer = new TallyPeer(opts, identity, store, node)
    for (const addr of opts.addressBook ?? []) await peer.remember(addr)
    await node.register(peer.warrants)
    await node.register(peer.intake)
    await peer.sessions.start()
    // Resume the deals of every pair this node holds.
    for (const status of peer.sessions.list()) await peer.engine(status.pair)
    return peer
  }

  get peerId(): PeerIdString {
    return this.identity.peerId
  }

  /** Add a multiaddr ending in /p2p/<id> to the peer store so the peer can be dialed by id. */
  async remember(addr: string): Promise<void> {
    const ma = multiaddr(addr)
    const id = ma.getComponents().find((c) => c.name === 'p2p')?.value
    if (id === undefined) throw new Error(`address ${addr} does not end in /p2p/<peer id>`)
    await this.node.libp2p.peerStore.merge(peerIdFromString(id), { multiaddrs: [ma] })
  }

  /** The pair log of `pair` (one instance per pair). */
  pairLog(pair: PairDescriptor): Promise<PairLog> {
    const id = pairIdOf(pair).toString()
    const have = this.#logs.get(id)
    if (have !== undefined) return Promise.resolve(have)
    let opening = this.#opening.get(id)
    if (opening === undefined) {
      opening = PairLog.open(this.store, pair, this.identity).then(async (log) => {
        await log.ensureOpen()
        this.#logs.set(id, log)
        return log
      })
      this.#opening.set(id, opening)
    }
    return opening
  }

  /** The deal engine of `pair`, started on first use. */
  engine(pair: PairDescriptor): Promise<DealEngine> {
    const id = pairIdOf(pair).toString()
    const have = this.#engines.get(id)
    if (have !== undefined) return Promise.resolve(have)
    let starting = this.#engineStarts.get(id)
    if (starting === undefined) {
      starting = (async () => {
        const log = await this.pairLog(pair)
        const engine = await DealEngine.start({
          log,
          hooks: this.#opts.hooks(this, pair),
          certify: this.identity,
          ...(this.#opts.tickMs !== undefined ? { tickMs: this.#opts.tickMs } : {}),
          onEvent: (event) => this.#opts.onEngineEvent?.(pair, event),
        })
        this.#engines.set(id, engine)
        return engine
      })()
      this.#engineStarts.set(id, starting)
    }
    return starting
  }

  engines(): DealEngine[] {
    return [...this.#engines.values()]
  }

  async #engineFor(pairId: string): Promise<void> {
    const status = this.sessions.list().find((s) => pairIdOf(s.pair).toString() === pairId)
    if (status !== undefined) await this.engine(status.pair)
  }

  /** Open (or resume) the pair with a counterparty and start its session. */
  async openPair(pair: PairDescriptor, addrs: readonly string[] = []): Promise<DealEngine> {
    const engine = await this.engine(pair)
    await this.sessions.add(pair, { addrs })
    return engine
  }

  /** Observations the deal's named monitors published for an epoch, from this node's intake. */
  async observationsFor(deal: DealState, epoch: number): Promise<Observation[]> {
    const t = deal.terms
    if (t === null || deal.start === null) return []
    const from = deal.start + epoch * t.epochMs
    const pair = this.pairOfDeal(deal)
    if (pair === undefined) return []
    return this.intake.observationsFor({
      subject: pair.provider,
      monitors: t.rule.monitors.map((m) => m.peer),
      from,
      to: from + t.epochMs,
      acceptedAt: deal.start,
    })
  }

  /** Subscribe to the provider's observation shard for a deal's named monitors. */
  async watchDeal(deal: DealState): Promise<void> {
    const pair = this.pairOfDeal(deal)
    if (deal.terms === null || pair === undefined) return
    await this.intake.watch(
      deal.key,
      pair.provider,
      deal.terms.rule.monitors.map((m) => m.peer),
    )
  }

  /** The pair a deal belongs to, among the pairs this peer runs. */
  pairOfDeal(deal: DealState): PairDescriptor | undefined {
    for (const e of this.#engines.values()) if (e.state.deals.has(deal.key)) return e.state.pair
    return undefined
  }

  /** Send a dispute, with the whole record, to the contract's arbiter (or appeal arbiter). */
  async arbitrate(deal: DealState, dispute: CID, appeal: boolean): Promise<ArbitrationAnswer> {
    const t = deal.terms
    const pair = this.pairOfDeal(deal)
    if (t === null || pair === undefined) return { refused: 'deal has no terms' }
    const arbiter = appeal ? t.appealArbiter : t.arbiter
    if (arbiter === null) return { refused: 'the contract names no appeal arbiter' }
    const log = await this.pairLog(pair)
    const record = await exportPairLogBytes(log)
    this.log.info('submitting dispute to arbiter', { arbiter, deal: deal.key, dispute: dispute.toString(), appeal, bytes: record.byteLength })
    const outcome = await submitCase(this.node.libp2p, peerIdFromString(arbiter), { pair, deal: deal.id, dispute, appeal, record }, { arbiter })
    if (outcome.type === 'ruling') return { ruling: outcome.ruling }
    return { evidenceRequest: outcome.request }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    for (const e of this.#engines.values()) await e.stop()
    await this.sessions.stop()
    await this.node.stop()
    for (const log of this.#logs.values()) await log.close()
    await this.store.close()
  }
}

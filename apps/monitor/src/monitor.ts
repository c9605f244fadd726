import { type CID, type Credential, cidOfBytes, encode, OPEN_TRUST_POLICY, type PeerIdString } from '@tally/core'
import { signObservation } from '@tally/deal'
import type { Store } from '@tally/lineage'
import {
  type ComputeResult,
  type ObservationDropReason,
  observationTopic,
  type ProbeSample,
  probeProvider,
  registerObservationValidator,
  type TallyNode,
  type VerifiedWarrant,
  WarrantGossip,
} from '@tally/node'
import type { MonitorSettings, WatchedProvider } from './config.ts'
import { type EventLog, silentLog } from './log.ts'
import { SeqAllocator } from './seq.ts'
import { type Window, WindowSamples, windowAt } from './window.ts'

/** A provider found by the DHT query is dropped after missing this many refreshes in a row. */
const DHT_TARGET_MISSES = 3

export interface Target {
  peer: PeerIdString
  addrs: string[]
  hardwareClass: string | undefined
  source: 'config' | 'dht'
  /** Last time the DHT query returned it (config targets: when added). */
  lastSeen: number
  /** Last probe outcome, for logging transitions only. */
  up: boolean | undefined
}

export interface MonitorCounters {
  probes: number
  probeFailures: number
  identityFailures: number
  computeChallenges: number
  computeFailures: number
  observationsPublished: number
  publishFailures: number
  warrantsIssued: number
  warrantsReceived: number
  /** Observations from others dropped by validation before relay (forged, stale, replayed …). */
  observationsDropped: number
  discoveryRuns: number
}

export interface MonitorOptions {
  /** A started (or starting) Tally node: its identity signs the observations. */
  node: TallyNode
  /** The node's store (lineage LevelStore in the data directory): seq reservations and warrants. */
  store: Pick<Store, 'write' | 'getMeta' | 'metaEntries'>
  settings: MonitorSettings
  /** The credential this monitor presents; its CID goes into each observation. */
  credential?: Credential
  log?: EventLog
  now?: () => number
}

/**
 * The tally-monitor daemon's core: probes the watched providers on a
 * schedule, folds each window's samples into one signed observation per
 * provider, and publishes it on the provider's shard topic. It also
 * validates observations relayed through it and issues a warrant when a
 * monitor signs two different observations with one seq.
 */
export class Monitor {
  readonly counters: MonitorCounters = {
    probes: 0,
    probeFailures: 0,
    identityFailures: 0,
    computeChallenges: 0,
    computeFailures: 0,
    observationsPublished: 0,
    publishFailures: 0,
    warrantsIssued: 0,
    warrantsReceived: 0,
    observationsDropped: 0,
    discoveryRuns: 0,
  }
  readonly node: TallyNode
  readonly warrants: WarrantGossip
  readonly settings: MonitorSettings
  readonly credentialCid: CID | null
  readonly #seqs: SeqAllocator
  readonly #log: EventLog
  readonly #now: () => number
  readonly #targets = new Map<PeerIdString, Target>()
  readonly #topics = new Map<string, { count: number; unsubscribe: () => void }>()
  readonly #computing = new Set<PeerIdString>()
  readonly #dropLogged = new Map<string, number>()
  #window: Window
  #windowsSinceStart = 0
  #samples = new Map<PeerIdString, WindowSamples>()
  #running = false
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined
  /** Probes in flight, by provider. */
  readonly #probing = new Map<PeerIdString, Promise<void>>()
  #probeOffset = 0
  #refreshTimer: ReturnType<typeof setInterval> | undefined
  #refreshing: Promise<void> | undefined
  #unregisterValidator: (() => void) | undefined

  private constructor(opts: MonitorOptions, seqs: SeqAllocator) {
    this.node = opts.node
    this.settings = opts.settings
    this.#seqs = seqs
    this.#log = opts.log ?? silentLog
    this.#now = opts.now ?? Date.now
    this.credentialCid = opts.credential === undefined ? null : cidOfBytes(encode(opts.credential))
    this.#window = windowAt(this.#now(), opts.settings.window.lengthMs)
    this.warrants = new WarrantGossip({
      gossip: opts.node.gossip,
      identity: opts.node.identity,
      log: opts.node.log.newScope('warrant'),
      store: opts.store,
      now: this.#now,
      onWarrant: (w, origin) => this.#onWarrant(w, origin),
    })
  }

  static async create(opts: MonitorOptions): Promise<Monitor> {
    if (opts.credential !== undefined && opts.credential.body.subject !== opts.node.peerId) {
      throw new TypeError(`credential is for ${opts.credential.body.subject}, not this monitor ${opts.node.peerId}`)
    }
    return new Monitor(opts, await SeqAllocator.open(opts.store))
  }

  get peerId(): PeerIdString {
    return this.node.peerId
  }

  /** The providers watched now. */
  targets(): Target[] {
    return [...this.#targets.values()].map((t) => ({ ...t, addrs: [...t.addrs] }))
  }

  /** The seq the next observation will carry. */
  get nextSeq(): number {
    return this.#seqs.peek()
  }

  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    await this.node.register(this.warrants)
    this.#unregisterValidator = registerObservationValidator(this.node.gossip, {
      shards: this.node.config.gossip.observationShards,
      now: this.#now,
      onConflict: (first, second) => {
        this.warrants.reportObservations(first, second).catch((err: unknown) => this.#log('error', 'warrant-failed', { error: err }))
      },
      onDrop: (reason, ctx) => this.#onDrop(reason, ctx),
    }).unregister
    for (const p of this.settings.watch.providers) this.#upsert(p, 'config')
    const query = this.settings.watch.query
    if (query !== undefined) {
      this.#refreshing = this.#refresh().finally(() => (this.#refreshing = undefined))
      this.#refreshTimer = setInterval(() => {
        this.#refreshing ??= this.#refresh().finally(() => (this.#refreshing = undefined))
      }, query.refreshMs)
    }
    this.#window = windowAt(this.#now(), this.settings.window.lengthMs)
    this.#windowsSinceStart = 0
    this.#startComputes()
    this.#log('info', 'monitor-started', {
      peerId: this.peerId,
      targets: this.#targets.size,
      query: query === undefined ? null : { hardwareClass: query.hardwareClass ?? null, jurisdiction: query.jurisdiction ?? null },
      windowMs: this.settings.window.lengthMs,
      nextSeq: this.#seqs.peek(),
    })
    this.#loop = this.#run()
  }

  /** Stop probing. The window in progress is not published: a partial window would only be replaced by the next run's. */
  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#wake?.()
    if (this.#refreshTimer !== undefined) clearInterval(this.#refreshTimer)
    await this.#loop
    await Promise.all(this.#probing.values())
    await this.#refreshing?.catch(() => {})
    this.#unregisterValidator?.()
    for (const { unsubscribe } of this.#topics.values()) unsubscribe()
    this.#topics.clear()
    this.warrants.stop()
    this.#log('info', 'monitor-stopped', { counters: this.counters })
  }

  /** Watch `provider` (idempotent; a config entry is never dropped by the DHT refresh). */
  watch(provider: WatchedProvider): void {
    this.#upsert(provider, 'config')
  }

  #upsert(p: WatchedProvider, source: Target['source']): void {
    if (p.peer === this.peerId) return
    const existing = this.#targets.get(p.peer)
    if (existing !== undefined) {
      existing.lastSeen = this.#now()
      if (p.addrs.length > 0) existing.addrs = [...p.addrs]
      existing.hardwareClass = p.hardwareClass ?? existing.hardwareClass
      if (source === 'config') existing.source = 'config'
      return
    }
    this.#targets.set(p.peer, { peer: p.peer, addrs: [...p.addrs], hardwareClass: p.hardwareClass, source, lastSeen: this.#now(), up: undefined })
    // Being subscribed keeps us in the shard's mesh, so our observations go out along it rather than by fanout.
    const topic = observationTopic(p.peer, this.node.config.gossip.observationShards)
    const sub = this.#topics.get(topic)
    if (sub !== undefined) sub.count++
    else this.#topics.set(topic, { count: 1, unsubscribe: this.node.gossip.subscribe(topic, () => {}) })
    this.#log('info', 'target-added', { provider: p.peer, source, addrs: p.addrs, hardwareClass: p.hardwareClass ?? null, topic })
  }

  #drop(peer: PeerIdString): void {
    const t = this.#targets.get(peer)
    if (t === undefined) return
    this.#targets.delete(peer)
    this.#samples.delete(peer)
    const topic = observationTopic(peer, this.node.config.gossip.observationShards)
    const sub = this.#topics.get(topic)
    if (sub !== undefined && --sub.count <= 0) {
      sub.unsubscribe()
      this.#topics.delete(topic)
    }
    this.#log('info', 'target-removed', { provider: peer, source: t.source })
  }

  async #refresh(): Promise<void> {
    const query = this.settings.watch.query
    if (query === undefined || !this.#running) return
    this.counters.discoveryRuns++
    let found = 0
    try {
      const q = {
        ...(query.hardwareClass === undefined ? {} : { hardwareClass: query.hardwareClass }),
        ...(query.jurisdiction === undefined ? {} : { jurisdiction: query.jurisdiction }),
      }
      for await (const r of this.node.discovery.discover(q, query.trust ?? OPEN_TRUST_POLICY, { limit: query.limit })) {
        if ('skipped' in r) {
          this.#log('debug', 'discovery-skipped', { provider: r.peer, reason: r.skipped })
          continue
        }
        found++
        this.#upsert({ peer: r.peer, addrs: r.offer.body.addresses, hardwareClass: r.offer.body.hardware.class }, 'dht')
      }
    } catch (err) {
      this.#log('warn', 'discovery-failed', { error: err })
      return
    }
    const stale = this.#now() - DHT_TARGET_MISSES * query.refreshMs
    for (const t of [...this.#targets.values()]) if (t.source === 'dht' && t.lastSeen < stale) this.#drop(t.peer)
    this.#log('info', 'discovery', { found, targets: this.#targets.size })
  }

  async #run(): Promise<void> {
    const { intervalMs } = this.settings.probe
    while (this.#running) {
      const started = this.#now()
      try {
        if (started >= this.#window.end) await this.#closeWindow()
        await this.#probeRound()
      } catch (err) {
        this.#log('error', 'round-failed', { error: err })
      }
      if (!this.#running) break
      const wakeAt = Math.min(started + intervalMs, this.#window.end)
      await this.#sleep(Math.max(0, wakeAt - this.#now()))
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = done
    })
  }

  #samplesOf(peer: PeerIdString): WindowSamples {
    let ws = this.#samples.get(peer)
    if (ws === undefined) {
      ws = new WindowSamples(peer, this.#window)
      this.#samples.set(peer, ws)
    }
    return ws
  }

  /**
   * Start a probe for every target without one in flight (at most
   * `concurrency` at once), and return without waiting: a provider that
   * does not answer holds only its own probe for `timeoutMs`, never the
   * schedule of the others, whose windows would otherwise go empty.
   */
  async #probeRound(): Promise<void> {
    const { concurrency, timeoutMs, identity } = this.settings.probe
    const targets = [...this.#targets.values()]
    // Start each round one further along, so a full slate of slow probes does not always starve the same targets.
    this.#probeOffset = targets.length === 0 ? 0 : (this.#probeOffset + 1) % targets.length
    for (let i = 0; i < targets.length && this.#probing.size < concurrency; i++) {
      const target = targets[(this.#probeOffset + i) % targets.length]!
      if (this.#probing.has(target.peer)) continue
      const probe = probeProvider(this.node, target.peer, { addrs: target.addrs, identity, timeoutMs, now: this.#now })
        .then((sample) => {
          if (this.#running && this.#targets.has(target.peer)) this.#record(target, sample)
        })
        .catch((err: unknown) => this.#log('error', 'probe-failed', { provider: target.peer, error: err }))
        .finally(() => this.#probing.delete(target.peer))
      this.#probing.set(target.peer, probe)
    }
  }

  #record(target: Target, sample: ProbeSample): void {
    this.counters.probes++
    const up = this.#samplesOf(target.peer).add(sample)
    if (!up) this.counters.probeFailures++
    if (sample.identity !== null && !sample.identity.ok && sample.reachable) this.counters.identityFailures++
    if (target.up !== up) {
      const reason = sample.error ?? sample.identity?.error
      this.#log(up ? 'info' : 'warn', up ? 'provider-up' : 'provider-down', {
        provider: target.peer,
        rttUs: sample.rttUs,
        ...(reason === undefined ? {} : { reason }),
      })
      target.up = up
    }
  }

  #startComputes(): void {
    const { everyWindows, n, timeoutMs } = this.settings.compute
    if (everyWindows === 0 || this.#windowsSinceStart % everyWindows !== 0) return
    for (const target of this.#targets.values()) {
      if (this.#computing.has(target.peer)) continue
      this.#computing.add(target.peer)
      this.counters.computeChallenges++
      const compute = { n, ...(target.hardwareClass === undefined ? {} : { hardwareClass: target.hardwareClass }) }
      probeProvider(this.node, target.peer, {
        addrs: target.addrs,
        identity: false,
        compute,
        timeoutMs: this.settings.probe.timeoutMs,
        computeTimeoutMs: timeoutMs,
      })
        .then((sample) => {
          const result: ComputeResult = sample.compute ?? {
            ok: false,
            correct: false,
            n,
            measuredMs: 0,
            reportedMs: null,
            solver: null,
            judgement: null,
            error: sample.error ?? 'unreachable',
          }
          if (!result.ok) this.counters.computeFailures++
          // A late answer lands in the window current when it arrives, so no result is lost to a window boundary.
          if (this.#targets.has(target.peer) && this.#running) this.#samplesOf(target.peer).setCompute(result)
          this.#log(result.ok ? 'info' : 'warn', 'compute-challenge', {
            provider: target.peer,
            ok: result.ok,
            correct: result.correct,
            n,
            measuredMs: result.measuredMs,
            reportedMs: result.reportedMs,
            solver: result.solver,
            maxMs: result.judgement?.maxMs ?? null,
            ...(result.error === undefined ? {} : { error: result.error }),
          })
        })
        .catch((err: unknown) => this.#log('error', 'compute-challenge-failed', { provider: target.peer, error: err }))
        .finally(() => this.#computing.delete(target.peer))
    }
  }

  async #closeWindow(): Promise<void> {
    const closing = this.#samples
    const window = this.#window
    this.#samples = new Map()
    this.#window = windowAt(this.#now(), this.settings.window.lengthMs)
    this.#windowsSinceStart++
    this.#startComputes()
    const shards = this.node.config.gossip.observationShards
    for (const [peer, ws] of closing) {
      if (ws.sent === 0) continue
      const seq = await this.#seqs.next()
      const body = ws.body(seq, this.#now(), this.credentialCid)
      if (body === null) continue
      const observation = signObservation(this.node.identity, body)
      const bytes = encode(observation)
      const topic = observationTopic(peer, shards)
      try {
        const { recipients } = await this.node.gossip.publish(topic, bytes)
        this.counters.observationsPublished++
        this.#log('info', 'observation-published', {
          provider: peer,
          seq,
          window,
          topic,
          recipients,
          samples: body.samples,
          availabilityBp: body.availabilityBp,
          latencyUs: body.latencyUs,
          challenges: body.challenges.map((c) => ({ kind: c.kind, ok: c.ok })),
          bytes: bytes.byteLength,
        })
      } catch (err) {
        this.counters.publishFailures++
        this.#log('error', 'publish-failed', { provider: peer, seq, topic, error: err })
      }
    }
  }

  #onDrop(reason: ObservationDropReason, ctx: { topic: string; from: PeerIdString; via: PeerIdString; detail: string }): void {
    this.counters.observationsDropped++
    // One line per (reason, origin) per minute: a flood must not become a flood of log lines.
    const key = `${reason}/${ctx.from}`
    const now = this.#now()
    if ((this.#dropLogged.get(key) ?? -Infinity) > now - 60_000) return
    if (this.#dropLogged.size > 1024) this.#dropLogged.clear()
    this.#dropLogged.set(key, now)
    this.#log('warn', 'observation-dropped', { reason, from: ctx.from, via: ctx.via, topic: ctx.topic, detail: ctx.detail })
  }

  #onWarrant(w: VerifiedWarrant, origin: 'local' | 'remote'): void {
    if (origin === 'local') this.counters.warrantsIssued++
    else this.counters.warrantsReceived++
    this.#log('warn', origin === 'local' ? 'warrant-issued' : 'warrant-received', {
      offender: w.offender,
      offence: w.offence,
      reporter: w.reporter,
      since: w.time,
    })
  }
}

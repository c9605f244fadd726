import type { Logger } from '@libp2p/interface'
import { bytesEqual, type PeerIdString } from '@tally/core'
import { decodeObservationBytes, type Observation } from '@tally/deal'
import type { Store } from '@tally/lineage'
import { DEFAULT_OBSERVATION_SHARDS } from './constants.ts'
import type { Gossip, GossipMessage } from './gossip.ts'
import type { NodeComponent } from './node.ts'
import { type ObservationDropReason, type ObservationValidatorOptions, registerObservationValidator } from './observation-gossip.ts'
import { observationTopic } from './topics.ts'
import { evidenceAdmissible, type WarrantRegistry } from './warrant.ts'

/**
 * Meta keys of the intake in the node's lineage store (one LevelDB per
 * node, shared with the pair logs; atomic, durable, group-committed writes):
 *
 *   obs/c/<subject>/<monitor>/<window start:16>/<seq:16>   observation bytes, a monitor some watched contract names
 *   obs/x/<subject>/<monitor>/<window start:16>/<seq:16>   observation bytes, a monitor no watched contract names
 *   obs/s/<monitor>/<seq:16>                               the key above (duplicate and conflict detection across restarts)
 *
 * The two partitions keep outside observations apart: queries for counted
 * evidence read only `obs/c/`.
 */
export const OBSERVATION_META_PREFIX = 'obs/'
/** Observations waiting for the store; past this, new arrivals are dropped (and counted) rather than queued without bound. */
export const INTAKE_MAX_PENDING = 4096
/**
 * Observations kept apart per subject (monitors no watched contract names).
 * They are never counted, and monitor identities cost nothing, so without
 * a bound a crowd of them could fill the disk at the gossip rate limit of
 * each. 4096 is ~4 MiB per watched provider: a few dozen outside monitors'
 * reports over a day of one-minute windows.
 */
export const INTAKE_MAX_OUTSIDE_PER_SUBJECT = 4096

const pad = (n: number) => n.toString().padStart(16, '0')
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export type IntakeOutcome = 'stored' | 'outside' | 'duplicate' | 'conflict' | 'unwatched' | 'dropped'

export interface IntakeCounters {
  /** Stored in the counted partition. */
  stored: number
  /** Stored apart: their monitor is named by no watched contract. */
  outside: number
  duplicates: number
  conflicts: number
  /** About a subject nobody here watches: not stored. */
  unwatched: number
  /** Dropped because the store queue was full. */
  overflow: number
  /** Outside observations not stored: their subject already has the most kept apart. */
  outsideDropped: number
  /** Dropped by the gossip validator, by reason. */
  rejected: Partial<Record<ObservationDropReason, number>>
}

export interface ObservationQuery {
  subject: PeerIdString
  /** The contract's monitors: only their observations are returned. */
  monitors: readonly PeerIdString[]
  /** Windows with from <= start and end <= to (ms). */
  from: number
  to: number
  /** When the deal was accepted: monitors warranted since before then are left out. */
  acceptedAt?: number
}

export interface ObservationIntakeOptions {
  gossip: Gossip
  store: Pick<Store, 'write' | 'getMeta' | 'metaEntries'>
  log: Logger
  /** Shards of the network (default 16). */
  shards?: number
  /**
   * Install the observation validator on every observation topic (default
   * true). Pass false where another component of the node installed it.
   */
  validate?: boolean
  /** Freshness, clock and sequence options of that validator. */
  validator?: Omit<ObservationValidatorOptions, 'shards' | 'onAccept' | 'onConflict' | 'onDrop'>
  /** Warrants known to this node: `observationsFor` leaves warranted monitors out when given `acceptedAt`. */
  warrants?: Pick<WarrantRegistry, 'standing'>
  /** Two different observations by one monitor with one seq (seen on gossip or in the store): material for a warrant. */
  onConflict?: (first: Uint8Array, second: Uint8Array) => void
  /** Outside observations kept per subject (default INTAKE_MAX_OUTSIDE_PER_SUBJECT). */
  maxOutsidePerSubject?: number
}

/**
 * A party's intake of monitor observations: subscribes to the shards of
 * the providers its contracts watch, stores what arrives durably, indexed
 * by (subject, monitor, window), and answers queries for a contract's
 * monitors. Observations from monitors no watched contract names are kept
 * apart and never returned as counted evidence.
 */
export class ObservationIntake implements NodeComponent {
  readonly counters: IntakeCounters = { stored: 0, outside: 0, duplicates: 0, conflicts: 0, unwatched: 0, overflow: 0, outsideDropped: 0, rejected: {} }
  readonly #opts: ObservationIntakeOptions
  readonly #shards: number
  readonly #decoded = new WeakMap<Uint8Array, Observation>()
  readonly #contracts = new Map<string, { subject: PeerIdString; monitors: readonly PeerIdString[] }>()
  /** subject -> monitor -> number of watched contracts naming it. */
  readonly #named = new Map<PeerIdString, Map<PeerIdString, number>>()
  readonly #topics = new Map<string, { count: number; unsubscribe: () => void }>()
  /** Outside observations stored per subject (read from the store on first use). */
  readonly #outside = new Map<PeerIdString, number>()
  #queue: Promise<unknown> = Promise.resolve()
  #pending = 0
  #unregister: (() => void) | undefined
  #started = false

  constructor(opts: ObservationIntakeOptions) {
    this.#opts = opts
    this.#shards = opts.shards ?? DEFAULT_OBSERVATION_SHARDS
  }

  start(): void {
    if (this.#started) return
    this.#started = true
    if (this.#opts.validate !== false) {
      this.#unregister = registerObservationValidator(this.#opts.gossip, {
        ...this.#opts.validator,
        shards: this.#shards,
        onAccept: (obs, bytes) => this.#decoded.set(bytes, obs),
        onConflict: (first, second) => {
          this.counters.conflicts++
          this.#opts.onConflict?.(first, second)
        },
        onDrop: (reason) => {
          this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1
        },
      }).unregister
    }
  }

  async stop(): Promise<void> {
    this.#started = false
    this.#unregister?.()
    this.#unregister = undefined
    for (const { unsubscribe } of this.#topics.values()) unsubscribe()
    this.#topics.clear()
    await this.#queue
  }

  /**
   * Watch `subject` for the contract keyed `contract` (e.g. the deal's
   * CID): subscribe to its shard and count its `monitors`' observations.
   * Observations of those monitors stored apart earlier move to the counted
   * partition.
   */
  async watch(contract: string, subject: PeerIdString, monitors: readonly PeerIdString[]): Promise<void> {
    if (this.#contracts.has(contract)) this.unwatch(contract)
    this.#contracts.set(contract, { subject, monitors: [...monitors] })
    let named = this.#named.get(subject)
    if (named === undefined) {
      named = new Map()
      this.#named.set(subject, named)
    }
    const added: PeerIdString[] = []
    for (const m of new Set(monitors)) {
      const n = named.get(m) ?? 0
      if (n === 0) added.push(m)
      named.set(m, n + 1)
    }
    const topic = observationTopic(subject, this.#shards)
    const sub = this.#topics.get(topic)
    if (sub !== undefined) sub.count++
    else this.#topics.set(topic, { count: 1, unsubscribe: this.#opts.gossip.subscribe(topic, (msg) => this.#onMessage(msg)) })
    if (added.length > 0) await this.#serial(() => this.#promote(subject, added))
  }

  /** Stop watching for `contract`. Stored observations stay where they are. */
  unwatch(contract: string): void {
    const c = this.#contracts.get(contract)
    if (c === undefined) return
    this.#contracts.delete(contract)
    const named = this.#named.get(c.subject)
    for (const m of new Set(c.monitors)) {
      const n = (named?.get(m) ?? 1) - 1
      if (n <= 0) named?.delete(m)
      else named?.set(m, n)
    }
    if (named?.size === 0) this.#named.delete(c.subject)
    const topic = observationTopic(c.subject, this.#shards)
    const sub = this.#topics.get(topic)
    if (sub !== undefined && --sub.count <= 0) {
      sub.unsubscribe()
      this.#topics.delete(topic)
    }
  }

  /** Monitors counted for `subject` right now (named by some watched contract). */
  namedMonitors(subject: PeerIdString): PeerIdString[] {
    return [...(this.#named.get(subject)?.keys() ?? [])]
  }

  /**
   * Take an observation that arrived another way (attached by the
   * counterparty, fetched from a monitor). Verified like gossip, minus
   * freshness: an old observation is still evidence for its window.
   */
  ingest(bytes: Uint8Array): Promise<IntakeOutcome> {
    const obs = decodeObservationBytes(bytes)
    return this.#enqueue(obs, bytes)
  }

  /** Counted observations of `subject` by the given monitors, windows inside [from, to], ordered by monitor then window. */
  async observationsFor(q: ObservationQuery): Promise<Observation[]> {
    await this.#queue
    const out: Observation[] = []
    for (const monitor of new Set(q.monitors)) {
      if (q.acceptedAt !== undefined && this.#opts.warrants !== undefined && !evidenceAdmissible(this.#opts.warrants, monitor, q.acceptedAt)) continue
      out.push(...(await this.#range(`${OBSERVATION_META_PREFIX}c/${q.subject}/${monitor}/`, q.from, q.to, true)))
    }
    return out
  }

  /** Observations of `subject` kept apart (monitors no watched contract names): for display, never for counting. */
  async outsideObservations(q: { subject: PeerIdString; from: number; to: number }): Promise<Observation[]> {
    await this.#queue
    return this.#range(`${OBSERVATION_META_PREFIX}x/${q.subject}/`, q.from, q.to)
  }

  /** Observations under `prefix` with windows inside [from, to]; `byStart` when the keys below the prefix begin with the window start. */
  async #range(prefix: string, from: number, to: number, byStart = false): Promise<Observation[]> {
    const out: Observation[] = []
    for await (const { key, value } of this.#opts.store.metaEntries(prefix)) {
      if (byStart) {
        const start = Number(key.slice(prefix.length, prefix.length + 16))
        if (start < from) continue
        if (start >= to) break
      }
      const obs = decodeObservationBytes(value)
      if (obs.body.window.start >= from && obs.body.window.end <= to) out.push(obs)
    }
    return out
  }

  #onMessage(msg: GossipMessage): void {
    let obs = this.#decoded.get(msg.data)
    if (obs === undefined) {
      try {
        obs = decodeObservationBytes(msg.data)
      } catch (err) {
        this.#opts.log('dropping observation that fails to decode: %s', (err as Error).message)
        return
      }
    }
    void this.#enqueue(obs, msg.data).catch((err: unknown) => this.#opts.log.error('storing observation failed: %s', (err as Error).message))
  }

  #enqueue(obs: Observation, bytes: Uint8Array): Promise<IntakeOutcome> {
    if (!this.#named.has(obs.body.subject) && !this.#watchesSubject(obs.body.subject)) {
      this.counters.unwatched++
      return Promise.resolve('unwatched')
    }
    if (this.#pending >= INTAKE_MAX_PENDING) {
      this.counters.overflow++
      return Promise.resolve('dropped')
    }
    return this.#serial(() => this.#store(obs, bytes))
  }

  #watchesSubject(subject: PeerIdString): boolean {
    for (const c of this.#contracts.values()) if (c.subject === subject) return true
    return false
  }

  // One write at a time: the duplicate check and the write must not interleave.
  #serial<T>(job: () => Promise<T>): Promise<T> {
    this.#pending++
    const run = this.#queue.then(job).finally(() => this.#pending--)
    this.#queue = run.catch(() => {})
    return run
  }

  async #store(obs: Observation, bytes: Uint8Array): Promise<IntakeOutcome> {
    const { subject, seq, window } = obs.body
    const seqKey = `${OBSERVATION_META_PREFIX}s/${obs.by}/${pad(seq)}`
    const existing = await this.#opts.store.getMeta(seqKey)
    if (existing !== undefined) {
      const earlier = await this.#opts.store.getMeta(decoder.decode(existing))
      if (earlier !== undefined && bytesEqual(earlier, bytes)) {
        this.counters.duplicates++
        return 'duplicate'
      }
      this.counters.conflicts++
      if (earlier !== undefined) this.#opts.onConflict?.(earlier, bytes)
      return 'conflict'
    }
    const counted = (this.#named.get(subject)?.get(obs.by) ?? 0) > 0
    if (!counted) {
      const held = await this.#outsideCount(subject)
      if (held >= (this.#opts.maxOutsidePerSubject ?? INTAKE_MAX_OUTSIDE_PER_SUBJECT)) {
        this.counters.outsideDropped++
        return 'dropped'
      }
      this.#outside.set(subject, held + 1)
    }
    const key = `${OBSERVATION_META_PREFIX}${counted ? 'c' : 'x'}/${subject}/${obs.by}/${pad(window.start)}/${pad(seq)}`
    await this.#opts.store.write({
      meta: [
        { key, value: bytes },
        { key: seqKey, value: encoder.encode(key) },
      ],
    })
    if (counted) this.counters.stored++
    else this.counters.outside++
    return counted ? 'stored' : 'outside'
  }

  async #outsideCount(subject: PeerIdString): Promise<number> {
    let n = this.#outside.get(subject)
    if (n === undefined) {
      n = 0
      for await (const _ of this.#opts.store.metaEntries(`${OBSERVATION_META_PREFIX}x/${subject}/`)) n++
      this.#outside.set(subject, n)
    }
    return n
  }

  async #promote(subject: PeerIdString, monitors: readonly PeerIdString[]): Promise<void> {
    for (const monitor of monitors) {
      const from = `${OBSERVATION_META_PREFIX}x/${subject}/${monitor}/`
      const meta: { key: string; value: Uint8Array | null }[] = []
      for await (const { key, value } of this.#opts.store.metaEntries(from)) {
        const rest = key.slice(from.length)
        const moved = `${OBSERVATION_META_PREFIX}c/${subject}/${monitor}/${rest}`
        const seq = Number(rest.split('/')[1])
        meta.push({ key: moved, value }, { key, value: null }, { key: `${OBSERVATION_META_PREFIX}s/${monitor}/${pad(seq)}`, value: encoder.encode(moved) })
      }
      if (meta.length > 0) await this.#opts.store.write({ meta })
      const held = this.#outside.get(subject)
      if (held !== undefined) this.#outside.set(subject, Math.max(0, held - meta.length / 3))
    }
  }
}

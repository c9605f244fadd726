/**
 * Validation of monitor observations on gossip, run before gossipsub
 * relays or delivers anything (docs/PROTOCOL.md, "Observations on gossip").
 *
 * Verdicts: 'reject' for what every honest node judges the same way and no
 * honest relay would pass on (malformed, oversized, bad signature, origin
 * other than the monitor, subject outside the topic's shard), which costs
 * the relaying peer score; 'ignore' for what depends on the reader's clock
 * or history (stale, future-dated, replayed, conflicting), dropped without
 * penalty because an honest relay may legitimately have judged it otherwise.
 */
import { bytesEqual, type PeerIdString } from '@tally/core'
import { assertFresh, decodeObservationBytes, type Observation } from '@tally/deal'
import { DEFAULT_OBSERVATION_SHARDS } from './constants.ts'
import type { Gossip, GossipContext, GossipVerdict, TopicValidator } from './gossip.ts'
import { observationTopic, observationTopics } from './topics.ts'

/** Oldest observation accepted, by issuedAt: a window or two of delay plus propagation. */
export const OBSERVATION_MAX_AGE_MS = 5 * 60_000
/** How far issuedAt may lie ahead of our clock. */
export const OBSERVATION_MAX_SKEW_MS = 30_000
/**
 * Anti-replay window per monitor (as in IPsec, RFC 4303 §3.4.3): a seq more
 * than this far below the highest seen is refused. Gossip does not keep
 * order across topics or mesh paths, and a monitor issues one seq per
 * provider per window, so a strict "greater than last" test would drop
 * honest observations that overtook each other.
 */
export const OBSERVATION_SEQ_WINDOW = 4096
/** Monitors whose highest seq is tracked; past this the least recently heard is forgotten. */
export const OBSERVATION_MAX_MONITORS = 10_000
/**
 * Bytes of recent observations kept to spot duplicates and conflicts. At
 * 20 observations/s network-wide (~1 KiB each) 16 MiB covers more than the
 * freshness window, so a replay inside it is always recognised.
 */
export const OBSERVATION_MEMORY_BYTES = 16 * 1024 * 1024

export type SequenceStatus = { status: 'new' } | { status: 'duplicate' } | { status: 'conflict'; first: Uint8Array } | { status: 'too-old'; highest: number }

/**
 * Per-monitor sequence state: the highest seq seen and the bytes of recent
 * observations by (monitor, seq), bounded in monitors and bytes.
 */
export class ObservationSequences {
  readonly window: number
  readonly #highest = new Map<PeerIdString, number>()
  readonly #recent = new Map<string, Uint8Array>()
  readonly #maxMonitors: number
  readonly #maxBytes: number
  #bytes = 0

  constructor(opts: { window?: number; maxMonitors?: number; maxBytes?: number } = {}) {
    this.window = opts.window ?? OBSERVATION_SEQ_WINDOW
    this.#maxMonitors = opts.maxMonitors ?? OBSERVATION_MAX_MONITORS
    this.#maxBytes = opts.maxBytes ?? OBSERVATION_MEMORY_BYTES
  }

  /** How `bytes`, claimed as `monitor`'s observation `seq`, relates to what we have seen. */
  classify(monitor: PeerIdString, seq: number, bytes: Uint8Array): SequenceStatus {
    const highest = this.#highest.get(monitor)
    const first = this.#recent.get(`${monitor}#${seq}`)
    if (first !== undefined) return bytesEqual(first, bytes) ? { status: 'duplicate' } : { status: 'conflict', first }
    if (highest !== undefined && seq <= highest - this.window) return { status: 'too-old', highest }
    return { status: 'new' }
  }

  record(monitor: PeerIdString, seq: number, bytes: Uint8Array): void {
    const highest = this.#highest.get(monitor)
    this.#highest.delete(monitor) // re-inserted last: Map order is our LRU order
    this.#highest.set(monitor, Math.max(seq, highest ?? 0))
    if (this.#highest.size > this.#maxMonitors) {
      const oldest = this.#highest.keys().next().value
      if (oldest !== undefined) this.#highest.delete(oldest)
    }
    const key = `${monitor}#${seq}`
    if (this.#recent.has(key)) return
    this.#recent.set(key, bytes)
    this.#bytes += bytes.byteLength
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#recent.entries().next().value
      if (oldest === undefined) break
      this.#recent.delete(oldest[0])
      this.#bytes -= oldest[1].byteLength
    }
  }

  /** Highest seq seen from `monitor`. */
  highest(monitor: PeerIdString): number | undefined {
    return this.#highest.get(monitor)
  }
}

export type ObservationDropReason = 'malformed' | 'signature' | 'origin' | 'shard' | 'stale' | 'future' | 'duplicate' | 'too-old' | 'conflict'

export interface ObservationValidatorOptions {
  /** Shards of the network (default 16): the subject must map to the topic the message came on. */
  shards?: number
  now?: () => number
  /** Default 5 min. */
  maxAgeMs?: number
  /** Default 30 s. */
  maxSkewMs?: number
  /** Shared sequence state (one per node). Default: a fresh one. */
  sequences?: ObservationSequences
  /** An observation passed every check (the bytes are the exact gossip payload). */
  onAccept?: (obs: Observation, bytes: Uint8Array, ctx: GossipContext) => void
  /** A monitor signed two different observations with one seq: evidence for a warrant. */
  onConflict?: (first: Uint8Array, second: Uint8Array, ctx: GossipContext) => void
  /** A message was dropped (metrics, logs, tests). */
  onDrop?: (reason: ObservationDropReason, ctx: GossipContext & { from: PeerIdString; detail: string }) => void
}

const REJECT_REASONS: ReadonlySet<ObservationDropReason> = new Set(['malformed', 'signature', 'origin', 'shard'])

/** A topic validator for observation topics (register it with `registerObservationValidator` or `Gossip#registerTopicValidator`). */
export function observationValidator(opts: ObservationValidatorOptions = {}): TopicValidator & { sequences: ObservationSequences } {
  const shards = opts.shards ?? DEFAULT_OBSERVATION_SHARDS
  const now = opts.now ?? Date.now
  const sequences = opts.sequences ?? new ObservationSequences()
  const freshness = { maxAgeMs: opts.maxAgeMs ?? OBSERVATION_MAX_AGE_MS, maxSkewMs: opts.maxSkewMs ?? OBSERVATION_MAX_SKEW_MS }

  const drop = (reason: ObservationDropReason, detail: string, from: PeerIdString, ctx: GossipContext): GossipVerdict => {
    opts.onDrop?.(reason, { ...ctx, from, detail })
    return REJECT_REASONS.has(reason) ? 'reject' : 'ignore'
  }

  const validate = (data: Uint8Array, from: PeerIdString, ctx: GossipContext): GossipVerdict => {
    let obs: Observation
    try {
      obs = decodeObservationBytes(data)
    } catch (err) {
      return drop((err as Error).name === 'SignatureError' ? 'signature' : 'malformed', (err as Error).message, from, ctx)
    }
    const body = obs.body
    // Only a monitor publishes its observations: anyone else re-publishing them is replaying.
    if (obs.by !== from) return drop('origin', `observation by ${obs.by} published by ${from}`, from, ctx)
    if (observationTopic(body.subject, shards) !== ctx.topic) return drop('shard', `subject ${body.subject} does not belong to ${ctx.topic}`, from, ctx)
    const at = now()
    try {
      assertFresh(obs, { now: at, ...freshness })
    } catch (err) {
      return drop(body.issuedAt > at ? 'future' : 'stale', (err as Error).message, from, ctx)
    }
    const seq = sequences.classify(obs.by, body.seq, data)
    if (seq.status === 'duplicate') return drop('duplicate', `seq ${body.seq} of ${obs.by} seen before`, from, ctx)
    if (seq.status === 'too-old') return drop('too-old', `seq ${body.seq} of ${obs.by} is below the window under ${seq.highest}`, from, ctx)
    if (seq.status === 'conflict') {
      opts.onConflict?.(seq.first, data, ctx)
      return drop('conflict', `${obs.by} signed two different observations with seq ${body.seq}`, from, ctx)
    }
    sequences.record(obs.by, body.seq, data)
    opts.onAccept?.(obs, data, ctx)
    return 'accept'
  }
  return Object.assign(validate, { sequences })
}

/**
 * Install `observationValidator(opts)` on every observation topic of the
 * network (relayed messages are validated whichever shards we subscribe
 * to). Returns the validator and a function that removes it.
 */
export function registerObservationValidator(
  gossip: Pick<Gossip, 'registerTopicValidator'>,
  opts: ObservationValidatorOptions = {},
): { validator: ReturnType<typeof observationValidator>; unregister: () => void } {
  const validator = observationValidator(opts)
  const removers = observationTopics(opts.shards ?? DEFAULT_OBSERVATION_SHARDS).map((topic) => gossip.registerTopicValidator(topic, validator))
  return {
    validator,
    unregister: () => {
      for (const remove of removers) remove()
    },
  }
}

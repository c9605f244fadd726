import type { GossipSub, GossipsubMessage, Message } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Logger, PeerId } from '@libp2p/interface'
import type { PeerIdString } from '@tally/core'
import {
  DEFAULT_GOSSIP_RATE_BURST,
  DEFAULT_GOSSIP_RATE_PER_SECOND,
  DEFAULT_OBSERVATION_SHARDS,
  OBSERVATION_MAX_BYTES,
  WARRANT_MAX_BYTES,
  WARRANT_TOPIC,
} from './constants.ts'
import { GossipRejectedError } from './errors.ts'
import { PeerRateLimiter, type RateLimit } from './rate-limit.ts'
import { tallyTopics } from './topics.ts'

export type GossipVerdict = 'accept' | 'reject' | 'ignore'

export interface GossipContext {
  topic: string
  /** The peer that handed us the message (the one gossipsub scores); equals `from` when it came first-hand. */
  via: PeerIdString
}

/**
 * Decides a message before gossipsub relays or delivers it. `from` is the
 * origin (authenticated by gossipsub's StrictSign). Return 'reject' for
 * what no honest peer would send (forged, malformed): it costs the sender
 * standing. Return 'ignore' for what an honest relay might pass on (stale
 * by our clock, a replay): dropped, no penalty. A throw counts as 'reject'.
 */
export type TopicValidator = (data: Uint8Array, from: PeerIdString, ctx: GossipContext) => GossipVerdict | Promise<GossipVerdict>

export interface TopicPolicy {
  /** Larger payloads are rejected before the validator runs. */
  maxBytes: number
  /** Messages per origin on this topic; excess is rejected (a flood costs the flooder standing). */
  rate: RateLimit
}

export interface GossipMessage {
  topic: string
  data: Uint8Array
  from: PeerIdString
  via: PeerIdString
  msgId: string
}

export type GossipHandler = (msg: GossipMessage) => void | Promise<void>

export interface GossipCounters {
  accepted: number
  rejected: number
  ignored: number
  oversized: number
  rateLimited: number
}

// getScore and getMeshPeers exist on the implementation but not on the exported GossipSub interface (pitfall 9).
interface GossipSubInternals {
  getScore(peerId: string): number
  getMeshPeers(topic: string): string[]
}

function internals(pubsub: GossipSub): GossipSubInternals {
  const candidate = pubsub as unknown as Partial<GossipSubInternals>
  if (typeof candidate.getScore !== 'function' || typeof candidate.getMeshPeers !== 'function') {
    throw new TypeError('this gossipsub version has no getScore/getMeshPeers')
  }
  return candidate as GossipSubInternals
}

interface TopicEntry {
  policy: TopicPolicy
  limiter: PeerRateLimiter
  validate: TopicValidator | undefined
}

export interface GossipOptions {
  log: Logger
  /** Observation shards; their topics and the warrant topic get default policies at once. */
  shards?: number
  defaultRate?: RateLimit
}

/**
 * Tally's view of gossipsub: topic policies (size, per-origin rate,
 * validator) enforced before relay, handlers per topic, and typed access
 * to peer scores and meshes. Publishing runs the same checks first, since
 * gossipsub does not validate a node's own messages (pitfall 7).
 */
export class Gossip {
  readonly pubsub: GossipSub
  readonly counters: GossipCounters = { accepted: 0, rejected: 0, ignored: 0, oversized: 0, rateLimited: 0 }
  readonly #self: PeerIdString
  readonly #log: Logger
  readonly #defaultRate: RateLimit
  readonly #topics = new Map<string, TopicEntry>()
  readonly #handlers = new Map<string, Set<GossipHandler>>()
  readonly #internals: GossipSubInternals
  #listening = false

  constructor(pubsub: GossipSub, self: PeerIdString, opts: GossipOptions) {
    this.pubsub = pubsub
    this.#self = self
    this.#log = opts.log
    this.#defaultRate = opts.defaultRate ?? { perSecond: DEFAULT_GOSSIP_RATE_PER_SECOND, burst: DEFAULT_GOSSIP_RATE_BURST }
    this.#internals = internals(pubsub)
    for (const topic of tallyTopics(opts.shards ?? DEFAULT_OBSERVATION_SHARDS)) this.#ensureTopic(topic)
  }

  /** Default policy: observations 16 KiB, warrants 640 KiB, 10 msg/s per origin with bursts of 50. */
  defaultPolicy(topic: string): TopicPolicy {
    return { maxBytes: topic === WARRANT_TOPIC ? WARRANT_MAX_BYTES : OBSERVATION_MAX_BYTES, rate: this.#defaultRate }
  }

  /**
   * Validate every message on `topic` with `validate` (after the size and
   * rate checks) before gossipsub relays or delivers it. Replaces any
   * earlier validator of the topic; the returned function removes it
   * (size and rate checks stay).
   */
  registerTopicValidator(topic: string, validate: TopicValidator, policy: Partial<TopicPolicy> = {}): () => void {
    const entry = this.#ensureTopic(topic, policy)
    entry.validate = validate
    return () => {
      if (entry.validate === validate) entry.validate = undefined
    }
  }

  /** Deliver accepted messages on `topic` to `handler`; returns a function that unsubscribes it. */
  subscribe(topic: string, handler: GossipHandler): () => void {
    this.#ensureTopic(topic)
    this.#listen()
    let handlers = this.#handlers.get(topic)
    if (handlers === undefined) {
      handlers = new Set()
      this.#handlers.set(topic, handlers)
      this.pubsub.subscribe(topic)
    }
    handlers.add(handler)
    return () => {
      const set = this.#handlers.get(topic)
      if (set === undefined || !set.delete(handler) || set.size > 0) return
      this.#handlers.delete(topic)
      this.pubsub.unsubscribe(topic)
    }
  }

  /**
   * Publish after running the topic's own checks; a message the network
   * would reject throws `GossipRejectedError` instead of costing us standing.
   */
  async publish(topic: string, data: Uint8Array): Promise<{ recipients: number }> {
    const verdict = await this.#check(topic, data, this.#self, this.#self)
    if (verdict !== 'accept') throw new GossipRejectedError(`message for ${topic} refused by its own validator (${verdict})`, { topic, verdict })
    const result = await this.pubsub.publish(topic, data)
    return { recipients: result.recipients.length }
  }

  /** Our current score of `peer` (0 for unknown peers). */
  score(peer: PeerId | PeerIdString): number {
    return this.#internals.getScore(peer.toString())
  }

  /** Peers in our mesh for `topic`. */
  meshPeers(topic: string): PeerIdString[] {
    return this.#internals.getMeshPeers(topic)
  }

  /** Peers known to subscribe to `topic`. */
  subscribers(topic: string): PeerIdString[] {
    return this.pubsub.getSubscribers(topic).map((p) => p.toString())
  }

  stop(): void {
    if (this.#listening) this.pubsub.removeEventListener('gossipsub:message', this.#onMessage)
    this.#listening = false
    for (const topic of this.#topics.keys()) this.pubsub.topicValidators.delete(topic)
    this.#topics.clear()
    this.#handlers.clear()
  }

  #ensureTopic(topic: string, policy: Partial<TopicPolicy> = {}): TopicEntry {
    let entry = this.#topics.get(topic)
    if (entry !== undefined && policy.maxBytes === undefined && policy.rate === undefined) return entry
    const full = { ...(entry?.policy ?? this.defaultPolicy(topic)), ...policy }
    const next: TopicEntry = { policy: full, limiter: new PeerRateLimiter(full.rate), validate: entry?.validate }
    entry = next
    this.#topics.set(topic, entry)
    this.pubsub.topicValidators.set(topic, async (peer: PeerId, msg: Message) => {
      const from = msg.type === 'signed' ? msg.from.toString() : peer.toString()
      const verdict = await this.#check(topic, msg.data, from, peer.toString())
      return verdict === 'accept' ? TopicValidatorResult.Accept : verdict === 'ignore' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
    })
    return entry
  }

  async #check(topic: string, data: Uint8Array, from: PeerIdString, via: PeerIdString): Promise<GossipVerdict> {
    const entry = this.#ensureTopic(topic)
    if (data.byteLength > entry.policy.maxBytes) {
      this.counters.oversized++
      this.counters.rejected++
      this.#log('reject %s message from %s via %s: %d bytes exceeds %d', topic, from, via, data.byteLength, entry.policy.maxBytes)
      return 'reject'
    }
    if (!entry.limiter.take(from)) {
      this.counters.rateLimited++
      // Only the origin itself is penalised: a relay forwarding what its own bucket allowed is honest, and buckets
      // downstream refill on their own clocks, so rejecting (and scoring) relayed excess would prune honest relays.
      const firstHand = via === from
      if (firstHand) this.counters.rejected++
      else this.counters.ignored++
      this.#log.trace('%s %s message from %s via %s: over %d/s', firstHand ? 'reject' : 'ignore', topic, from, via, entry.policy.rate.perSecond)
      return firstHand ? 'reject' : 'ignore'
    }
    let verdict: GossipVerdict = 'accept'
    if (entry.validate !== undefined) {
      try {
        verdict = await entry.validate(data, from, { topic, via })
      } catch (err) {
        this.#log('reject %s message from %s via %s: validator threw %s', topic, from, via, (err as Error).message)
        verdict = 'reject'
      }
    }
    if (verdict === 'accept') this.counters.accepted++
    else if (verdict === 'ignore') this.counters.ignored++
    else this.counters.rejected++
    return verdict
  }

  #listen(): void {
    if (this.#listening) return
    this.#listening = true
    this.pubsub.addEventListener('gossipsub:message', this.#onMessage)
  }

  readonly #onMessage = (evt: CustomEvent<GossipsubMessage>): void => {
    const { msg, propagationSource, msgId } = evt.detail
    const handlers = this.#handlers.get(msg.topic)
    if (handlers === undefined) return
    const message: GossipMessage = {
      topic: msg.topic,
      data: msg.data,
      from: msg.type === 'signed' ? msg.from.toString() : propagationSource.toString(),
      via: propagationSource.toString(),
      msgId,
    }
    for (const handler of handlers) {
      Promise.resolve()
        .then(() => handler(message))
        .catch((err: unknown) => this.#log.error('gossip handler for %s failed: %s', msg.topic, (err as Error).message))
    }
  }
}

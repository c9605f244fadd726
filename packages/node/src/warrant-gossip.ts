import type { Logger } from '@libp2p/interface'
import type { EntryBlock, Identity } from '@tally/core'
import type { Store } from '@tally/lineage'
import { WARRANT_TOPIC } from './constants.ts'
import type { Gossip, GossipMessage } from './gossip.ts'
import type { NodeComponent } from './node.ts'
import { encodeWarrant, makeEntryWarrant, makeObservationWarrant, type VerifiedWarrant, verifyWarrant, type Warrant, WarrantRegistry } from './warrant.ts'

/** Meta-key prefix of warrants in the node's store: `warrant/<offence>` holds the warrant's bytes. */
export const WARRANT_META_PREFIX = 'warrant/'

export interface WarrantGossipOptions {
  gossip: Gossip
  /** Signs the warrants this node issues. */
  identity: Identity
  log: Logger
  /** Shared registry (default: a fresh one, `warrants.registry`). */
  registry?: WarrantRegistry
  /** Where warrants are kept across restarts (the node's lineage store); none: memory only. */
  store?: Pick<Store, 'write' | 'metaEntries'>
  now?: () => number
  /** A warrant new to this node, issued here or received. */
  onWarrant?: (warrant: VerifiedWarrant, origin: 'local' | 'remote') => void
}

export interface WarrantCounters {
  issued: number
  received: number
  /** Rejected before relay: malformed, bad signature, no conflict, origin other than the reporter. */
  invalid: number
  /** Offences already known: not relayed again. */
  duplicate: number
}

/**
 * The warrant topic (`/tally/warrant/1`): verifies every warrant before
 * relay (a forged or non-conflicting one costs the sender score), keeps
 * the registry and persists it, and issues this node's own warrants.
 */
export class WarrantGossip implements NodeComponent {
  readonly registry: WarrantRegistry
  readonly counters: WarrantCounters = { issued: 0, received: 0, invalid: 0, duplicate: 0 }
  readonly #opts: WarrantGossipOptions
  readonly #verified = new WeakMap<Uint8Array, VerifiedWarrant>()
  #teardown: (() => void)[] = []

  constructor(opts: WarrantGossipOptions) {
    this.#opts = opts
    this.registry = opts.registry ?? new WarrantRegistry()
  }

  async start(): Promise<void> {
    if (this.#teardown.length > 0) return
    if (this.#opts.store !== undefined) {
      for await (const { key, value } of this.#opts.store.metaEntries(WARRANT_META_PREFIX)) {
        try {
          this.registry.add(verifyWarrant(value))
        } catch (err) {
          this.#opts.log.error('stored warrant %s no longer verifies: %s', key, (err as Error).message)
        }
      }
    }
    const gossip = this.#opts.gossip
    this.#teardown.push(
      gossip.registerTopicValidator(WARRANT_TOPIC, (data, from) => {
        let v: VerifiedWarrant
        try {
          v = verifyWarrant(data)
        } catch (err) {
          this.counters.invalid++
          this.#opts.log('reject warrant from %s: %s', from, (err as Error).message)
          return 'reject'
        }
        if (v.reporter !== from) {
          this.counters.invalid++
          return 'reject'
        }
        if (this.registry.has(v.offence)) {
          this.counters.duplicate++
          return 'ignore'
        }
        this.#verified.set(data, v)
        return 'accept'
      }),
      gossip.subscribe(WARRANT_TOPIC, (msg) => this.#onMessage(msg)),
    )
  }

  stop(): void {
    for (const undo of this.#teardown.splice(0)) undo()
  }

  /** Issue and gossip a warrant for two conflicting observation payloads; undefined when the offence is already warranted. */
  reportObservations(x: Uint8Array, y: Uint8Array): Promise<VerifiedWarrant | undefined> {
    return this.#issue(makeObservationWarrant(this.#opts.identity, x, y, this.#now()))
  }

  /** Issue and gossip a warrant for two conflicting pair-log entries; undefined when the offence is already warranted. */
  reportEntries(x: EntryBlock, y: EntryBlock): Promise<VerifiedWarrant | undefined> {
    return this.#issue(makeEntryWarrant(this.#opts.identity, x, y, this.#now()))
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)()
  }

  async #issue(warrant: Warrant): Promise<VerifiedWarrant | undefined> {
    const v = verifyWarrant(encodeWarrant(warrant))
    if (this.registry.has(v.offence)) return undefined
    await this.#keep(v)
    // Straight to gossipsub: our own validator would now call the offence known. The warrant verified above, within the size bound.
    await this.#opts.gossip.pubsub.publish(WARRANT_TOPIC, v.bytes).catch((err: unknown) => {
      // Kept locally either way; peers that missed it will hear of the offence from the next reporter.
      this.#opts.log.error('warrant %s kept but not published: %s', v.offence, (err as Error).message)
    })
    this.counters.issued++
    this.#opts.onWarrant?.(v, 'local')
    return v
  }

  async #keep(v: VerifiedWarrant): Promise<boolean> {
    if (!this.registry.add(v)) return false
    await this.#opts.store?.write({ meta: [{ key: `${WARRANT_META_PREFIX}${v.offence}`, value: v.bytes }] })
    return true
  }

  async #onMessage(msg: GossipMessage): Promise<void> {
    const v = this.#verified.get(msg.data) ?? verifyWarrant(msg.data)
    if (!(await this.#keep(v))) return
    this.counters.received++
    this.#opts.onWarrant?.(v, 'remote')
  }
}

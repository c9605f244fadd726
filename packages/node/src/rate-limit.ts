import { MAX_TRACKED_PEERS } from './constants.ts'

export interface RateLimit {
  /** Sustained allowance per second. */
  perSecond: number
  /** Tokens available at once (a burst after a quiet period). */
  burst: number
}

interface Bucket {
  tokens: number
  at: number
}

/**
 * Token buckets keyed by peer (or any string). `take(key)` is true while the
 * key has allowance left. The map is bounded: past `maxKeys` the least
 * recently used key is forgotten, which only ever gives a forgotten peer a
 * fresh burst, never denies an honest one.
 */
export class PeerRateLimiter {
  readonly limit: RateLimit
  readonly #buckets = new Map<string, Bucket>()
  readonly #maxKeys: number
  readonly #now: () => number

  constructor(limit: RateLimit, opts: { maxKeys?: number; now?: () => number } = {}) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) throw new RangeError(`invalid rate limit ${limit.perSecond}/s burst ${limit.burst}`)
    this.limit = limit
    this.#maxKeys = opts.maxKeys ?? MAX_TRACKED_PEERS
    this.#now = opts.now ?? Date.now
  }

  /** Spend `cost` tokens of `key`; false (and nothing spent) when it has too few. */
  take(key: string, cost = 1): boolean {
    const now = this.#now()
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: this.limit.burst, at: now }
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next().value
        if (oldest !== undefined) this.#buckets.delete(oldest)
      }
    } else {
      this.#buckets.delete(key) // re-insert below: Map order is our LRU order
      bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond)
      bucket.at = now
    }
    this.#buckets.set(key, bucket)
    if (bucket.tokens < cost) return false
    bucket.tokens -= cost
    return true
  }

  /** Number of keys tracked (for tests and metrics). */
  get size(): number {
    return this.#buckets.size
  }

  clear(): void {
    this.#buckets.clear()
  }
}

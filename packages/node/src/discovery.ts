import { setMaxListeners } from 'node:events'
import type { Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { type CID, type Credential, type PeerIdString, type TrustPolicy, verifyDocument } from '@tally/core'
import { type CapabilityQuery, capabilityCid, capabilityKey, capabilityKeysFor } from './capability.ts'
import {
  DEFAULT_FIND_LIMIT,
  DEFAULT_FIND_TIMEOUT_MS,
  DEFAULT_REPROVIDE_INTERVAL_MS,
  DEFAULT_REPROVIDE_JITTER,
  DISCOVER_FETCH_CONCURRENCY,
  OFFER_FETCH_TIMEOUT_MS,
  PROVIDE_TIMEOUT_MS,
} from './constants.ts'
import { InvalidOfferError } from './errors.ts'
import { type Offer, OFFER_DOCUMENT_TYPE, offerBodySchema, type OfferFailure, type PriceCeiling, type VerifiedOffer, withinPrice } from './offer.ts'
import { fetchOffer, type OfferServer } from './offer-protocol.ts'
import type { ProtocolHost } from './protocol.ts'

export interface DiscoveryQuery extends CapabilityQuery {
  /** Skip offers whose rate exceeds this (same asset required). */
  maxPrice?: PriceCeiling
  /** Skip offers with fewer units of hardware. */
  minCount?: number
}

export interface ProviderCandidate {
  peer: PeerIdString
  id: PeerId
  multiaddrs: Multiaddr[]
}

export type DiscoveryProgress =
  | { type: 'dht'; event: string; peer?: PeerIdString }
  | { type: 'candidate'; peer: PeerIdString }
  | { type: 'offer'; peer: PeerIdString }
  | { type: 'skipped'; peer: PeerIdString; reason: SkipReason }

export interface FindOptions {
  /** Stop after this many distinct providers (default 20). */
  limit?: number
  /** Give up the DHT query after this long (default 10 s); results so far stand. */
  timeoutMs?: number
  signal?: AbortSignal
  onProgress?: (event: DiscoveryProgress) => void
}

export interface DiscoverOptions extends FindOptions {
  /** Per-offer fetch timeout, dial included (default 5 s). */
  offerTimeoutMs?: number
  now?: number
}

export type SkipCode = 'unreachable' | 'timeout' | 'no-offer' | 'protocol' | 'remote-error' | 'mismatch' | 'price' | 'error' | OfferFailure

export interface SkipReason {
  code: SkipCode
  message: string
}

export type DiscoveryResult = { peer: PeerIdString; offer: Offer; credentials: Credential[] } | { peer: PeerIdString; skipped: SkipReason }

export interface AnnounceResult {
  keys: string[]
  cids: CID[]
  /** Peers that accepted each key's provider record, in `keys` order (0: nobody reachable yet; the schedule retries). */
  reached: number[]
  durationMs: number
}

export interface DiscoveryOptions {
  log: Logger
  reprovideIntervalMs?: number
  reprovideJitter?: number
  findTimeoutMs?: number
  offerTimeoutMs?: number
}

export interface DiscoveryHost extends ProtocolHost {
  peerId: PeerId
  peerStore: PeerStore
  services: { dht: KadDHT }
}

/** Map a failed fetch/verification to the reason shown to the user. */
export function skipReasonOf(err: unknown): SkipReason {
  const e = err instanceof Error ? err : new Error(String(err))
  switch (e.name) {
    case 'PeerUnreachableError':
      return { code: 'unreachable', message: e.message }
    case 'FrameTimeoutError':
      return { code: 'timeout', message: e.message }
    case 'NoOfferError':
      return { code: 'no-offer', message: e.message }
    case 'RemoteError':
      return { code: 'remote-error', message: e.message }
    case 'InvalidOfferError':
      return { code: ((e as InvalidOfferError).details['code'] as OfferFailure | undefined) ?? 'schema', message: e.message }
    case 'FrameDecodeError':
    case 'FrameTooLargeError':
    case 'UnexpectedMessageError':
    case 'StreamEndedError':
      return { code: 'protocol', message: e.message }
    default:
      return { code: 'error', message: `${e.name}: ${e.message}` }
  }
}

function eventPeer(event: QueryEvent): PeerIdString | undefined {
  switch (event.name) {
    case 'SEND_QUERY':
      return event.to.toString()
    case 'PEER_RESPONSE':
    case 'QUERY_ERROR':
    case 'PROVIDER':
    case 'VALUE':
    case 'FINAL_PEER':
      return event.from.toString()
    case 'ADD_PEER':
    case 'DIAL_PEER':
      return event.peer.toString()
    default:
      return undefined
  }
}

function jurisdictionCovers(query: string, offered: string): boolean {
  return offered === query || offered.startsWith(`${query}-`)
}

/** Wakes every waiter at once; used to pace the discover() pipeline. */
class Wakeup {
  #waiters: (() => void)[] = []
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve))
  }
  notify(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}

/**
 * Capability discovery over the DHT. Providers `announce` an offer: every
 * capability key of it is provided now and re-provided on a jittered
 * schedule, and the offer is served on /tally/offer/1.0.0. Consumers
 * `findProviders` by capability, `fetchOffer` from each, or `discover`
 * both at once with every candidate's outcome reported.
 */
export class Discovery {
  /** Provide rounds run (the announce and every re-provide), and the peers the last one reached per key. */
  readonly stats: { rounds: number; lastReached: number[] } = { rounds: 0, lastReached: [] }
  readonly #host: DiscoveryHost
  readonly #offers: OfferServer
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #jitter: number
  readonly #findTimeoutMs: number
  readonly #offerTimeoutMs: number
  #keys: string[] = []
  #timer: ReturnType<typeof setTimeout> | undefined
  #round: Promise<unknown> = Promise.resolve()
  #controller = new AbortController()

  constructor(host: DiscoveryHost, offers: OfferServer, opts: DiscoveryOptions) {
    this.#host = host
    this.#offers = offers
    this.#log = opts.log
    this.#intervalMs = opts.reprovideIntervalMs ?? DEFAULT_REPROVIDE_INTERVAL_MS
    this.#jitter = opts.reprovideJitter ?? DEFAULT_REPROVIDE_JITTER
    this.#findTimeoutMs = opts.findTimeoutMs ?? DEFAULT_FIND_TIMEOUT_MS
    this.#offerTimeoutMs = opts.offerTimeoutMs ?? OFFER_FETCH_TIMEOUT_MS
  }

  /** Capability keys currently announced. */
  get announcedKeys(): readonly string[] {
    return this.#keys
  }

  /**
   * Serve `offer` and provide its capability keys, waiting for the first
   * provide round; re-provides follow on the schedule until `withdraw()`
   * or stop. The offer must be ours, well-formed, correctly signed and
   * unexpired (`InvalidOfferError` otherwise).
   */
  async announce(offer: Offer): Promise<AnnounceResult> {
    const self = this.#host.peerId.toString()
    let checked: Offer
    try {
      checked = verifyDocument(offer, OFFER_DOCUMENT_TYPE, offerBodySchema)
    } catch (err) {
      throw new InvalidOfferError(`cannot announce: ${(err as Error).message}`, { code: 'schema' }, { cause: err })
    }
    if (checked.by !== self || checked.body.provider !== self) {
      throw new InvalidOfferError(`cannot announce an offer by ${checked.body.provider} from node ${self}`, { code: 'signer' })
    }
    if (checked.body.validUntil <= Date.now()) throw new InvalidOfferError('cannot announce an expired offer', { code: 'expired' })
    if (this.#controller.signal.aborted) this.#controller = new AbortController()

    this.#offers.setOffer(offer)
    const keys = capabilityKeysFor(checked.body.hardware.class, checked.body.jurisdiction)
    const dropped = this.#keys.filter((k) => !keys.includes(k))
    this.#keys = keys
    await Promise.all(dropped.map((k) => this.#cancel(k)))
    this.#clearTimer()
    const start = performance.now()
    const reached = await this.#provideRound(keys)
    this.#schedule()
    return { keys, cids: keys.map(capabilityCid), reached, durationMs: performance.now() - start }
  }

  /** Stop serving the offer and re-providing its keys; records on other peers lapse with their validity. */
  async withdraw(): Promise<void> {
    this.#clearTimer()
    const keys = this.#keys
    this.#keys = []
    this.#offers.setOffer(undefined)
    await this.#round.catch(() => {})
    await Promise.all(keys.map((k) => this.#cancel(k)))
  }

  /**
   * Providers of the query's capability key, each yielded once as the DHT
   * reports it (never this node). Ends at `limit`, when the query
   * completes, or quietly at its timeout; the caller's own abort throws.
   */
  async *findProviders(query: CapabilityQuery, opts: FindOptions = {}): AsyncGenerator<ProviderCandidate> {
    const capability: CapabilityQuery = {}
    if (query.hardwareClass !== undefined) capability.hardwareClass = query.hardwareClass
    if (query.jurisdiction !== undefined) capability.jurisdiction = query.jurisdiction
    const cid = capabilityCid(capabilityKey(capability))
    const limit = opts.limit ?? DEFAULT_FIND_LIMIT
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.#findTimeoutMs)
    const local = new AbortController()
    const signals = [timeout, local.signal, this.#controller.signal]
    if (opts.signal !== undefined) signals.push(opts.signal)
    const signal = AbortSignal.any(signals)
    setMaxListeners(Infinity, signal) // kad-dht adds a listener per query path and peer
    const self = this.#host.peerId.toString()
    const seen = new Set<string>()
    try {
      for await (const event of this.#host.services.dht.findProviders(cid, { signal })) {
        if (opts.onProgress !== undefined) {
          const peer = eventPeer(event)
          opts.onProgress(peer === undefined ? { type: 'dht', event: event.name } : { type: 'dht', event: event.name, peer })
        }
        if (event.name !== 'PROVIDER') continue
        for (const provider of event.providers) {
          const peer = provider.id.toString()
          if (peer === self || seen.has(peer)) continue
          seen.add(peer)
          if (provider.multiaddrs.length > 0) {
            await this.#host.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch((err: unknown) => {
              this.#log('cannot record addresses of %s: %s', peer, (err as Error).message)
            })
          }
          opts.onProgress?.({ type: 'candidate', peer })
          yield { peer, id: provider.id, multiaddrs: provider.multiaddrs }
          if (seen.size >= limit) return
        }
      }
    } catch (err) {
      if (opts.signal?.aborted === true) throw err
      // Aborting a DHT query throws (pitfall 8): a timeout or stop just ends the search.
      if (!timeout.aborted && !this.#controller.signal.aborted) throw err
      this.#log('find %s ended after %d providers: %s', cid, seen.size, timeout.aborted ? 'timeout' : 'stopping')
    } finally {
      local.abort()
    }
  }

  /** Fetch and verify one provider's offer under `policy` (errors as in `fetchOffer`). */
  async fetchOffer(
    peer: ProviderCandidate | PeerIdString | PeerId,
    opts: { policy: TrustPolicy; timeoutMs?: number; signal?: AbortSignal; now?: number },
  ): Promise<VerifiedOffer> {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : 'id' in peer && 'multiaddrs' in peer ? peer.id : (peer as PeerId)
    return fetchOffer(this.#host, id, {
      policy: opts.policy,
      expectedPeer: id.toString(),
      timeoutMs: opts.timeoutMs ?? this.#offerTimeoutMs,
      log: this.#log,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
    })
  }

  /**
   * Find providers and fetch their offers (a few at a time), yielding each
   * verified, matching offer as `{peer, offer, credentials}` and every
   * other candidate as `{peer, skipped: {code, message}}`.
   */
  async *discover(query: DiscoveryQuery, policy: TrustPolicy, opts: DiscoverOptions = {}): AsyncGenerator<DiscoveryResult> {
    const controller = new AbortController()
    const signal = opts.signal === undefined ? controller.signal : AbortSignal.any([opts.signal, controller.signal])
    const results: DiscoveryResult[] = []
    const wakeup = new Wakeup()
    let inflight = 0
    let producing = true
    let failure: unknown
    const fetchOpts = {
      policy,
      signal,
      ...(opts.offerTimeoutMs === undefined ? {} : { timeoutMs: opts.offerTimeoutMs }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
    }

    const evaluate = async (candidate: ProviderCandidate): Promise<DiscoveryResult> => {
      try {
        const verified = await this.fetchOffer(candidate, fetchOpts)
        const body = verified.offer.body
        if (query.hardwareClass !== undefined && body.hardware.class !== query.hardwareClass) {
          return { peer: candidate.peer, skipped: { code: 'mismatch', message: `offers ${body.hardware.class}, not ${query.hardwareClass}` } }
        }
        if (query.jurisdiction !== undefined && !jurisdictionCovers(query.jurisdiction, body.jurisdiction)) {
          return { peer: candidate.peer, skipped: { code: 'mismatch', message: `offers jurisdiction ${body.jurisdiction}, not ${query.jurisdiction}` } }
        }
        if (query.minCount !== undefined && body.hardware.count < query.minCount) {
          return { peer: candidate.peer, skipped: { code: 'mismatch', message: `offers ${body.hardware.count} units, fewer than ${query.minCount}` } }
        }
        if (query.maxPrice !== undefined && !withinPrice(body.price, query.maxPrice)) {
          const p = body.price
          const m = query.maxPrice
          return {
            peer: candidate.peer,
            skipped: {
              code: 'price',
              message: `asks ${p.perEpoch.amount} ${p.perEpoch.asset} per ${p.epochMs} ms, above ${m.perEpoch.amount} ${m.perEpoch.asset} per ${m.epochMs} ms`,
            },
          }
        }
        return { peer: candidate.peer, offer: verified.offer, credentials: verified.credentials }
      } catch (err) {
        return { peer: candidate.peer, skipped: skipReasonOf(err) }
      }
    }

    const producer = (async () => {
      try {
        for await (const candidate of this.findProviders(query, { ...opts, signal })) {
          while (inflight >= DISCOVER_FETCH_CONCURRENCY) await wakeup.wait()
          inflight++
          void evaluate(candidate)
            .then((result) => {
              if ('skipped' in result) opts.onProgress?.({ type: 'skipped', peer: result.peer, reason: result.skipped })
              else opts.onProgress?.({ type: 'offer', peer: result.peer })
              results.push(result)
            })
            .finally(() => {
              inflight--
              wakeup.notify()
            })
        }
      } catch (err) {
        failure = err
      } finally {
        producing = false
        wakeup.notify()
      }
    })()

    try {
      while (true) {
        const next = results.shift()
        if (next !== undefined) {
          yield next
          continue
        }
        if (!producing && inflight === 0) break
        await wakeup.wait()
      }
      if (failure !== undefined) throw failure
    } finally {
      controller.abort()
      wakeup.notify()
      await producer
    }
  }

  /** Stop the schedule and any provide round in flight. */
  async stop(): Promise<void> {
    this.#clearTimer()
    this.#controller.abort()
    await this.#round.catch(() => {})
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule(): void {
    if (this.#keys.length === 0 || this.#controller.signal.aborted) return
    const delay = Math.max(1000, this.#intervalMs * (1 + this.#jitter * (2 * Math.random() - 1)))
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#provideRound(this.#keys).finally(() => this.#schedule())
    }, delay)
  }

  #provideRound(keys: string[]): Promise<number[]> {
    const round = this.#round
      .catch(() => {})
      .then(async () => {
        const signal = AbortSignal.any([this.#controller.signal, AbortSignal.timeout(PROVIDE_TIMEOUT_MS)])
        setMaxListeners(Infinity, signal)
        const reached = await Promise.all(keys.map((k) => this.#provideKey(k, signal)))
        this.stats.rounds++
        this.stats.lastReached = reached
        this.#log('provided %d keys; peers reached per key: %s', keys.length, reached.join(','))
        return reached
      })
    this.#round = round
    return round
  }

  async #provideKey(key: string, signal: AbortSignal): Promise<number> {
    let reached = 0
    try {
      for await (const event of this.#host.services.dht.provide(capabilityCid(key), { signal })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') reached++
      }
    } catch (err) {
      this.#log('provide %s stopped after %d peers: %s', key, reached, (err as Error).message)
    }
    return reached
  }

  async #cancel(key: string): Promise<void> {
    await this.#host.services.dht.cancelReprovide(capabilityCid(key)).catch((err: unknown) => {
      this.#log('cannot cancel re-provide of %s: %s', key, (err as Error).message)
    })
  }
}

import { setMaxListeners } from 'node:events'
import type { Logger, PeerId, PeerInfo, PeerStore } from '@libp2p/interface'
import { type KadDHT, MessageType, type QueryEvent } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { type CID, type Credential, type PeerIdString, type TrustPolicy, verifyDocument } from '@tally/core'
import { type CapabilityQuery, capabilityCid, capabilityKey, capabilityKeysFor } from './capability.ts'
import {
  DEFAULT_DISCOVER_MAX_CANDIDATES,
  DEFAULT_FIND_LIMIT,
  DEFAULT_FIND_TIMEOUT_MS,
  DEFAULT_MAX_PROVIDERS_PER_SOURCE,
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
  /** `source`: the DHT peer whose answer named it (this node for its own records). */
  | { type: 'candidate'; peer: PeerIdString; source?: PeerIdString }
  /** `source` answered with more provider records than the per-source cap: `dropped` of them were not taken. */
  | { type: 'capped'; source: PeerIdString; dropped: number }
  /** The DHT query stopped at k records; the `peers` closest to the key are asked directly. */
  | { type: 'sweep'; peers: number }
  | { type: 'offer'; peer: PeerIdString }
  | { type: 'skipped'; peer: PeerIdString; reason: SkipReason }

export interface FindOptions {
  /** Stop after this many distinct providers (default 20). */
  limit?: number
  /** Provider records taken from any one DHT peer's answer (default 20); the rest is dropped and counted in `stats.capped`. */
  maxPerSource?: number
  /** Give up the DHT query after this long (default 10 s); results so far stand. */
  timeoutMs?: number
  signal?: AbortSignal
  onProgress?: (event: DiscoveryProgress) => void
}

export interface DiscoverOptions extends Omit<FindOptions, 'limit'> {
  /** Stop after this many matching offers (default 20). */
  limit?: number
  /** Candidates whose offers are fetched at most (default 100): the most work a flood of bogus provider records can cost. */
  maxCandidates?: number
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
  /** The DHT's k: its provider query stops after k records, which is what a flood exploits (default 20). */
  kBucketSize?: number
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

/** kad-dht's request sender: public on its implementation, not on the KadDHT interface. */
interface KadNetwork {
  sendRequest(to: PeerId, msg: { type: MessageType; key: Uint8Array }, opts: { signal: AbortSignal; path: KadPath }): AsyncIterable<QueryEvent>
}
interface KadPath {
  index: number
  queued: number
  running: number
  total: number
}

function kadNetwork(dht: KadDHT): KadNetwork | undefined {
  const network = (dht as unknown as { network?: Partial<KadNetwork> }).network
  return typeof network?.sendRequest === 'function' ? (network as KadNetwork) : undefined
}

/** Values of `promises` as each settles (they must not reject). */
async function* inCompletionOrder<T>(promises: readonly Promise<T>[]): AsyncGenerator<T> {
  const pending = new Map(promises.map((p, i) => [i, p.then((value) => ({ i, value }))]))
  while (pending.size > 0) {
    const { i, value } = await Promise.race(pending.values())
    pending.delete(i)
    yield value
  }
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
  /**
   * Provide rounds run (the announce and every re-provide), and the peers
   * the last one reached per key; provider records dropped over the
   * per-source cap, and sweeps of the closest peers after a DHT query that
   * ended at k records.
   */
  readonly stats: { rounds: number; lastReached: number[]; capped: number; sweeps: number } = { rounds: 0, lastReached: [], capped: 0, sweeps: 0 }
  readonly #host: DiscoveryHost
  readonly #offers: OfferServer
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #jitter: number
  readonly #findTimeoutMs: number
  readonly #offerTimeoutMs: number
  readonly #kBucketSize: number
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
    this.#kBucketSize = opts.kBucketSize ?? 20
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
   *
   * A flood cannot crowd honest providers out: at most `maxPerSource`
   * records are taken from any one DHT peer's answer, and since kad-dht
   * ends its query once k records arrived, whoever sent them, a query that
   * ended that way is followed (if the caller still reads) by asking each
   * of the k peers closest to the key directly, the peers an honest
   * provider stored its record with.
   */
  async *findProviders(query: CapabilityQuery, opts: FindOptions = {}): AsyncGenerator<ProviderCandidate> {
    const capability: CapabilityQuery = {}
    if (query.hardwareClass !== undefined) capability.hardwareClass = query.hardwareClass
    if (query.jurisdiction !== undefined) capability.jurisdiction = query.jurisdiction
    const cid = capabilityCid(capabilityKey(capability))
    const limit = opts.limit ?? DEFAULT_FIND_LIMIT
    const maxPerSource = opts.maxPerSource ?? DEFAULT_MAX_PROVIDERS_PER_SOURCE
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.#findTimeoutMs)
    const local = new AbortController()
    const signals = [timeout, local.signal, this.#controller.signal]
    if (opts.signal !== undefined) signals.push(opts.signal)
    const signal = AbortSignal.any(signals)
    setMaxListeners(Infinity, signal) // kad-dht adds a listener per query path and peer
    const self = this.#host.peerId.toString()
    const seen = new Set<string>()
    const taken = new Map<PeerIdString, number>()
    const answered = new Set<PeerIdString>()
    let reported = 0

    // The candidates of one DHT peer's answer, at most maxPerSource of them over all its answers.
    const admit = async (providers: readonly PeerInfo[], source: PeerIdString): Promise<ProviderCandidate[]> => {
      const out: ProviderCandidate[] = []
      let dropped = 0
      for (const provider of providers) {
        const peer = provider.id.toString()
        if (peer === self || seen.has(peer)) continue
        const n = taken.get(source) ?? 0
        if (n >= maxPerSource) {
          dropped++
          continue
        }
        taken.set(source, n + 1)
        seen.add(peer)
        if (provider.multiaddrs.length > 0) {
          await this.#host.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch((err: unknown) => {
            this.#log('cannot record addresses of %s: %s', peer, (err as Error).message)
          })
        }
        out.push({ peer, id: provider.id, multiaddrs: provider.multiaddrs })
      }
      if (dropped > 0) {
        this.stats.capped += dropped
        this.#log('find %s: %s answered with more than %d provider records; dropped %d', cid, source, maxPerSource, dropped)
        opts.onProgress?.({ type: 'capped', source, dropped })
      }
      return out
    }

    try {
      for await (const event of this.#host.services.dht.findProviders(cid, { signal })) {
        if (opts.onProgress !== undefined) {
          const peer = eventPeer(event)
          opts.onProgress(peer === undefined ? { type: 'dht', event: event.name } : { type: 'dht', event: event.name, peer })
        }
        if (event.name === 'PEER_RESPONSE') answered.add(event.from.toString())
        if (event.name !== 'PROVIDER') continue
        reported += event.providers.length
        const source = event.from.toString()
        for (const candidate of await admit(event.providers, source)) {
          opts.onProgress?.({ type: 'candidate', peer: candidate.peer, source })
          yield candidate
          if (seen.size >= limit) return
        }
      }
      // kad-dht stops at k records: the holders it did not get to ask may hold the honest ones.
      if (reported < this.#kBucketSize || signal.aborted) return
      for await (const answer of this.#sweep(cid, answered, signal, opts)) {
        for (const candidate of await admit(answer.providers, answer.source)) {
          opts.onProgress?.({ type: 'candidate', peer: candidate.peer, source: answer.source })
          yield candidate
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

  /** Ask each of the k peers closest to `cid` that has not answered yet for its provider records, concurrently; answers in arrival order. */
  async *#sweep(
    cid: CID,
    answered: ReadonlySet<PeerIdString>,
    signal: AbortSignal,
    opts: FindOptions,
  ): AsyncGenerator<{ source: PeerIdString; providers: PeerInfo[] }> {
    const dht = this.#host.services.dht
    const network = kadNetwork(dht)
    if (network === undefined) {
      this.#log('find %s: this kad-dht exposes no request sender; no sweep of the closest peers', cid)
      return
    }
    const self = this.#host.peerId.toString()
    const closest: PeerId[] = []
    for await (const event of dht.getClosestPeers(cid.multihash.bytes, { signal })) {
      if (event.name === 'FINAL_PEER' && event.peer.id.toString() !== self && !answered.has(event.peer.id.toString())) closest.push(event.peer.id)
      if (closest.length >= this.#kBucketSize) break
    }
    this.stats.sweeps++
    opts.onProgress?.({ type: 'sweep', peers: closest.length })
    const ask = async (peer: PeerId, index: number): Promise<{ source: PeerIdString; providers: PeerInfo[] }> => {
      const source = peer.toString()
      try {
        const path = { index, queued: 0, running: 1, total: closest.length }
        for await (const event of network.sendRequest(peer, { type: MessageType.GET_PROVIDERS, key: cid.multihash.bytes }, { signal, path })) {
          if (event.name === 'PEER_RESPONSE') return { source, providers: event.providers }
        }
      } catch (err) {
        this.#log('find %s: asking %s for providers failed: %s', cid, source, (err as Error).message)
      }
      return { source, providers: [] }
    }
    yield* inCompletionOrder(closest.map(ask))
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
   * other candidate as `{peer, skipped: {code, message}}`. Ends after
   * `limit` matching offers or `maxCandidates` candidates, whichever comes
   * first, or when the providers run out.
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
        for await (const candidate of this.findProviders(query, { ...opts, limit: opts.maxCandidates ?? DEFAULT_DISCOVER_MAX_CANDIDATES, signal })) {
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

    const wanted = opts.limit ?? DEFAULT_FIND_LIMIT
    let offers = 0
    try {
      while (offers < wanted) {
        const next = results.shift()
        if (next !== undefined) {
          if ('offer' in next) offers++
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

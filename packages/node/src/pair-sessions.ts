/**
 * The pair-session service: keeps one /tally/pair/1.0.0 session open per
 * pair this node holds with a reachable counterparty, so that both chains
 * of every pair log replicate live and catch up after any disconnect or
 * restart.
 *
 * - Either side may open the stream. When both do at once, the stream
 *   opened by the lower peer id (string order) wins on both sides; a newer
 *   stream from the same opener replaces an older one (the opener thought
 *   it dead).
 * - While a pair is wanted and has no session, it is redialed with
 *   exponential backoff and jitter: stored addresses first, then a DHT
 *   lookup of the peer.
 * - Registered pairs and their counterparty's addresses are kept in the
 *   store's meta, so a restarted node resumes its sessions by itself.
 * - `waitForSync` and `awaitRemoteDurable` expose what the counterparty has
 *   acknowledged: an ack is sent only once an entry is durable there.
 */
import type { Libp2p, Logger, PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { type CID, decode, type EntryBlock, type Identity, type PeerIdString } from '@tally/core'
import {
  EquivocationError,
  type EquivocationProof,
  type PairDescriptor,
  PairLog,
  pairDescriptorSchema,
  pairIdOf,
  parsePairDescriptor,
  type Store,
  verifyEquivocationProof,
} from '@tally/lineage'
import { z } from 'zod'
import { PeerUnreachableError, UnexpectedMessageError } from './errors.ts'
import type { FrameStream, FrameStreamOptions } from './frames.ts'
import {
  PAIR_BACKOFF_INITIAL_MS,
  PAIR_BACKOFF_MAX_MS,
  PAIR_FIND_PEER_TIMEOUT_MS,
  PAIR_FRAME_RATE,
  PAIR_FRAME_TIMEOUT_MS,
  PAIR_HELLO_TIMEOUT_MS,
  PAIR_IDLE_TIMEOUT_MS,
  PAIR_KEEPALIVE_MS,
  PAIR_MAX_ADDRS,
  PAIR_MAX_BATCH_ENTRIES,
  PAIR_MAX_FRAME_BYTES,
  PAIR_MAX_INGEST_ENTRIES,
  PAIR_MAX_STREAMS_PER_CONNECTION,
  PAIR_PEER_META_PREFIX,
  PAIR_PROTOCOL,
  PAIR_STABLE_SESSION_MS,
  PAIR_STREAM_RATE,
  PAIR_WINDOW_FRAMES,
} from './pair-constants.ts'
import {
  DuplicateSessionError,
  PairHelloError,
  RemoteDurableTimeoutError,
  SessionsStoppedError,
  SyncTimeoutError,
  UnknownEntryError,
  UnknownPairError,
} from './pair-errors.ts'
import { errorMessage, type HelloMessage, pairMessageSchema } from './pair-messages.ts'
import { blameOf, checkHello, PairSession, type SessionEnd, type SessionHooks, type SessionLimits } from './pair-session.ts'
import { encodePeerMeta, type IngestValidator, PairSlot, type PairStatus, peerMetaKey } from './pair-slot.ts'
import { handleProtocol, openFrameStream, type ProtocolHandle } from './protocol.ts'
import { PeerRateLimiter, type RateLimit } from './rate-limit.ts'

/** What the service needs of a node: its libp2p (streams, peer store, peer routing) and identity. */
export interface PairSessionsNode {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'peerStore' | 'peerRouting'>
  identity: Identity
}

export interface PairLimits extends SessionLimits {
  frameTimeoutMs: number
  backoffInitialMs: number
  backoffMaxMs: number
  stableSessionMs: number
  findPeerTimeoutMs: number
  frameRate: RateLimit
  streamRate: RateLimit
}

export const DEFAULT_PAIR_LIMITS: PairLimits = {
  window: PAIR_WINDOW_FRAMES,
  maxBatchEntries: PAIR_MAX_BATCH_ENTRIES,
  maxFrameBytes: PAIR_MAX_FRAME_BYTES,
  maxIngestEntries: PAIR_MAX_INGEST_ENTRIES,
  helloTimeoutMs: PAIR_HELLO_TIMEOUT_MS,
  keepaliveMs: PAIR_KEEPALIVE_MS,
  idleTimeoutMs: PAIR_IDLE_TIMEOUT_MS,
  frameTimeoutMs: PAIR_FRAME_TIMEOUT_MS,
  backoffInitialMs: PAIR_BACKOFF_INITIAL_MS,
  backoffMaxMs: PAIR_BACKOFF_MAX_MS,
  stableSessionMs: PAIR_STABLE_SESSION_MS,
  findPeerTimeoutMs: PAIR_FIND_PEER_TIMEOUT_MS,
  frameRate: PAIR_FRAME_RATE,
  streamRate: PAIR_STREAM_RATE,
}

export type PairSessionEvent =
  | { type: 'session-open'; pairId: string; peer: PeerIdString; session: string; direction: 'inbound' | 'outbound' }
  | { type: 'session-close'; pairId: string; peer: PeerIdString; session: string; reason: string }
  /** We cut a peer's stream off for what it sent (or failed to send); `pairId` is null before its hello named one. */
  | { type: 'cut-off'; pairId: string | null; peer: PeerIdString; code: string; message: string }
  /** We declined a well-formed hello (a pair we do not serve). */
  | { type: 'refused'; pairId: string; peer: PeerIdString; code: string; message: string }
  | { type: 'ingested'; pairId: string; peer: PeerIdString; added: number }
  /**
   * The counterparty signed two different entries with one seq: the one we
   * hold and one it sent (refused, the session cut off). `proof` is the
   * self-proving equivocation proof anyone can check offline.
   */
  | { type: 'equivocation'; pairId: string; peer: PeerIdString; seq: number; proof: EquivocationProof }

export interface PairSessionsOptions {
  node: PairSessionsNode
  /** The node's store: pair logs, and the service's meta (registered pairs, addresses, receive positions). */
  store: Store
  /** The pair log instance to use for `pair` (one per store and pair). Default: opened here and closed on stop. */
  logFor?: (pair: PairDescriptor) => PairLog | Promise<PairLog>
  /** The validator for `pair`, asked before each batch of counterparty entries is stored (the deal reducer); undefined: none. */
  validate?: (pair: PairDescriptor) => IngestValidator | undefined
  /** Whether to serve a pair a peer opens that is not registered here. Default: refuse. */
  accept?: (pair: PairDescriptor, remote: PeerIdString) => boolean | Promise<boolean>
  /** Re-register the pairs stored in meta on start and redial them. Default true. */
  resume?: boolean
  limits?: Partial<PairLimits>
  log?: Logger
  onEvent?: (event: PairSessionEvent) => void
  /** Where a counterparty's equivocation goes: issued as a warrant (kept and gossiped). Default: only the 'equivocation' event. */
  warrants?: { reportEntries(x: EntryBlock, y: EntryBlock): Promise<unknown> }
}

export interface PairSessionsStats {
  /** Streams cut off, by error name. */
  cutOff: Record<string, number>
  refused: number
  sessions: number
  /** Streams that lost the simultaneous-open race (refused here, or ours refused or superseded). */
  raced: number
  /** Counterparty entries refused because they fork a chain we hold (each comes with a proof). */
  equivocations: number
}

const storedPeerMetaSchema = z.strictObject({ pair: pairDescriptorSchema, addrs: z.array(z.string().max(512)).max(PAIR_MAX_ADDRS) })

function errorInfo(err: unknown): { code: string; message: string } {
  const e = err instanceof Error ? err : new Error(String(err))
  return { code: e.name, message: e.message }
}

export class PairSessions {
  readonly stats: PairSessionsStats = { cutOff: {}, refused: 0, sessions: 0, raced: 0, equivocations: 0 }
  readonly limits: PairLimits
  readonly #node: PairSessionsNode
  readonly #store: Store
  readonly #me: PeerIdString
  readonly #logFor: ((pair: PairDescriptor) => PairLog | Promise<PairLog>) | undefined
  readonly #validate: ((pair: PairDescriptor) => IngestValidator | undefined) | undefined
  readonly #accept: (pair: PairDescriptor, remote: PeerIdString) => boolean | Promise<boolean>
  readonly #resume: boolean
  readonly #log: Logger
  readonly #onEvent: ((event: PairSessionEvent) => void) | undefined
  readonly #warrants: PairSessionsOptions['warrants']
  readonly #slots = new Map<string, PairSlot>()
  readonly #creating = new Map<string, Promise<PairSlot>>()
  readonly #ownedLogs = new Set<PairLog>()
  readonly #running = new Set<Promise<unknown>>()
  readonly #outboundFrames: PeerRateLimiter
  readonly #hooks: SessionHooks
  readonly #registering = new Set<PairSlot>()
  #handle: ProtocolHandle | undefined
  #started = false

  constructor(opts: PairSessionsOptions) {
    this.#node = opts.node
    this.#store = opts.store
    this.#me = opts.node.identity.peerId
    this.#logFor = opts.logFor
    this.#validate = opts.validate
    this.#accept = opts.accept ?? (() => false)
    this.#resume = opts.resume ?? true
    this.#log = opts.log ?? logger(`tally:pair:${this.#me.slice(-8)}`)
    this.#onEvent = opts.onEvent
    this.#warrants = opts.warrants
    this.limits = { ...DEFAULT_PAIR_LIMITS, ...opts.limits }
    this.#outboundFrames = new PeerRateLimiter(this.limits.frameRate)
    this.#hooks = {
      ingested: (session, added) => this.#ingested(session, added),
      ended: (session, end) => this.#ended(session, end),
      acked: (session) => this.#acked(session),
    }
  }

  // ---- lifecycle -------------------------------------------------------------------

  /** Serve the protocol; with `resume`, re-register stored pairs and dial them. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    this.#handle = await handleProtocol(this.#node.libp2p, PAIR_PROTOCOL, (ctx) => this.#serve(ctx.frames, ctx.remotePeer), {
      frames: this.#frameOptions(),
      frameRate: this.limits.frameRate,
      streamRate: this.limits.streamRate,
      maxInboundStreams: PAIR_MAX_STREAMS_PER_CONNECTION,
      maxOutboundStreams: PAIR_MAX_STREAMS_PER_CONNECTION,
      log: this.#log,
      onCutOff: (err, peer) => {
        if (blameOf(err) === 'peer') this.#cutOff(null, peer.toString(), err)
      },
    })
    if (this.#resume) await this.#resumeStored()
  }

  /** Close every session, stop serving, fail every waiter; closes the pair logs this service opened. */
  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    for (const slot of this.#slots.values()) {
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      slot.timer = undefined
      slot.session?.close('node stopping')
      for (const s of slot.handshaking) s.frames.abort(new SessionsStoppedError('node stopping'))
    }
    await this.#handle?.close()
    this.#handle = undefined
    await Promise.allSettled([...this.#running])
    for (const slot of this.#slots.values()) slot.close()
    this.#slots.clear()
    for (const log of this.#ownedLogs) await log.close().catch(() => undefined)
    this.#ownedLogs.clear()
  }

  // ---- pairs -----------------------------------------------------------------------

  /**
   * Want `pair`: keep a session with its counterparty, redialing as needed.
   * `addrs` (multiaddrs of the counterparty, `/p2p/<id>` optional) are
   * stored for redials and restarts. Dials in the background.
   */
  async add(pair: PairDescriptor, opts: { addrs?: readonly string[] } = {}): Promise<PairStatus> {
    const slot = await this.#register(pair, opts.addrs)
    this.#schedule(slot, 0)
    return slot.status()
  }

  /**
   * Want `pair` and open its session now; resolves once a session is up
   * (ours or one the counterparty opened at the same time). Throws
   * `PeerUnreachableError` (or the peer's refusal) otherwise.
   */
  async connect(pair: PairDescriptor, addrs: readonly string[] = [], opts: { timeoutMs?: number } = {}): Promise<PairStatus> {
    const slot = await this.#register(pair, addrs)
    if (slot.session !== undefined) return slot.status()
    const err = await this.#dial(slot)
    if (slot.session === undefined && err !== undefined) throw err
    await slot.waitUntil(
      () => slot.session !== undefined,
      opts.timeoutMs ?? this.limits.helloTimeoutMs,
      () => new PeerUnreachableError(`no session with ${slot.counterparty} for pair ${slot.key}`),
    )
    return slot.status()
  }

  /** Stop wanting `pair`: close its session, forget its stored addresses. The pair log itself is untouched. */
  async remove(pair: PairDescriptor): Promise<void> {
    const key = pairIdOf(parsePairDescriptor(pair)).toString()
    const slot = this.#slots.get(key)
    if (slot === undefined) return
    slot.wanted = false
    this.#slots.delete(key)
    slot.session?.close('pair removed')
    slot.close('pair removed')
    await this.#store.write({ meta: [{ key: peerMetaKey(slot.id), value: null }] })
    if (this.#ownedLogs.delete(slot.log)) await slot.log.close()
  }

  status(pair: PairDescriptor): PairStatus {
    return this.#slot(pair).status()
  }

  list(): PairStatus[] {
    return [...this.#slots.values()].map((s) => s.status())
  }

  /** The pair log the service uses for `pair` (registered pairs only). */
  logOf(pair: PairDescriptor): PairLog {
    return this.#slot(pair).log
  }

  /** Resolves when a session is open and both sides hold the same heads of both chains (as this side knows). */
  async waitForSync(pair: PairDescriptor, timeoutMs = 30_000): Promise<PairStatus> {
    const slot = this.#slot(pair)
    await slot.waitUntil(
      () => slot.synced(),
      timeoutMs,
      () => new SyncTimeoutError(`pair ${slot.key} not in sync after ${timeoutMs} ms`, { status: slot.status() }),
    )
    return slot.status()
  }

  /** Resolves once the counterparty has acknowledged our entry `cid` (or a later one) as durable. */
  async awaitRemoteDurable(pair: PairDescriptor, cid: CID, timeoutMs = 30_000): Promise<void> {
    const slot = this.#slot(pair)
    const seq = await slot.ownSeqOf(cid)
    if (seq === undefined) throw new UnknownEntryError(`${cid} is not one of our durable entries of pair ${slot.key}`)
    await slot.waitUntil(
      () => slot.remoteHeldMine !== null && slot.remoteHeldMine.seq >= seq,
      timeoutMs,
      () => new RemoteDurableTimeoutError(`${slot.counterparty} did not acknowledge #${seq} within ${timeoutMs} ms`, { seq }),
    )
  }

  #slot(pair: PairDescriptor): PairSlot {
    const key = pairIdOf(parsePairDescriptor(pair)).toString()
    const slot = this.#slots.get(key)
    if (slot === undefined) throw new UnknownPairError(`pair ${key} is not registered with the pair-session service`)
    return slot
  }

  async #register(pair: PairDescriptor, addrs: readonly string[] | undefined): Promise<PairSlot> {
    if (!this.#started) throw new SessionsStoppedError('pair sessions are not started')
    const p = parsePairDescriptor(pair)
    if (p.provider !== this.#me && p.consumer !== this.#me) throw new UnknownPairError(`this node (${this.#me}) is not a party of the pair`)
    const slot = await this.#ensureSlot(p, {})
    slot.wanted = true
    if (addrs !== undefined && addrs.length > 0) slot.addrs = normalizeAddrs(addrs, slot.counterparty)
    if (slot.registrationDue()) {
      const stored = [...slot.addrs]
      await this.#store.write({ meta: [{ key: peerMetaKey(slot.id), value: encodePeerMeta(slot.pair, stored) }] })
      slot.markRegistered(stored)
    }
    return slot
  }

  #ensureSlot(pair: PairDescriptor, opts: { addrs?: string[]; storedAddrs?: string[]; wanted?: boolean }): Promise<PairSlot> {
    const key = pairIdOf(pair).toString()
    const existing = this.#slots.get(key)
    if (existing !== undefined) return Promise.resolve(existing)
    let creating = this.#creating.get(key)
    if (creating === undefined) {
      creating = (async () => {
        let log: PairLog
        if (this.#logFor !== undefined) log = await this.#logFor(pair)
        else {
          log = await PairLog.open(this.#store, pair, this.#node.identity)
          this.#ownedLogs.add(log)
        }
        const slot = new PairSlot(log, this.#store, {
          ...(opts.addrs === undefined ? {} : { addrs: opts.addrs }),
          storedAddrs: opts.storedAddrs ?? null,
          validator: () => this.#validate?.(pair),
        })
        slot.wanted = opts.wanted ?? true
        this.#slots.set(key, slot)
        return slot
      })().finally(() => this.#creating.delete(key))
      this.#creating.set(key, creating)
    }
    return creating
  }

  async #resumeStored(): Promise<void> {
    const found: { pair: PairDescriptor; addrs: string[] }[] = []
    for await (const { key, value } of this.#store.metaEntries(PAIR_PEER_META_PREFIX)) {
      try {
        const meta = storedPeerMetaSchema.parse(decode(value))
        const pair = parsePairDescriptor(meta.pair)
        if (pair.provider === this.#me || pair.consumer === this.#me) found.push({ pair, addrs: meta.addrs })
      } catch (err) {
        this.#log.error('ignoring unreadable pair registration %s: %s', key, (err as Error).message)
      }
    }
    for (const { pair, addrs } of found) {
      const slot = await this.#ensureSlot(pair, { addrs, storedAddrs: addrs })
      this.#schedule(slot, 0)
    }
    if (found.length > 0) this.#log('resuming %d pair(s)', found.length)
  }

  // ---- inbound ----------------------------------------------------------------------

  async #serve(frames: FrameStream, remotePeer: PeerId): Promise<void> {
    const remote = remotePeer.toString()
    const msg = await frames.readMessage(pairMessageSchema, 'pair hello', { idleTimeoutMs: this.limits.helloTimeoutMs })
    if (msg.type !== 'hello') throw new UnexpectedMessageError(`expected hello, got ${msg.type}`)
    let slot: PairSlot | undefined
    try {
      slot = await this.#slotForHello(msg, remote)
    } catch (err) {
      await tell(frames, err)
      throw err
    }
    if (slot === undefined) {
      const err = new UnknownPairError('this node does not serve that pair')
      this.stats.refused++
      this.#emit({ type: 'refused', pairId: pairIdOf(msg.pair).toString(), peer: remote, ...errorInfo(err) })
      await tell(frames, err)
      return
    }
    const session = new PairSession(slot, frames, 'inbound', this.limits, this.#hooks, this.#log)
    if (!this.#started || !this.#mayAdopt(slot, session)) {
      this.stats.raced++
      await tell(frames, new DuplicateSessionError('this node keeps its own stream for the pair'))
      return
    }
    slot.handshaking.add(session)
    slot.changed()
    try {
      await session.handshakeInbound(msg)
    } finally {
      slot.handshaking.delete(session)
    }
    if (!this.#adopt(slot, session)) {
      this.stats.raced++
      await tell(frames, new DuplicateSessionError('this node keeps its own stream for the pair'))
      return
    }
    await this.#runSession(slot, session)
  }

  async #slotForHello(hello: HelloMessage, remote: PeerIdString): Promise<PairSlot | undefined> {
    const pair = parsePairDescriptor(hello.pair)
    if (pair.provider !== this.#me && pair.consumer !== this.#me) throw new PairHelloError('hello names a pair this node is not part of')
    const counterparty = pair.provider === this.#me ? pair.consumer : pair.provider
    if (counterparty !== remote) throw new PairHelloError(`peer ${remote} is not the counterparty of the pair it names`)
    checkHello(hello, pair.provider, pair.consumer)
    const existing = this.#slots.get(pairIdOf(pair).toString())
    if (existing !== undefined) return existing
    if (!(await this.#accept(pair, remote))) return undefined
    // Wanted (redialed, resumed) only once the peer has exchanged something valid.
    return this.#ensureSlot(pair, { wanted: false })
  }

  // ---- outbound ---------------------------------------------------------------------

  /** Dial the counterparty and run a session; returns the error when no session came of it. */
  async #dial(slot: PairSlot): Promise<Error | undefined> {
    if (!this.#started || slot.session !== undefined || slot.dialing) return undefined
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = undefined
    slot.nextAttemptAt = undefined
    slot.dialing = true
    slot.changed()
    let session: PairSession | undefined
    try {
      const frames = await this.#openStream(slot)
      session = new PairSession(slot, frames, 'outbound', this.limits, this.#hooks, this.#log)
      slot.handshaking.add(session)
      try {
        await session.handshakeOutbound()
      } finally {
        slot.handshaking.delete(session)
      }
      if (!this.#started || !this.#adopt(slot, session)) {
        this.stats.raced++
        session.close('lost the simultaneous-open race', new DuplicateSessionError('this node keeps another stream for the pair'))
        return undefined
      }
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      session?.frames.abort(error)
      if (session?.superseded === true || error.name === 'DuplicateSessionError') {
        this.stats.raced++
        return undefined
      }
      slot.lastError = { ...errorInfo(error), at: Date.now() }
      this.#log('dial for pair %s failed: %s: %s', slot.describe(), error.name, error.message)
      return error
    } finally {
      slot.dialing = false
      if (slot.session === undefined) this.#schedule(slot)
      slot.changed()
    }
    this.#track(this.#runSession(slot, session))
    return undefined
  }

  async #openStream(slot: PairSlot): Promise<FrameStream> {
    const libp2p = this.#node.libp2p
    const peer = peerIdFromString(slot.counterparty)
    const addrs = slot.addrs.flatMap((a) => {
      try {
        return [multiaddr(a)]
      } catch {
        return []
      }
    })
    if (addrs.length > 0) await libp2p.peerStore.merge(peer, { multiaddrs: addrs }).catch(() => undefined)
    const open = () =>
      openFrameStream(libp2p, peer, PAIR_PROTOCOL, {
        signal: AbortSignal.timeout(this.limits.helloTimeoutMs * 2),
        frames: { ...this.#frameOptions(), frameRate: { limiter: this.#outboundFrames, key: slot.counterparty } },
        log: this.#log,
      })
    try {
      return await open()
    } catch (first) {
      // Stored addresses are stale (the peer restarted on another port) or unknown: ask the DHT.
      let found: Awaited<ReturnType<typeof libp2p.peerRouting.findPeer>> | undefined
      try {
        found = await libp2p.peerRouting.findPeer(peer, { signal: AbortSignal.timeout(this.limits.findPeerTimeoutMs) })
      } catch {
        throw first
      }
      if (found.multiaddrs.length === 0) throw first
      await libp2p.peerStore.merge(peer, { multiaddrs: found.multiaddrs }).catch(() => undefined)
      return open()
    }
  }

  #schedule(slot: PairSlot, delayMs?: number): void {
    if (!this.#started || !slot.wanted || slot.session !== undefined || slot.dialing || slot.timer !== undefined) return
    let delay = delayMs
    if (delay === undefined) {
      const base = Math.min(this.limits.backoffMaxMs, this.limits.backoffInitialMs * 2 ** Math.min(slot.attempt, 30))
      delay = base / 2 + (Math.random() * base) / 2
      slot.attempt++
    }
    slot.nextAttemptAt = Date.now() + delay
    slot.timer = setTimeout(() => {
      slot.timer = undefined
      void this.#dial(slot)
    }, delay)
    slot.timer.unref?.()
  }

  // ---- sessions ---------------------------------------------------------------------

  /** The simultaneous-open rule: which of two live streams of one pair survives. */
  #wins(candidate: PairSession, rival: PairSession): boolean {
    if (!rival.alive) return true
    if (candidate.opener !== rival.opener) return candidate.opener < rival.opener
    return true
  }

  #mayAdopt(slot: PairSlot, candidate: PairSession): boolean {
    const rivals = [slot.session, ...slot.handshaking].filter((s): s is PairSession => s !== undefined && s !== candidate)
    return rivals.every((r) => this.#wins(candidate, r))
  }

  #adopt(slot: PairSlot, candidate: PairSession): boolean {
    if (!this.#mayAdopt(slot, candidate)) return false
    const old = slot.session
    for (const r of slot.handshaking) {
      if (r === candidate) continue
      r.superseded = true
      r.frames.abort(new DuplicateSessionError('another stream of the pair won'))
    }
    if (old !== undefined && old !== candidate) {
      old.superseded = true
      old.close('replaced by a newer stream', new DuplicateSessionError('replaced by a newer stream of the pair'))
    }
    slot.session = candidate
    return true
  }

  async #runSession(slot: PairSlot, session: PairSession): Promise<void> {
    slot.counters.sessions++
    this.stats.sessions++
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = undefined
    slot.nextAttemptAt = undefined
    this.#log('%s open', session.describe())
    this.#emit({ type: 'session-open', pairId: slot.key, peer: slot.counterparty, session: session.id, direction: session.direction })
    void this.#learnAddrs(slot)
    const run = session.run()
    slot.changed()
    await run
  }

  #track(p: Promise<unknown>): void {
    const t = p.catch((err: unknown) => this.#log.error('pair session failed: %s', (err as Error).message)).finally(() => this.#running.delete(t))
    this.#running.add(t)
  }

  #ingested(session: PairSession, added: number): void {
    const slot = session.slot
    if (added > 0) {
      slot.attempt = 0
      slot.wanted = true
      this.#emit({ type: 'ingested', pairId: slot.key, peer: slot.counterparty, added })
    }
  }

  #acked(session: PairSession): void {
    const slot = session.slot
    slot.attempt = 0
    slot.wanted = true
    if (slot.registrationDue() && !this.#registering.has(slot)) {
      // The counterparty proved it holds our entries: worth remembering where it lives.
      const addrs = [...slot.addrs]
      this.#registering.add(slot)
      this.#store
        .write({ meta: [{ key: peerMetaKey(slot.id), value: encodePeerMeta(slot.pair, addrs) }] })
        .then(() => slot.markRegistered(addrs))
        .catch((err: unknown) => this.#log.error('storing addresses of %s failed: %s', slot.counterparty, (err as Error).message))
        .finally(() => this.#registering.delete(slot))
    }
  }

  #ended(session: PairSession, end: SessionEnd): void {
    const slot = session.slot
    const wasCurrent = slot.session === session
    if (wasCurrent) slot.session = undefined
    const reason = describeEnd(end)
    switch (end.kind) {
      case 'fault':
        slot.lastError = { ...errorInfo(end.error), at: Date.now() }
        if (end.blame === 'peer') this.#cutOff(slot.key, slot.counterparty, end.error, slot)
        if (end.error instanceof EquivocationError) this.#equivocation(slot, end.error)
        else if (end.blame === 'local') this.#log.error('%s failed: %s: %s', session.describe(), end.error.name, end.error.message)
        break
      case 'remote-error':
        if (end.code !== 'DuplicateSessionError') slot.lastError = { code: end.code, message: `peer: ${end.message}`, at: Date.now() }
        break
    }
    this.#log('%s ended: %s', session.describe(), reason)
    this.#emit({ type: 'session-close', pairId: slot.key, peer: slot.counterparty, session: session.id, reason })
    slot.changed()
    if (!wasCurrent || session.superseded || end.kind === 'closed') return
    if (!slot.wanted) {
      this.#forget(slot)
      return
    }
    const peerFault = end.kind === 'fault' && end.blame === 'peer'
    if (!peerFault && Date.now() - session.openedAt >= this.limits.stableSessionMs) slot.attempt = 0
    this.#schedule(slot)
  }

  /** Drop a slot that was never wanted (an inbound pair that exchanged nothing valid), so strangers cannot pile them up. */
  #forget(slot: PairSlot): void {
    if (slot.session !== undefined || slot.handshaking.size > 0 || this.#slots.get(slot.key) !== slot) return
    this.#slots.delete(slot.key)
    slot.close('pair not wanted')
    if (this.#ownedLogs.delete(slot.log)) void slot.log.close().catch(() => undefined)
  }

  #cutOff(pairId: string | null, peer: PeerIdString, err: Error, slot?: PairSlot): void {
    this.stats.cutOff[err.name] = (this.stats.cutOff[err.name] ?? 0) + 1
    if (slot !== undefined) slot.counters.cutOffs++
    this.#log('cut off %s%s: %s: %s', peer, pairId === null ? '' : ` (pair ${pairId})`, err.name, err.message)
    this.#emit({ type: 'cut-off', pairId, peer, code: err.name, message: err.message })
  }

  /** The counterparty forked its chain: tell the owner, with the proof, and issue a warrant when a reporter is wired. */
  #equivocation(slot: PairSlot, err: EquivocationError): void {
    let seq: number
    let a: EntryBlock
    let b: EntryBlock
    try {
      ;({ seq, a, b } = verifyEquivocationProof(err.proof))
    } catch (e) {
      this.#log.error('equivocation by %s came with a proof that does not verify: %s', slot.counterparty, (e as Error).message)
      return
    }
    this.stats.equivocations++
    this.#log.error('%s signed two different entries #%d of pair %s', slot.counterparty, seq, slot.key)
    this.#emit({ type: 'equivocation', pairId: slot.key, peer: slot.counterparty, seq, proof: err.proof })
    this.#warrants?.reportEntries(a, b).catch((e: unknown) => this.#log.error('warrant against %s not issued: %s', slot.counterparty, (e as Error).message))
  }

  async #learnAddrs(slot: PairSlot): Promise<void> {
    try {
      const peer = await this.#node.libp2p.peerStore.get(peerIdFromString(slot.counterparty))
      const addrs = normalizeAddrs(
        peer.addresses.map((a) => a.multiaddr.toString()),
        slot.counterparty,
      )
      if (addrs.length > 0) slot.addrs = addrs
    } catch {
      // Unknown to the peer store yet: keep what we had.
    }
  }

  #frameOptions(): Omit<FrameStreamOptions, 'frameRate' | 'log'> {
    return {
      maxFrameBytes: this.limits.maxFrameBytes,
      frameTimeoutMs: this.limits.frameTimeoutMs,
      maxBufferedBytes: (this.limits.window + 2) * (this.limits.maxFrameBytes + 16),
    }
  }

  #emit(event: PairSessionEvent): void {
    try {
      this.#onEvent?.(event)
    } catch (err) {
      this.#log.error('pair event listener threw: %s', (err as Error).message)
    }
  }
}

/** Addresses as `<multiaddr>/p2p/<peer>`, deduplicated, circuit addresses dropped, at most PAIR_MAX_ADDRS. */
function normalizeAddrs(addrs: readonly string[], peer: PeerIdString): string[] {
  const out: string[] = []
  for (const a of addrs) {
    if (a.includes('/p2p-circuit')) continue
    let s = a
    const at = s.indexOf('/p2p/')
    if (at >= 0) {
      if (s.slice(at + 5) !== peer) continue
    } else s = `${s}/p2p/${peer}`
    try {
      multiaddr(s)
    } catch {
      continue
    }
    if (!out.includes(s)) out.push(s)
    if (out.length >= PAIR_MAX_ADDRS) break
  }
  return out
}

async function tell(frames: FrameStream, err: unknown): Promise<void> {
  await frames.writeMessage(errorMessage(err), { signal: AbortSignal.timeout(500) }).catch(() => undefined)
}

function describeEnd(end: SessionEnd): string {
  switch (end.kind) {
    case 'closed':
      return `closed: ${end.reason}`
    case 'remote-closed':
      return 'peer closed the stream'
    case 'remote-error':
      return `peer closed with ${end.code}: ${end.message}`
    case 'fault':
      return `${end.blame === 'peer' ? 'cut off' : end.blame === 'link' ? 'link lost' : 'local failure'}: ${end.error.name}: ${end.error.message}`
  }
}

/**
 * What a node knows about one of its pairs across sessions: the pair log,
 * what the counterparty holds (from hello and acks), its own chain's head
 * as last announced, the addresses to redial, recent own entries for live
 * pushes, and the waiters for sync and remote durability. Sessions come
 * and go; a slot lives as long as the pair is registered.
 */
import type { CID, EntryBlock, PeerIdString } from '@tally/core'
import { encode } from '@tally/core'
import type { IngestOptions, MetaWrite, PairDescriptor, PairLog, PartyRole, Store } from '@tally/lineage'
import { otherRole, pairIdOf } from '@tally/lineage'
import { PAIR_PEER_META_PREFIX, PAIR_RECENT_ENTRIES, PAIR_RECV_META_PREFIX } from './pair-constants.ts'
import { SessionsStoppedError } from './pair-errors.ts'
import type { PairSession } from './pair-session.ts'

export type IngestValidator = NonNullable<IngestOptions['validate']>

export interface RemoteHead {
  seq: number
  cid: CID
}

/** Counters per pair, for metrics. */
export interface PairCounters {
  sessions: number
  cutOffs: number
  framesIn: number
  framesOut: number
  entriesIn: number
  entriesOut: number
  acksIn: number
  acksOut: number
}

export interface PairStatus {
  pair: PairDescriptor
  pairId: string
  role: PartyRole
  counterparty: PeerIdString
  /** connected: a session is open; connecting: a dial or handshake is under way; waiting: a redial is scheduled; idle: not wanted. */
  state: 'connected' | 'connecting' | 'waiting' | 'idle'
  connected: boolean
  session?: { id: string; direction: 'inbound' | 'outbound'; since: number }
  /** Durable heads held here. */
  local: { provider: number; consumer: number }
  /** What the counterparty holds, as last told (hello, acks, entries): its own chain's head and how much of ours. */
  remote: { own: number; ours: number } | null
  /** Own entries the counterparty has not acknowledged; counterparty entries announced but not held here. */
  lag: { toRemote: number; fromRemote: number }
  /** Both sides hold the same heads, as far as this side knows. */
  synced: boolean
  lastError?: { code: string; message: string; at: number }
  nextAttemptAt?: number
  addrs: string[]
  counters: PairCounters
}

interface PeerMeta {
  pair: PairDescriptor
  addrs: string[]
}

export function peerMetaKey(pairId: CID): string {
  return PAIR_PEER_META_PREFIX + pairId.toString()
}

export function recvMetaKey(pairId: CID): string {
  return PAIR_RECV_META_PREFIX + pairId.toString()
}

export function encodePeerMeta(pair: PairDescriptor, addrs: readonly string[]): Uint8Array {
  return encode({ pair: { provider: pair.provider, consumer: pair.consumer }, addrs: [...addrs] })
}

export type { PeerMeta }

export class PairSlot {
  readonly pair: PairDescriptor
  readonly id: CID
  readonly key: string
  readonly me: PeerIdString
  readonly counterparty: PeerIdString
  readonly role: PartyRole
  readonly other: PartyRole
  readonly log: PairLog
  readonly store: Store
  /** The pair's validator for the next batch (asked anew each time: it may appear once the app's deal engine runs). */
  readonly validator: () => IngestValidator | undefined
  /** Redial while wanted. */
  wanted = true
  addrs: string[]
  /** Addresses as stored in the peer meta, or null when the pair is not registered in the store yet. */
  storedAddrs: string[] | null
  session: PairSession | undefined
  readonly handshaking = new Set<PairSession>()
  dialing = false
  attempt = 0
  timer: ReturnType<typeof setTimeout> | undefined
  nextAttemptAt: number | undefined
  /** What the counterparty holds of our chain (hello, then acks). */
  remoteHeldMine: RemoteHead | null = null
  /** The counterparty's own head seq as last announced. */
  remoteOwnSeq = 0
  /** Whether remote* came from a hello of the current or a past session. */
  remoteKnown = false
  lastError: { code: string; message: string; at: number } | undefined
  readonly counters: PairCounters = { sessions: 0, cutOffs: 0, framesIn: 0, framesOut: 0, entriesIn: 0, entriesOut: 0, acksIn: 0, acksOut: 0 }
  readonly #recent = new Map<number, EntryBlock>()
  readonly #recentSeq = new Map<string, number>()
  readonly #listeners = new Set<() => void>()
  readonly #closers = new Set<(err: Error) => void>()
  readonly #unsubscribe: () => void

  constructor(log: PairLog, store: Store, opts: { addrs?: string[]; storedAddrs?: string[] | null; validator?: () => IngestValidator | undefined }) {
    this.log = log
    this.store = store
    this.pair = log.pair
    this.id = pairIdOf(log.pair)
    this.key = this.id.toString()
    this.me = log.me
    this.counterparty = log.counterparty
    this.role = log.role
    this.other = otherRole(log.role)
    this.addrs = opts.addrs ?? []
    this.storedAddrs = opts.storedAddrs ?? null
    this.validator = opts.validator ?? (() => undefined)
    this.#unsubscribe = log.subscribe((event) => {
      // Remote entries: the session signals the change once its own bookkeeping is done.
      if (event.origin === 'local') {
        this.#remember(event.block)
        this.session?.notify()
        this.changed()
      }
    })
  }

  // ---- own chain ---------------------------------------------------------------

  ownHead(): number {
    return this.log.heads()[this.role]?.seq ?? 0
  }

  heldTheirs(): number {
    return this.log.heads()[this.other]?.seq ?? 0
  }

  #remember(b: EntryBlock): void {
    this.#recent.set(b.entry.seq, b)
    this.#recentSeq.set(b.cid.toString(), b.entry.seq)
    if (this.#recent.size > PAIR_RECENT_ENTRIES) {
      const oldest = this.#recent.entries().next().value
      if (oldest !== undefined) {
        this.#recent.delete(oldest[0])
        this.#recentSeq.delete(oldest[1].cid.toString())
      }
    }
  }

  /** Seq of our own durable entry `cid`, or undefined if it is not one (recent entries answer without a store read). */
  async ownSeqOf(cid: CID): Promise<number | undefined> {
    const recent = this.#recentSeq.get(cid.toString())
    if (recent !== undefined) return recent
    const block = await this.log.get(cid)
    return block !== undefined && block.entry.author === this.me ? block.entry.seq : undefined
  }

  /** Own entries from `from` to `to` (durable ones only), at most `maxEntries` and about `maxBytes`, at least one if any. */
  async readOwn(from: number, to: number, maxEntries: number, maxBytes: number): Promise<{ seq: number; cid: CID; bytes: Uint8Array }[]> {
    const out: { seq: number; cid: CID; bytes: Uint8Array }[] = []
    let bytes = 0
    const fits = (n: number) => out.length < maxEntries && (out.length === 0 || bytes + n <= maxBytes)
    // Live pushes come from memory; catch-up reads the store.
    for (let s = from; s <= to; s++) {
      const b = this.#recent.get(s)
      if (b === undefined || !fits(b.bytes.byteLength)) break
      out.push({ seq: s, cid: b.cid, bytes: b.bytes })
      bytes += b.bytes.byteLength
    }
    if (out.length > 0) return out
    // Bytes go on the wire as stored: nothing here decodes them. No more than `maxEntries` are asked of the store.
    for await (const e of this.store.chainEntries(this.id, this.me, from, Math.min(to, from + maxEntries - 1))) {
      if (!fits(e.bytes.byteLength)) break
      out.push(e)
      bytes += e.bytes.byteLength
    }
    return out
  }

  // ---- knowledge of the counterparty ---------------------------------------------

  noteHello(heldMine: RemoteHead | null, ownSeq: number): void {
    this.remoteHeldMine = heldMine
    this.remoteOwnSeq = ownSeq
    this.remoteKnown = true
    this.changed()
  }

  noteAck(seq: number, cid: CID): void {
    this.counters.acksIn++
    this.noteRemoteHeld(seq, cid)
  }

  noteRemoteHeld(seq: number, cid: CID): void {
    if (this.remoteHeldMine === null || seq > this.remoteHeldMine.seq) {
      this.remoteHeldMine = { seq, cid }
      this.changed()
    }
  }

  noteRemoteOwn(seq: number): void {
    if (seq > this.remoteOwnSeq) {
      this.remoteOwnSeq = seq
      this.changed()
    }
  }

  /** Meta written atomically with an ingest: the receive position (and the message that caused it), and the registration if due. */
  ingestMeta(session: string, frame: number, last: { seq: number; cid: CID }): MetaWrite[] {
    const meta: MetaWrite[] = [
      { key: recvMetaKey(this.id), value: encode({ peer: this.counterparty, session, frame, seq: last.seq, cid: last.cid, at: Date.now() }) },
    ]
    if (this.registrationDue()) meta.push({ key: peerMetaKey(this.id), value: encodePeerMeta(this.pair, this.addrs) })
    return meta
  }

  registrationDue(): boolean {
    return this.storedAddrs === null || !sameAddrs(this.storedAddrs, this.addrs)
  }

  markRegistered(addrs: readonly string[]): void {
    this.storedAddrs = [...addrs]
  }

  synced(): boolean {
    if (this.session === undefined || !this.session.established || !this.remoteKnown) return false
    const mine = this.log.heads()[this.role]
    const ackOk =
      mine === null
        ? this.remoteHeldMine === null
        : this.remoteHeldMine !== null && this.remoteHeldMine.seq === mine.seq && this.remoteHeldMine.cid.equals(mine.cid)
    return ackOk && this.heldTheirs() >= this.remoteOwnSeq
  }

  // ---- waiters -------------------------------------------------------------------

  changed(): void {
    for (const l of [...this.#listeners]) l()
  }

  /** Resolve once `done()` holds; reject with `timeoutError()` after `ms`, or when the slot closes. */
  waitUntil(done: () => boolean, ms: number, timeoutError: () => Error): Promise<void> {
    if (done()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer)
        this.#listeners.delete(check)
        this.#closers.delete(onClose)
        if (err === undefined) resolve()
        else reject(err)
      }
      const check = () => {
        if (done()) finish()
      }
      const onClose = (err: Error) => finish(err)
      const timer = setTimeout(() => finish(timeoutError()), ms)
      this.#listeners.add(check)
      this.#closers.add(onClose)
    })
  }

  status(): PairStatus {
    const h = this.log.heads()
    const mine = h[this.role]?.seq ?? 0
    const s = this.session
    const state =
      s !== undefined
        ? 'connected'
        : this.dialing || this.handshaking.size > 0
          ? 'connecting'
          : this.timer !== undefined
            ? 'waiting'
            : this.wanted
              ? 'waiting'
              : 'idle'
    return {
      pair: this.pair,
      pairId: this.key,
      role: this.role,
      counterparty: this.counterparty,
      state,
      connected: s !== undefined,
      ...(s === undefined ? {} : { session: { id: s.id, direction: s.direction, since: s.openedAt } }),
      local: { provider: h.provider?.seq ?? 0, consumer: h.consumer?.seq ?? 0 },
      remote: this.remoteKnown ? { own: this.remoteOwnSeq, ours: this.remoteHeldMine?.seq ?? 0 } : null,
      lag: {
        toRemote: this.remoteKnown ? Math.max(0, mine - (this.remoteHeldMine?.seq ?? 0)) : mine,
        fromRemote: Math.max(0, this.remoteOwnSeq - this.heldTheirs()),
      },
      synced: this.synced(),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      ...(this.nextAttemptAt === undefined ? {} : { nextAttemptAt: this.nextAttemptAt }),
      addrs: [...this.addrs],
      counters: { ...this.counters },
    }
  }

  /** Stop following the log and fail every waiter. */
  close(reason = 'pair sessions stopped'): void {
    this.#unsubscribe()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const err = new SessionsStoppedError(reason)
    for (const c of [...this.#closers]) c(err)
  }

  describe(): string {
    return `${this.key.slice(-8)} with ${this.counterparty.slice(-8)}`
  }
}

function sameAddrs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

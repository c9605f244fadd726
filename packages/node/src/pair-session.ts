/**
 * One /tally/pair/1.0.0 stream between the two parties of a pair.
 *
 * Each side: hello (heads, window) -> request for the counterparty's chain
 * from what it holds + 1, open-ended -> then, concurrently:
 * - as sender of its own chain, it pushes `entries` frames from the
 *   requested seq on, at most `window` frames unacknowledged, and keeps
 *   pushing as the local log grows (live);
 * - as receiver, it ingests each frame (verification and the durable write
 *   in lineage, with the pair's validator), and only then acks the frame's
 *   last entry, which returns one frame of credit to the sender.
 * Any protocol violation, bad entry or stall cuts the stream off with the
 * reason logged and reported to the owner; nothing of a refused batch is
 * stored (ingest is all or nothing).
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from '@libp2p/interface'
import { type CID, type PeerIdString, TallyError } from '@tally/core'
import { decodeEntryFast, StoreError } from '@tally/lineage'
import type { FrameStream } from './frames.ts'
import { RemoteError, UnexpectedMessageError } from './errors.ts'
import { PAIR_PROTOCOL_VERSION } from './pair-constants.ts'
import {
  DuplicateSessionError,
  EntryRejectedError,
  FlowControlError,
  PairAckError,
  PairHelloError,
  PairLocalFaultError,
  PairRequestError,
} from './pair-errors.ts'
import {
  ackMessage,
  type AckMessage,
  type EntriesMessage,
  errorMessage,
  type HelloMessage,
  helloMessage,
  type PairMessage,
  pairMessageSchema,
  type RequestMessage,
  wireHeads,
} from './pair-messages.ts'
import type { IngestValidator, PairSlot } from './pair-slot.ts'

export interface SessionLimits {
  /** Entries frames we accept unacknowledged (advertised in hello). */
  window: number
  maxBatchEntries: number
  maxFrameBytes: number
  maxIngestEntries: number
  helloTimeoutMs: number
  keepaliveMs: number
  idleTimeoutMs: number
}

/** How a session ended. `fault` with blame 'peer' is a cut-off: the peer misbehaved. */
export type SessionEnd =
  | { kind: 'closed'; reason: string }
  | { kind: 'remote-closed' }
  | { kind: 'remote-error'; code: string; message: string }
  | { kind: 'fault'; error: Error; blame: 'peer' | 'local' | 'link' }

export interface SessionHooks {
  /** A batch was stored: `added` new entries. */
  ingested(session: PairSession, added: number, meta: { registered: boolean }): void
  /** The peer acknowledged one of our frames. */
  acked(session: PairSession): void
  /** The session ended (called once). */
  ended(session: PairSession, end: SessionEnd): void
}

/** Errors that say the peer broke the protocol or sent bad data (as opposed to a lost link or our own failure). */
const LINK_ERRORS = new Set(['StreamEndedError', 'PeerUnreachableError', 'AbortError'])
const LOCAL_ERRORS = new Set(['StoreError', 'ClosedError'])

export function blameOf(err: unknown): 'peer' | 'local' | 'link' {
  if (!(err instanceof Error)) return 'local'
  if (LINK_ERRORS.has(err.name)) return 'link'
  // A store fault (disk full, directory unwritable: StoreError subclasses) is ours, never the peer's.
  if (LOCAL_ERRORS.has(err.name) || err instanceof StoreError) return 'local'
  // Frame, protocol and ingest refusals are TallyErrors about what the peer sent; anything else is a fault of ours.
  return err instanceof TallyError ? 'peer' : 'local'
}

/** A validator's refusal is the peer's fault whatever it throws; a non-Tally error becomes EntryRejectedError. */
function strictValidator(validate: IngestValidator): IngestValidator {
  return async (added) => {
    try {
      await validate(added)
    } catch (err) {
      if (err instanceof TallyError) throw err
      throw new EntryRejectedError(`validator refused entries: ${(err as Error)?.message ?? String(err)}`, {}, { cause: err })
    }
  }
}

type OwnBatch = Awaited<ReturnType<PairSlot['readOwn']>>

interface QueuedFrame {
  blocks: Uint8Array[]
  frame: number
}

export class PairSession {
  readonly id = randomBytes(6).toString('hex')
  readonly direction: 'inbound' | 'outbound'
  readonly opener: PeerIdString
  readonly openedAt = Date.now()
  readonly frames: FrameStream
  readonly slot: PairSlot
  remoteHello: HelloMessage | undefined
  /** Set when the service chose another stream for this pair. */
  superseded = false
  readonly #limits: SessionLimits
  readonly #hooks: SessionHooks
  readonly #log: Logger
  #established = false
  #end: SessionEnd | undefined
  #writeTail: Promise<unknown> = Promise.resolve()
  #lastSent = Date.now()
  #keepalive: ReturnType<typeof setInterval> | undefined
  // sender of our chain
  #sendWindow = 1
  #cursor: number | undefined
  #limit = 0
  readonly #inflight: { seq: number; cid: CID }[] = []
  #pumping = false
  #prefetch: { from: number; read: Promise<OwnBatch> } | undefined
  // receiver of theirs
  #requested = false
  #unacked = 0
  #framesIn = 0
  readonly #queue: QueuedFrame[] = []
  #ingesting = false
  #ingestDone: Promise<void> = Promise.resolve()

  constructor(slot: PairSlot, frames: FrameStream, direction: 'inbound' | 'outbound', limits: SessionLimits, hooks: SessionHooks, log: Logger) {
    this.slot = slot
    this.frames = frames
    this.direction = direction
    this.opener = direction === 'outbound' ? slot.me : slot.counterparty
    this.#limits = limits
    this.#hooks = hooks
    this.#log = log
  }

  get established(): boolean {
    return this.#established && this.#end === undefined
  }

  get ended(): boolean {
    return this.#end !== undefined
  }

  /** The stream can still carry a session (the connection under it is alive). */
  get alive(): boolean {
    return this.#end === undefined && (this.frames.stream.status === 'open' || this.frames.stream.status === 'closing')
  }

  describe(): string {
    return `${this.direction} session ${this.id} of pair ${this.slot.describe()}`
  }

  // ---- handshake -------------------------------------------------------------------

  #hello(): HelloMessage {
    return helloMessage(this.slot.pair, this.slot.log.heads(), this.#limits.window, PAIR_PROTOCOL_VERSION)
  }

  /** Opener: send hello, read the reply. Throws DuplicateSessionError when the other side keeps its own stream. */
  async handshakeOutbound(): Promise<void> {
    await this.frames.writeMessage(this.#hello())
    const msg = await this.frames.readMessage(pairMessageSchema, 'pair hello', { idleTimeoutMs: this.#limits.helloTimeoutMs })
    if (msg.type === 'error') {
      if (msg.code === 'DuplicateSessionError') throw new DuplicateSessionError(`${this.slot.counterparty} keeps another stream for this pair`)
      throw new RemoteError(`${this.slot.counterparty} refused the session: ${msg.code}: ${msg.message}`, { code: msg.code })
    }
    if (msg.type !== 'hello') throw new UnexpectedMessageError(`expected hello, got ${msg.type}`)
    checkHello(msg, this.slot.pair.provider, this.slot.pair.consumer)
    this.remoteHello = msg
  }

  /** Acceptor: the service has read and checked the peer's hello; answer with ours. */
  async handshakeInbound(hello: HelloMessage): Promise<void> {
    this.remoteHello = hello
    await this.frames.writeMessage(this.#hello())
  }

  // ---- running -----------------------------------------------------------------

  /** Serve the session until it ends; never throws. */
  async run(): Promise<SessionEnd> {
    const hello = this.remoteHello
    if (hello === undefined) throw new Error('run() before the handshake')
    this.#established = true
    this.#sendWindow = Math.min(this.#limits.window, hello.window)
    const heldMine = hello.heads[this.slot.role]
    const theirs = hello.heads[this.slot.other]
    this.slot.noteHello(heldMine, theirs?.seq ?? 0)
    this.#checkRemoteHoldsOurs(heldMine?.seq)
    this.#keepalive = setInterval(() => this.#tick(), Math.max(50, Math.floor(this.#limits.keepaliveMs / 2)))
    this.#keepalive.unref?.()
    this.#requested = true
    void this.#send({ type: 'request', author: this.slot.counterparty, fromSeq: this.slot.heldTheirs() + 1, toSeq: null })
    try {
      for (;;) {
        const frame = await this.frames.read({ idleTimeoutMs: this.#limits.idleTimeoutMs })
        if (frame === null) {
          this.#finish({ kind: 'remote-closed' })
          break
        }
        if (this.#end !== undefined) break
        this.#dispatch(this.frames.decodeMessage(frame, pairMessageSchema, 'pair message'))
        if (this.#end !== undefined) break
      }
    } catch (err) {
      this.#fault(err)
    }
    if (this.#keepalive !== undefined) clearInterval(this.#keepalive)
    // An ingest under way finishes (it is atomic either way); its ack goes nowhere.
    await this.#ingestDone
    const end = this.#end ?? { kind: 'remote-closed' }
    if (this.frames.stream.status === 'open') await this.frames.close({ signal: AbortSignal.timeout(1_000) }).catch(() => undefined)
    return end
  }

  /** Close on our own initiative (stopping, pair removed, replaced by another stream). */
  close(reason: string, tell?: Error): void {
    if (this.#end !== undefined) return
    this.#finish({ kind: 'closed', reason })
    const frames = this.frames
    void (async () => {
      if (tell !== undefined) await this.#send(errorMessage(tell), true).catch(() => undefined)
      await frames.close({ signal: AbortSignal.timeout(1_000) }).catch(() => undefined)
      // A peer that does not close its side within a second is not waited for.
      setTimeout(() => {
        if (frames.stream.status !== 'closed') frames.abort(new Error(`session closed: ${reason}`))
      }, 1_000).unref?.()
    })()
  }

  /** New own entries are durable: push them if the peer asked and credit allows. */
  notify(): void {
    if (!this.#pumping && this.#established && this.#end === undefined) void this.#pump()
  }

  #dispatch(msg: PairMessage): void {
    switch (msg.type) {
      case 'request':
        this.#onRequest(msg)
        return
      case 'entries':
        this.#onEntries(msg)
        return
      case 'ack':
        this.#onAck(msg)
        return
      case 'heads': {
        const held = msg.heads[this.slot.role]
        if (held !== null) this.#learnHeld(held.seq, held.cid)
        this.slot.noteRemoteOwn(msg.heads[this.slot.other]?.seq ?? 0)
        return
      }
      case 'error':
        this.#log('%s: peer closes with %s: %s', this.describe(), msg.code, msg.message)
        this.#finish({ kind: 'remote-error', code: msg.code, message: msg.message })
        this.frames.abort(new RemoteError(`peer closed the session: ${msg.code}`, { code: msg.code }))
        return
      case 'hello':
        throw new UnexpectedMessageError('second hello on a pair stream')
    }
  }

  #onRequest(msg: RequestMessage): void {
    if (msg.author !== this.slot.me) throw new PairRequestError(`request names chain ${msg.author}, not ours`)
    if (msg.toSeq !== null && msg.toSeq < msg.fromSeq) throw new PairRequestError(`request range ${msg.fromSeq}..${msg.toSeq} is empty`)
    if (this.#cursor === undefined) this.#cursor = msg.fromSeq
    else if (!Number.isFinite(this.#limit) || msg.fromSeq !== this.#limit + 1) {
      throw new PairRequestError(`request from #${msg.fromSeq} does not continue the previous one`)
    }
    this.#limit = msg.toSeq ?? Number.POSITIVE_INFINITY
    // The peer asks from what it holds durably + 1: an entry acked on a replaced stream may never be acked again.
    if (msg.fromSeq > 1) this.#learnHeld(msg.fromSeq - 1)
    this.notify()
  }

  /** The peer says it holds our chain up to `seq`: believe it for the entry we hold at that seq (and `cid`, if given, must match). */
  #learnHeld(seq: number, cid?: CID): void {
    const known = this.slot.remoteHeldMine
    if (known !== null && known.seq >= seq) return
    if (seq > this.slot.ownHead()) {
      this.#checkRemoteHoldsOurs(seq)
      return
    }
    void this.slot.log.getBySeq(this.slot.me, seq).then(
      (b) => {
        if (b !== undefined && (cid === undefined || b.cid.equals(cid))) this.slot.noteRemoteHeld(seq, b.cid)
      },
      () => undefined,
    )
  }

  #onEntries(msg: EntriesMessage): void {
    if (!this.#requested) throw new FlowControlError('entries before any request')
    if (this.#unacked >= this.#limits.window) throw new FlowControlError(`more than ${this.#limits.window} unacknowledged entries frames`)
    this.#unacked++
    this.slot.counters.framesIn++
    this.#queue.push({ blocks: msg.blocks, frame: ++this.#framesIn })
    this.slot.noteRemoteOwn(msg.head)
    if (!this.#ingesting) {
      this.#ingesting = true
      this.#ingestDone = this.#ingestLoop()
    }
  }

  #onAck(msg: AckMessage): void {
    if (msg.author !== this.slot.me) throw new PairAckError(`ack names chain ${msg.author}, not ours`)
    const sent = this.#inflight[0]
    if (sent === undefined) throw new PairAckError(`ack of #${msg.seq} with nothing unacknowledged`)
    if (sent.seq !== msg.seq || !sent.cid.equals(msg.cid)) throw new PairAckError(`ack of #${msg.seq} does not match the frame sent (#${sent.seq} ${sent.cid})`)
    this.#inflight.shift()
    this.slot.noteAck(msg.seq, msg.cid)
    this.#hooks.acked(this)
    this.notify()
  }

  async #ingestLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#end === undefined) {
        const group = [this.#queue.shift()!]
        let n = group[0]!.blocks.length
        while (this.#queue.length > 0 && n + this.#queue[0]!.blocks.length <= this.#limits.maxIngestEntries) {
          const f = this.#queue.shift()!
          group.push(f)
          n += f.blocks.length
        }
        const lasts = group.map((f) => decodeEntryFast(f.blocks[f.blocks.length - 1]!))
        const last = lasts[lasts.length - 1]!
        const blocks = group.length === 1 ? group[0]!.blocks : group.flatMap((f) => f.blocks)
        const meta = this.slot.ingestMeta(this.id, group[group.length - 1]!.frame, { seq: last.entry.seq, cid: last.cid })
        const registered = meta.length > 1
        const addrs = this.slot.addrs
        const validate = this.slot.validator()
        const result = await this.slot.log.ingest(blocks, validate === undefined ? { meta } : { meta, validate: strictValidator(validate) })
        if (registered) this.slot.markRegistered(addrs)
        this.slot.counters.entriesIn += result.added.length
        for (const l of lasts) {
          this.#unacked--
          this.slot.counters.acksOut++
          void this.#send(ackMessage(l.entry.author, l.entry.seq, l.cid))
        }
        this.#hooks.ingested(this, result.added.length, { registered })
        this.slot.changed()
      }
    } catch (err) {
      this.#fault(err)
    } finally {
      this.#ingesting = false
    }
  }

  async #pump(): Promise<void> {
    this.#pumping = true
    try {
      while (this.#end === undefined && this.#cursor !== undefined && this.#inflight.length < this.#sendWindow) {
        const head = this.slot.ownHead()
        const to = Math.min(head, this.#limit)
        if (this.#cursor > to) break
        const ahead = this.#prefetch
        this.#prefetch = undefined
        const batch = ahead !== undefined && ahead.from === this.#cursor ? await ahead.read : await this.#read(this.#cursor, to)
        if (this.#end !== undefined || batch.length === 0) break
        const last = batch[batch.length - 1]!
        this.#inflight.push({ seq: last.seq, cid: last.cid })
        this.#cursor = last.seq + 1
        // Catch-up: read the next batch from the store while this one is on the wire and credit comes back.
        if (this.#cursor <= to) this.#prefetch = { from: this.#cursor, read: this.#read(this.#cursor, to) }
        this.slot.counters.framesOut++
        this.slot.counters.entriesOut += batch.length
        await this.#send({ type: 'entries', blocks: batch.map((b) => b.bytes), head })
      }
    } catch (err) {
      this.#fault(err)
    } finally {
      this.#pumping = false
    }
  }

  #read(from: number, to: number): Promise<OwnBatch> {
    const read = this.slot.readOwn(from, to, this.#limits.maxBatchEntries, this.#limits.maxFrameBytes - 4096)
    read.catch(() => undefined) // a prefetch nobody awaits must not become an unhandled rejection
    return read
  }

  #tick(): void {
    if (this.#end !== undefined) return
    if (Date.now() - this.#lastSent >= this.#limits.keepaliveMs / 2) void this.#send({ type: 'heads', heads: wireHeads(this.slot.log.heads()) })
  }

  /** Frames leave in call order; each waits for the previous to drain. A failed write ends the session. */
  #send(msg: PairMessage, evenIfEnded = false): Promise<void> {
    const run = this.#writeTail.then(async () => {
      if (this.#end !== undefined && !evenIfEnded) return
      this.#lastSent = Date.now()
      await this.frames.writeMessage(msg)
    })
    this.#writeTail = run.catch(() => undefined)
    return run.catch((err: unknown) => {
      if (!evenIfEnded) this.#fault(err)
    })
  }

  #checkRemoteHoldsOurs(heldSeq: number | undefined): void {
    if (heldSeq === undefined) return
    const mine = this.slot.ownHead()
    if (heldSeq > mine) {
      // Only possible if our store lost entries the peer had acknowledged: appending now would fork our chain.
      this.#log.error('%s: peer holds our chain up to #%d, beyond our head #%d', this.describe(), heldSeq, mine)
      this.slot.lastError = { code: 'RemoteAheadError', message: `peer holds our chain to #${heldSeq}, beyond our head #${mine}`, at: Date.now() }
    }
  }

  #finish(end: SessionEnd): void {
    if (this.#end !== undefined) return
    this.#end = end
    if (this.#keepalive !== undefined) clearInterval(this.#keepalive)
    this.#hooks.ended(this, end)
  }

  /** End the session for `err`: tell the peer why (best effort) and cut the stream. */
  #fault(err: unknown): void {
    if (this.#end !== undefined) return
    const error = err instanceof Error ? err : new Error(String(err))
    const blame = blameOf(error)
    this.#finish({ kind: 'fault', error, blame })
    if (blame === 'link') {
      this.frames.abort(error)
      return
    }
    this.#log('%s: cutting off: %s: %s', this.describe(), error.name, error.message)
    // The peer gets the reason if it still reads; the stream is cut either way.
    const frames = this.frames
    // A fault of ours is told without its details (they name local paths); the peer only needs to know it was not its fault.
    const told = blame === 'local' ? new PairLocalFaultError('the peer had a local fault and will resume when it is fixed') : error
    void this.#send(errorMessage(told), true).finally(() => frames.abort(error))
    setTimeout(() => frames.abort(error), 500).unref?.()
  }
}

/** A hello must be for this pair and speak our version. */
export function checkHello(hello: HelloMessage, provider: PeerIdString, consumer: PeerIdString): void {
  if (hello.v !== PAIR_PROTOCOL_VERSION) throw new PairHelloError(`peer speaks pair protocol v${hello.v}, we speak v${PAIR_PROTOCOL_VERSION}`)
  if (hello.pair.provider !== provider || hello.pair.consumer !== consumer) throw new PairHelloError('hello names another pair')
}

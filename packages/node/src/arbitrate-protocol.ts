import { setMaxListeners } from 'node:events'
import type { DialTarget, Logger } from '@libp2p/interface'
import { type PeerIdString, encode, isPeerId } from '@tally/core'
import { type EvidenceRequest, type Ruling, decodeEvidenceRequest, decodeRuling } from '@tally/deal'
import { pairIdOf } from '@tally/lineage'
import {
  ARBITRATE_ANSWER_MAX_BYTES,
  ARBITRATE_CASE_RATE,
  ARBITRATE_CASE_TIMEOUT_MS,
  ARBITRATE_CHUNK_BYTES,
  ARBITRATE_CHUNK_FRAME_BYTES,
  ARBITRATE_CHUNK_TIMEOUT_MS,
  ARBITRATE_HEADER_MAX_BYTES,
  ARBITRATE_HEADER_TIMEOUT_MS,
  ARBITRATE_MAX_CASES_PER_PEER,
  ARBITRATE_MAX_CONCURRENT_CASES,
  ARBITRATE_MAX_RECORD_BYTES,
  ARBITRATE_MAX_STREAMS_PER_CONNECTION,
  ARBITRATE_PROTOCOL,
  ARBITRATE_PROTOCOL_VERSION,
  ARBITRATE_STREAM_RATE,
  ARBITRATE_UPLOAD_TIMEOUT_MS,
  ARBITRATE_WINDOW_CHUNKS,
} from './arbitrate-constants.ts'
import { CaseFlowError, CaseRefusedError, InvalidCaseAnswerError } from './arbitrate-errors.ts'
import {
  type CaseAnswer,
  type CaseRequest,
  type ServerMessage,
  caseHeader,
  caseHeaderSchema,
  caseIdOf,
  chunkSchema,
  errorAnswer,
  serverMessageSchema,
} from './arbitrate-messages.ts'
import { DEFAULT_FRAME_TIMEOUT_MS } from './constants.ts'
import { FrameTimeoutError, FrameTooLargeError, UnexpectedMessageError } from './errors.ts'
import type { FrameStream } from './frames.ts'
import { type ProtocolHandle, type ProtocolHost, handleProtocol, openFrameStream } from './protocol.ts'
import { PeerRateLimiter, type RateLimit } from './rate-limit.ts'

/** One case as the server hands it to the arbiter: who sent it, what, and when it arrived. */
export interface ArbitrationCase {
  /** caseIdOf(pair, deal, dispute, appeal). */
  id: string
  remotePeer: PeerIdString
  request: CaseRequest
  /** When the whole record had arrived (the server's clock). */
  receivedAt: number
}

/** Decides a case. Throwing answers `internal`; `signal` aborts when the server stops. */
export type CaseHandler = (c: ArbitrationCase, signal: AbortSignal) => Promise<CaseAnswer>

export interface ArbitrationServerOptions {
  handler: CaseHandler
  log: Logger
  /** Largest record accepted. Default ARBITRATE_MAX_RECORD_BYTES (64 MiB). */
  maxRecordBytes?: number
  /** Cases decided at once; more are refused with `busy`. Default 4. */
  maxConcurrentCases?: number
  /** Cases per remote peer; excess are refused with `rate-limited`. Default 0.5/s, burst 10. */
  caseRate?: RateLimit
  /** Chunks a client may send ahead of credit. Default 8. */
  windowChunks?: number
  /** Whole-record upload bound; a slower client is cut off. Default 120 s. */
  uploadTimeoutMs?: number
  /** Silence allowed between chunks; a client that stops sending is cut off. Default 10 s. */
  chunkTimeoutMs?: number
  /** Cases one peer may have in progress; more are refused with `busy`. Default 2. */
  maxCasesPerPeer?: number
  now?: () => number
}

export interface ArbitrationStats {
  /** Case headers read. */
  received: number
  /** Answers sent, by `ruling`, `evidence-request` or the error code. */
  answered: Record<string, number>
  /** Streams cut off, by error name (FrameTooLargeError, CaseFlowError, FrameTimeoutError …). */
  cutOff: Record<string, number>
}

/**
 * Serves /tally/arbitrate/1.0.0: reads a case header, refuses at once what
 * it can (version, rate, size, load), takes the record in chunks under
 * credit-based flow control, hands the complete case to `handler` and
 * sends its answer. One case per stream.
 */
export class ArbitrationServer {
  readonly stats: ArbitrationStats = { received: 0, answered: {}, cutOff: {} }
  readonly #host: ProtocolHost
  readonly #opts: Required<Omit<ArbitrationServerOptions, 'caseRate'>>
  readonly #rate: PeerRateLimiter
  #active = 0
  readonly #activeByPeer = new Map<PeerIdString, number>()
  #handle: ProtocolHandle | undefined

  constructor(host: ProtocolHost, opts: ArbitrationServerOptions) {
    this.#host = host
    this.#opts = {
      handler: opts.handler,
      log: opts.log,
      maxRecordBytes: opts.maxRecordBytes ?? ARBITRATE_MAX_RECORD_BYTES,
      maxConcurrentCases: opts.maxConcurrentCases ?? ARBITRATE_MAX_CONCURRENT_CASES,
      windowChunks: opts.windowChunks ?? ARBITRATE_WINDOW_CHUNKS,
      uploadTimeoutMs: opts.uploadTimeoutMs ?? ARBITRATE_UPLOAD_TIMEOUT_MS,
      chunkTimeoutMs: opts.chunkTimeoutMs ?? ARBITRATE_CHUNK_TIMEOUT_MS,
      maxCasesPerPeer: opts.maxCasesPerPeer ?? ARBITRATE_MAX_CASES_PER_PEER,
      now: opts.now ?? Date.now,
    }
    if (this.#opts.windowChunks < 1 || this.#opts.windowChunks > 8 * ARBITRATE_WINDOW_CHUNKS) throw new RangeError(`invalid window ${this.#opts.windowChunks}`)
    this.#rate = new PeerRateLimiter(opts.caseRate ?? ARBITRATE_CASE_RATE)
  }

  /** Cases being received or decided now. */
  get active(): number {
    return this.#active
  }

  async start(): Promise<void> {
    if (this.#handle !== undefined) return
    const window = this.#opts.windowChunks
    this.#handle = await handleProtocol(this.#host, ARBITRATE_PROTOCOL, (ctx) => this.#serve(ctx.remotePeer.toString(), ctx.frames, ctx.signal), {
      frames: {
        maxFrameBytes: ARBITRATE_CHUNK_FRAME_BYTES,
        maxWriteFrameBytes: ARBITRATE_ANSWER_MAX_BYTES,
        frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
        // The client keeps to its credit, so it never has more than the window (plus the header) buffered here.
        maxBufferedBytes: (window + 1) * (ARBITRATE_CHUNK_FRAME_BYTES + 8),
      },
      streamRate: ARBITRATE_STREAM_RATE,
      maxInboundStreams: ARBITRATE_MAX_STREAMS_PER_CONNECTION,
      maxOutboundStreams: ARBITRATE_MAX_STREAMS_PER_CONNECTION,
      log: this.#opts.log,
      onCutOff: (err) => {
        this.stats.cutOff[err.name] = (this.stats.cutOff[err.name] ?? 0) + 1
      },
    })
  }

  async stop(): Promise<void> {
    const handle = this.#handle
    this.#handle = undefined
    await handle?.close()
  }

  async #serve(peer: PeerIdString, frames: FrameStream, signal: AbortSignal): Promise<void> {
    const raw = await frames.readRequired('case header', { idleTimeoutMs: ARBITRATE_HEADER_TIMEOUT_MS })
    if (raw.byteLength > ARBITRATE_HEADER_MAX_BYTES) {
      throw new FrameTooLargeError(`case header of ${raw.byteLength} bytes exceeds ${ARBITRATE_HEADER_MAX_BYTES}`)
    }
    const header = frames.decodeMessage(raw, caseHeaderSchema, 'case header')
    this.stats.received++
    const id = caseIdOf(header.pair, header.deal, header.dispute, header.appeal)
    const refuse = (answer: CaseAnswer) => this.#answer(frames, answer)
    if (header.v !== ARBITRATE_PROTOCOL_VERSION) {
      return refuse(errorAnswer('bad-request', `protocol version ${header.v} is not supported (this arbiter speaks ${ARBITRATE_PROTOCOL_VERSION})`, id))
    }
    if (!this.#rate.take(peer)) return refuse(errorAnswer('rate-limited', `more than ${this.#rate.limit.perSecond} cases/s from ${peer}; retry later`, id))
    if (header.size > this.#opts.maxRecordBytes) {
      return refuse(errorAnswer('too-large', `record of ${header.size} bytes exceeds this arbiter's limit of ${this.#opts.maxRecordBytes}`, id))
    }
    if (this.#active >= this.#opts.maxConcurrentCases) {
      return refuse(errorAnswer('busy', `${this.#active} cases in progress; retry later`, id))
    }
    const mine = this.#activeByPeer.get(peer) ?? 0
    if (mine >= this.#opts.maxCasesPerPeer) {
      return refuse(errorAnswer('busy', `${mine} case(s) from ${peer} in progress; submit one after the other`, id))
    }
    this.#active++
    this.#activeByPeer.set(peer, mine + 1)
    try {
      const record = await this.#receive(frames, header.size, signal)
      const c: ArbitrationCase = {
        id,
        remotePeer: peer,
        request: { pair: header.pair, deal: header.deal, dispute: header.dispute, appeal: header.appeal, record },
        receivedAt: this.#opts.now(),
      }
      let answer: CaseAnswer
      try {
        answer = await this.#opts.handler(c, signal)
      } catch (err) {
        this.#opts.log.error('deciding case %s failed: %s', id, (err as Error).message)
        answer = errorAnswer('internal', 'the arbiter failed to decide this case', id)
      }
      await this.#answer(frames, answer)
    } finally {
      this.#active--
      const left = (this.#activeByPeer.get(peer) ?? 1) - 1
      if (left > 0) this.#activeByPeer.set(peer, left)
      else this.#activeByPeer.delete(peer)
    }
  }

  async #receive(frames: FrameStream, size: number, signal: AbortSignal): Promise<Uint8Array> {
    const window = this.#opts.windowChunks
    const upload = AbortSignal.any([signal, AbortSignal.timeout(this.#opts.uploadTimeoutMs)])
    setMaxListeners(Infinity, upload)
    await frames.writeMessage({ type: 'ready', window, chunkBytes: ARBITRATE_CHUNK_BYTES }, { signal: upload })
    const record = new Uint8Array(size)
    let got = 0
    let consumed = 0
    // A client that ignores its credit overflows the stream's buffer (window + 1 frames) and is cut off there.
    while (got < size) {
      const { data } = await frames.readMessage(chunkSchema, 'record chunk', { signal: upload, idleTimeoutMs: this.#opts.chunkTimeoutMs })
      const n = data.byteLength
      const last = got + n === size
      if (n === 0 || n > ARBITRATE_CHUNK_BYTES || got + n > size || (!last && n !== ARBITRATE_CHUNK_BYTES)) {
        throw new CaseFlowError(`chunk of ${n} bytes at offset ${got} does not fit a ${size}-byte record in ${ARBITRATE_CHUNK_BYTES}-byte chunks`)
      }
      record.set(data, got)
      got += n
      consumed++
      // Grant credit in halves of the window: fewer frames back, the pipe never runs dry.
      if (got < size && consumed * 2 >= window) {
        await frames.writeMessage({ type: 'credit', chunks: consumed }, { signal: upload })
        consumed = 0
      }
    }
    return record
  }

  async #answer(frames: FrameStream, answer: CaseAnswer): Promise<void> {
    let bytes = encode(answer)
    if (bytes.byteLength > ARBITRATE_ANSWER_MAX_BYTES) {
      this.#opts.log.error('answer of %d bytes exceeds %d', bytes.byteLength, ARBITRATE_ANSWER_MAX_BYTES)
      answer = errorAnswer('internal', 'the answer is too large to send', answer.caseId)
      bytes = encode(answer)
    }
    const key = answer.type === 'error' ? answer.code : answer.type
    this.stats.answered[key] = (this.stats.answered[key] ?? 0) + 1
    await frames.write(bytes)
  }
}

export interface SubmitCaseOptions {
  /** Whole exchange, dial included. Default 180 s. */
  timeoutMs?: number
  signal?: AbortSignal
  /** The peer the answer must be signed by. Default: the peer named by `target` (a PeerId or a multiaddr ending in /p2p/<id>). */
  arbiter?: PeerIdString
  log?: Logger
}

/** A verified answer: a ruling or an evidence request signed by the arbiter, for the dispute submitted. */
export type CaseOutcome = { type: 'ruling'; caseId: string; ruling: Ruling } | { type: 'evidence-request'; caseId: string; request: EvidenceRequest }

/**
 * Submit a case to the arbiter at `target` (from a TallyNode or its
 * libp2p) and wait for its answer. The
 * record goes in chunks under the server's credit. Returns a ruling or an
 * evidence request whose signature, signer and subject are checked. Throws
 * `CaseRefusedError` (with the arbiter's `code`), `InvalidCaseAnswerError`,
 * `PeerUnreachableError`, `FrameTimeoutError`, `StreamEndedError`.
 */
export async function submitCase(
  node: ProtocolHost | { libp2p: ProtocolHost },
  target: DialTarget,
  request: CaseRequest,
  opts: SubmitCaseOptions = {},
): Promise<CaseOutcome> {
  const host = 'libp2p' in node ? node.libp2p : node
  const size = request.record.byteLength
  if (size === 0) throw new CaseRefusedError('the record is empty', 'bad-request')
  const timeoutMs = opts.timeoutMs ?? ARBITRATE_CASE_TIMEOUT_MS
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
  setMaxListeners(Infinity, signal)
  const frames = await openFrameStream(host, target, ARBITRATE_PROTOCOL, {
    signal,
    frames: {
      maxFrameBytes: ARBITRATE_ANSWER_MAX_BYTES,
      maxWriteFrameBytes: ARBITRATE_CHUNK_FRAME_BYTES,
      frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
      // Verifying and replaying a large record takes the arbiter a while; the overall timeout bounds the wait.
      idleTimeoutMs: timeoutMs,
    },
    ...(opts.log === undefined ? {} : { log: opts.log }),
  })
  const read = (): Promise<ServerMessage> => frames.readMessage(serverMessageSchema, 'arbitrate answer', { signal })
  try {
    await frames.writeMessage(caseHeader({ ...request, size }, ARBITRATE_PROTOCOL_VERSION), { signal })
    let msg = await read()
    if (msg.type === 'ready') {
      let credit = msg.window
      const step = msg.chunkBytes
      let early: ServerMessage | undefined
      for (let off = 0; off < size && early === undefined; off += step) {
        while (credit === 0 && early === undefined) {
          const m = await read()
          if (m.type === 'credit') credit += m.chunks
          else early = m
        }
        if (early !== undefined) break
        await frames.writeMessage({ type: 'chunk', data: request.record.subarray(off, Math.min(size, off + step)) }, { signal })
        credit--
      }
      msg = early ?? (await read())
      while (msg.type === 'credit') msg = await read()
    }
    let outcome: CaseOutcome
    try {
      outcome = checkAnswer(msg, request, opts.arbiter ?? peerOfTarget(target))
    } finally {
      // The exchange itself completed: end the stream cleanly whatever the answer says.
      await frames.close({ signal })
    }
    return outcome
  } catch (err) {
    if (err instanceof CaseRefusedError || err instanceof InvalidCaseAnswerError) throw err
    if (timeout.aborted && opts.signal?.aborted !== true) {
      const timedOut = new FrameTimeoutError(`no ${ARBITRATE_PROTOCOL} answer within ${timeoutMs} ms`, { timeoutMs }, { cause: err })
      frames.abort(timedOut)
      throw timedOut
    }
    frames.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

function checkAnswer(msg: ServerMessage, request: CaseRequest, arbiter: PeerIdString | undefined): CaseOutcome {
  const id = caseIdOf(request.pair, request.deal, request.dispute, request.appeal)
  if (msg.type === 'error') throw new CaseRefusedError(`the arbiter refused the case: ${msg.code}: ${msg.message}`, msg.code, { caseId: id })
  if (msg.type === 'ready' || msg.type === 'credit') throw new UnexpectedMessageError(`unexpected ${msg.type} in place of an answer`)
  if (msg.caseId !== id) throw new InvalidCaseAnswerError(`the answer is for case ${msg.caseId}, not ${id}`)
  const doc = (() => {
    try {
      return msg.type === 'ruling' ? decodeRuling(msg.ruling) : decodeEvidenceRequest(msg.request)
    } catch (err) {
      throw new InvalidCaseAnswerError(`the arbiter's ${msg.type} does not verify: ${(err as Error).message}`, {}, { cause: err })
    }
  })()
  if (arbiter !== undefined && doc.by !== arbiter) throw new InvalidCaseAnswerError(`the ${msg.type} is signed by ${doc.by}, not the arbiter ${arbiter}`)
  const b = doc.body
  if (!b.pair.equals(pairIdOf(request.pair)) || !b.deal.equals(request.deal) || !b.dispute.equals(request.dispute)) {
    throw new InvalidCaseAnswerError(`the ${msg.type} is not about the pair, deal and dispute submitted`)
  }
  if (msg.type === 'ruling') {
    const ruling = doc as Ruling
    if ((ruling.body.appealOf !== null) !== request.appeal) {
      throw new InvalidCaseAnswerError(
        request.appeal ? 'an appeal was answered with a first-instance ruling' : 'a first-instance case was answered with an appeal ruling',
      )
    }
    return { type: 'ruling', caseId: id, ruling }
  }
  return { type: 'evidence-request', caseId: id, request: doc as EvidenceRequest }
}

function peerOfTarget(target: DialTarget): PeerIdString | undefined {
  if (Array.isArray(target)) {
    for (const t of target) {
      const p = peerOfTarget(t)
      if (p !== undefined) return p
    }
    return undefined
  }
  if ('getComponents' in target) {
    const p2p = target.getComponents().findLast((c) => c.name === 'p2p')?.value
    return p2p !== undefined && isPeerId(p2p) ? p2p : undefined
  }
  const s = target.toString()
  return isPeerId(s) ? s : undefined
}

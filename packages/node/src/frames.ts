import { decode, DecodeError, encode, SchemaError, parseWith } from '@tally/core'
import type { AbortOptions, Logger, Stream } from '@libp2p/interface'
import { byteStream, type ByteStream } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { z } from 'zod'
import { DEFAULT_BUFFERED_FRAMES, DEFAULT_FRAME_TIMEOUT_MS, MIN_BUFFERED_BYTES } from './constants.ts'
import { FrameDecodeError, FrameTimeoutError, FrameTooLargeError, RateLimitedError, StreamEndedError, UnexpectedMessageError } from './errors.ts'
import type { PeerRateLimiter } from './rate-limit.ts'

export interface FrameStreamOptions {
  /** Largest payload accepted in one frame; a longer length prefix aborts the stream. */
  maxFrameBytes: number
  /** Largest payload we send in one frame; default `maxFrameBytes`. */
  maxWriteFrameBytes?: number
  /** Time allowed from a frame's first byte to its last (and for a write to drain). Default 10 s. */
  frameTimeoutMs?: number
  /**
   * Time allowed waiting for the first byte of the next frame. Default: no
   * limit (long-lived sessions idle legitimately); request/response
   * protocols pass their reply timeout.
   */
  idleTimeoutMs?: number
  /** Bytes buffered ahead of the reader; default 4 frames, at least 256 KiB. Overflow aborts the stream (`FrameTooLargeError`). */
  maxBufferedBytes?: number
  /**
   * Inbound frame allowance shared per peer: a frame beyond it aborts the
   * stream with `RateLimitedError`. yamux in libp2p 3 acknowledges data as
   * it arrives, so reading slowly gives no backpressure; protocols that
   * stream many frames need credit-based flow control on top.
   */
  frameRate?: { limiter: PeerRateLimiter; key: string }
  log?: Logger
}

export interface ReadOptions extends AbortOptions {
  /** Overrides the stream's idle timeout for this read. */
  idleTimeoutMs?: number
}

// Byte length of the varint that encodes `n` (7 bits per byte).
function varintLength(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    len++
  }
  return len
}

function encodeVarint(n: number): Uint8Array {
  const out = new Uint8Array(varintLength(n))
  let i = 0
  while (n >= 0x80) {
    out[i++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  out[i] = n
  return out
}

function withSignal(signal: AbortSignal | undefined): AbortOptions {
  return signal === undefined ? {} : { signal }
}

function isNamed(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name)
}

/**
 * Length-prefixed frames (unsigned varint length, then payload) on a libp2p
 * stream, with a size bound, a per-frame deadline, an optional idle
 * deadline and a typed error for every way a peer can misbehave. Any read
 * or decode error aborts the stream with that error as the logged reason:
 * a peer that sends garbage, oversized frames or stalls mid-frame is cut off.
 */
export class FrameStream {
  readonly stream: Stream
  readonly maxFrameBytes: number
  readonly maxWriteFrameBytes: number
  readonly #bytes: ByteStream<Stream>
  readonly #frameTimeoutMs: number
  readonly #idleTimeoutMs: number | undefined
  readonly #maxLengthBytes: number
  readonly #rate: FrameStreamOptions['frameRate']
  readonly #log: Logger

  constructor(stream: Stream, opts: FrameStreamOptions) {
    if (!Number.isSafeInteger(opts.maxFrameBytes) || opts.maxFrameBytes < 1) throw new RangeError(`invalid maxFrameBytes ${opts.maxFrameBytes}`)
    this.stream = stream
    this.maxFrameBytes = opts.maxFrameBytes
    this.maxWriteFrameBytes = opts.maxWriteFrameBytes ?? opts.maxFrameBytes
    this.#frameTimeoutMs = opts.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS
    this.#idleTimeoutMs = opts.idleTimeoutMs
    this.#maxLengthBytes = varintLength(opts.maxFrameBytes)
    this.#rate = opts.frameRate
    this.#log = opts.log ?? stream.log
    const maxBufferSize = opts.maxBufferedBytes ?? Math.max(MIN_BUFFERED_BYTES, DEFAULT_BUFFERED_FRAMES * (opts.maxFrameBytes + this.#maxLengthBytes))
    this.#bytes = byteStream(stream, { maxBufferSize })
  }

  /** Next frame's payload, or null when the remote closed cleanly between frames. */
  async read(options: ReadOptions = {}): Promise<Uint8Array | null> {
    const idleMs = options.idleTimeoutMs ?? this.#idleTimeoutMs
    try {
      const first = await this.#readFirstByte(idleMs, options.signal)
      if (first === null) return null
      // The rest of the frame shares one deadline from its first byte.
      const deadline = this.#deadline(this.#frameTimeoutMs, 'reading a frame', options.signal)
      try {
        let length = 0
        let scale = 1
        let byte = first
        for (let i = 0; ; i++) {
          length += (byte & 0x7f) * scale
          if ((byte & 0x80) === 0) break
          if (i + 1 >= this.#maxLengthBytes) {
            throw new FrameTooLargeError(`frame length prefix exceeds ${this.#maxLengthBytes} bytes (limit ${this.maxFrameBytes} bytes)`)
          }
          scale *= 0x80
          byte = (await this.#readByte(deadline.signal, false)) ?? 0
        }
        if (length > this.maxFrameBytes) {
          throw new FrameTooLargeError(`frame of ${length} bytes exceeds limit ${this.maxFrameBytes}`, { size: length, limit: this.maxFrameBytes })
        }
        if (this.#rate !== undefined && !this.#rate.limiter.take(this.#rate.key)) {
          throw new RateLimitedError(`peer ${this.#rate.key} exceeded ${this.#rate.limiter.limit.perSecond} frames/s`)
        }
        if (length === 0) return new Uint8Array(0)
        const list = await this.#bytes.read({ bytes: length, ...withSignal(deadline.signal) })
        return list.subarray()
      } finally {
        deadline.clear()
      }
    } catch (err) {
      throw this.#fail(this.#translate(err, options.signal))
    }
  }

  /** Next frame, which must be present: a clean end of stream is `StreamEndedError`. */
  async readRequired(what: string, options: ReadOptions = {}): Promise<Uint8Array> {
    const frame = await this.read(options)
    if (frame === null) throw this.#fail(new StreamEndedError(`stream ended before ${what}`))
    return frame
  }

  /**
   * Next frame decoded as DAG-CBOR and checked with `schema`. Malformed
   * bytes or a wrong shape raise `FrameDecodeError`; a well-formed map
   * whose `type` the schema does not know raises `UnexpectedMessageError`.
   * Either aborts the stream.
   */
  async readMessage<T>(schema: z.ZodType<T>, what: string, options: ReadOptions = {}): Promise<T> {
    const frame = await this.readRequired(what, options)
    return this.decodeMessage(frame, schema, what)
  }

  /** Decode one frame's payload as in `readMessage`; aborts the stream on failure. */
  decodeMessage<T>(frame: Uint8Array, schema: z.ZodType<T>, what: string): T {
    let value: unknown
    try {
      value = decode(frame, this.maxFrameBytes)
      return parseWith(schema, value, what)
    } catch (err) {
      if (err instanceof SchemaError && value !== null && typeof value === 'object' && err.details['path'] === 'type') {
        // Not String(): on a nested array it recurses once per level, and a peer's deeply nested `type` overflows the stack.
        const t = (value as { type?: unknown }).type
        const type = typeof t === 'string' ? t.slice(0, 40) : typeof t
        throw this.#fail(new UnexpectedMessageError(`unexpected ${what} type ${JSON.stringify(type)}`, { type }, { cause: err }))
      }
      if (err instanceof DecodeError || err instanceof SchemaError) {
        throw this.#fail(new FrameDecodeError(`garbage ${what}: ${err.message}`, {}, { cause: err }))
      }
      throw this.#fail(err)
    }
  }

  /** Write one frame; waits for the stream to drain, at most the frame timeout. */
  async write(payload: Uint8Array, options: AbortOptions = {}): Promise<void> {
    if (payload.byteLength > this.maxWriteFrameBytes) {
      throw new FrameTooLargeError(`refusing to send a frame of ${payload.byteLength} bytes (limit ${this.maxWriteFrameBytes})`)
    }
    const deadline = this.#deadline(this.#frameTimeoutMs, 'sending a frame', options.signal)
    try {
      await this.#bytes.write(new Uint8ArrayList(encodeVarint(payload.byteLength), payload), withSignal(deadline.signal))
    } catch (err) {
      throw this.#fail(this.#translate(err, options.signal))
    } finally {
      deadline.clear()
    }
  }

  /** Encode `message` as DAG-CBOR and write it as one frame. */
  async writeMessage(message: unknown, options: AbortOptions = {}): Promise<void> {
    await this.write(encode(message), options)
  }

  /** Half-close our side; the peer sees a clean end of stream. */
  async close(options: AbortOptions = {}): Promise<void> {
    try {
      await this.stream.close(options)
    } catch (err) {
      this.stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Cut the stream off, logging why. */
  abort(reason: Error): void {
    this.#fail(reason)
  }

  #fail<E>(err: E): E {
    const reason = err instanceof Error ? err : new Error(String(err))
    if (this.stream.status === 'open' || this.stream.status === 'closing') {
      this.#log('cutting off stream %s (%s) from %s: %s: %s', this.stream.id, this.stream.protocol, this.stream.direction, reason.name, reason.message)
      this.stream.abort(reason)
    }
    return err
  }

  #translate(err: unknown, callerSignal: AbortSignal | undefined): unknown {
    if (err instanceof FrameTimeoutError || err instanceof FrameTooLargeError || err instanceof RateLimitedError) return err
    if (callerSignal?.aborted === true) return err
    if (isNamed(err, 'UnexpectedEOFError')) return new StreamEndedError('stream ended in the middle of a frame', {}, { cause: err })
    if (isNamed(err, 'StreamBufferError'))
      return new FrameTooLargeError(`peer sent more than ${this.maxFrameBytes} bytes ahead of the reader`, {}, { cause: err })
    if (isNamed(err, 'StreamResetError', 'StreamAbortedError', 'StreamClosedError', 'StreamStateError', 'UnwrappedError')) {
      return new StreamEndedError(`stream closed: ${(err as Error).message}`, {}, { cause: err })
    }
    return err
  }

  #deadline(ms: number | undefined, doing: string, callerSignal: AbortSignal | undefined): { signal: AbortSignal | undefined; clear(): void } {
    if (ms === undefined) return { signal: callerSignal, clear() {} }
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new FrameTimeoutError(`peer stalled ${doing} for ${ms} ms`, { timeoutMs: ms })), ms)
    const signal = callerSignal === undefined ? controller.signal : AbortSignal.any([callerSignal, controller.signal])
    return { signal, clear: () => clearTimeout(timer) }
  }

  async #readFirstByte(ms: number | undefined, callerSignal: AbortSignal | undefined): Promise<number | null> {
    const deadline = this.#deadline(ms, 'waiting for a frame', callerSignal)
    try {
      return await this.#readByte(deadline.signal, true)
    } finally {
      deadline.clear()
    }
  }

  async #readByte(signal: AbortSignal | undefined, eofOk: boolean): Promise<number | null> {
    let list: Uint8ArrayList
    try {
      list = await this.#bytes.read({ bytes: 1, ...withSignal(signal) })
    } catch (err) {
      // A clean close before the first byte of a frame is the normal end of a session.
      if (eofOk && isNamed(err, 'UnexpectedEOFError')) return null
      throw err
    }
    return list.get(0)
  }
}

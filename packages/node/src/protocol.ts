import { setMaxListeners } from 'node:events'
import type { AbortOptions, Connection, DialTarget, Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import { DEFAULT_REPLY_TIMEOUT_MS, REQUEST_CLOSE_GRACE_MS } from './constants.ts'
import { FrameTimeoutError, PeerUnreachableError, RateLimitedError } from './errors.ts'
import { FrameStream, type FrameStreamOptions } from './frames.ts'
import { PeerRateLimiter, type RateLimit } from './rate-limit.ts'

/** What our protocol helpers need from a libp2p node. */
export type ProtocolHost = Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>

export interface InboundContext {
  remotePeer: PeerId
  connection: Connection
  frames: FrameStream
  /** Aborted when the protocol handle closes (node stopping). */
  signal: AbortSignal
}

export interface HandleProtocolOptions {
  /** Frame limits for every inbound stream of this protocol. */
  frames: Omit<FrameStreamOptions, 'frameRate' | 'log'>
  /** New streams per remote peer; excess streams are aborted with `RateLimitedError` before reading a byte. */
  streamRate?: RateLimit
  /** Inbound frames per remote peer across all its streams of this protocol. */
  frameRate?: RateLimit
  /** Concurrent streams of this protocol per connection (libp2p enforces it at negotiation). */
  maxInboundStreams?: number
  maxOutboundStreams?: number
  log: Logger
  /** Told of every stream cut off (after the log line): metrics, tests. */
  onCutOff?: (err: Error, peer: PeerId) => void
}

export interface ProtocolHandle {
  readonly protocol: string
  /** Streams being served right now. */
  readonly active: number
  /** Stop accepting streams, abort those in flight and wait for their handlers. */
  close(): Promise<void>
}

/**
 * Serve `protocol`: each inbound stream is rate-checked per peer, wrapped in
 * a `FrameStream` and handed to `handler`. A handler that throws has its
 * stream aborted with the error logged; one that returns has its stream
 * closed. Errors never escape to libp2p, so one bad peer never disturbs
 * the others.
 */
export async function handleProtocol(
  host: ProtocolHost,
  protocol: string,
  handler: (ctx: InboundContext) => Promise<void>,
  opts: HandleProtocolOptions,
): Promise<ProtocolHandle> {
  const log = opts.log
  const streamLimiter = opts.streamRate === undefined ? undefined : new PeerRateLimiter(opts.streamRate)
  const frameLimiter = opts.frameRate === undefined ? undefined : new PeerRateLimiter(opts.frameRate)
  const controller = new AbortController()
  const active = new Map<Stream, Promise<void>>()

  const serve = async (stream: Stream, connection: Connection): Promise<void> => {
    const peer = connection.remotePeer.toString()
    if (controller.signal.aborted) {
      stream.abort(new Error('protocol handler closed'))
      return
    }
    if (streamLimiter !== undefined && !streamLimiter.take(peer)) {
      const err = new RateLimitedError(`peer ${peer} opened ${protocol} streams faster than ${streamLimiter.limit.perSecond}/s`)
      log('cutting off stream %s from %s: %s', stream.id, peer, err.message)
      stream.abort(err)
      opts.onCutOff?.(err, connection.remotePeer)
      return
    }
    const frames = new FrameStream(stream, {
      ...opts.frames,
      ...(frameLimiter === undefined ? {} : { frameRate: { limiter: frameLimiter, key: peer } }),
      log,
    })
    try {
      await handler({ remotePeer: connection.remotePeer, connection, frames, signal: controller.signal })
      if (stream.status === 'open') {
        await frames.close()
        // A peer that keeps its side open after the exchange would hold the stream (and its per-connection slot) for good.
        cutIfLeftOpen(frames, REQUEST_CLOSE_GRACE_MS)
      }
    } catch (err) {
      const reason = err instanceof Error ? err : new Error(String(err))
      frames.abort(reason)
      opts.onCutOff?.(reason, connection.remotePeer)
    }
  }

  await host.handle(
    protocol,
    (stream, connection) => {
      const done = serve(stream, connection).finally(() => active.delete(stream))
      active.set(stream, done)
    },
    {
      ...(opts.maxInboundStreams === undefined ? {} : { maxInboundStreams: opts.maxInboundStreams }),
      ...(opts.maxOutboundStreams === undefined ? {} : { maxOutboundStreams: opts.maxOutboundStreams }),
    },
  )

  let closing: Promise<void> | undefined
  return {
    protocol,
    get active() {
      return active.size
    },
    close() {
      closing ??= (async () => {
        controller.abort()
        await host.unhandle(protocol).catch((err: unknown) => log.error('unhandle %s failed: %s', protocol, (err as Error).message))
        for (const stream of active.keys()) stream.abort(new Error('node stopping'))
        await Promise.allSettled(active.values())
      })()
      return closing
    },
  }
}

export interface OpenOptions extends AbortOptions {
  frames: Omit<FrameStreamOptions, 'log'>
  log?: Logger
}

/** Dial `peer` on `protocol` and wrap the stream; dial and negotiation failures are `PeerUnreachableError`. */
export async function openFrameStream(host: ProtocolHost, peer: DialTarget, protocol: string, opts: OpenOptions): Promise<FrameStream> {
  let stream: Stream
  try {
    stream = await host.dialProtocol(peer, protocol, opts.signal === undefined ? {} : { signal: opts.signal })
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    throw new PeerUnreachableError(`cannot open ${protocol} to ${describeTarget(peer)}: ${reason}`, { protocol, cause: (err as Error).name }, { cause: err })
  }
  return new FrameStream(stream, { ...opts.frames, ...(opts.log === undefined ? {} : { log: opts.log }) })
}

export interface RequestOptions extends AbortOptions {
  /** Largest response accepted. */
  maxResponseBytes: number
  /** Whole exchange, dial included. */
  timeoutMs: number
  /** Waiting for the first byte of the response. Default 5 s (capped by timeoutMs). */
  replyTimeoutMs?: number
  log?: Logger
}

/**
 * One request frame, one response frame, on a fresh stream. Throws
 * `PeerUnreachableError` (dial), `FrameTimeoutError`, `FrameTooLargeError`,
 * `StreamEndedError`; the stream is aborted on any of them.
 */
export async function requestResponse(host: ProtocolHost, peer: DialTarget, protocol: string, request: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(opts.timeoutMs)
  const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
  setMaxListeners(Infinity, signal)
  const frames = await openFrameStream(host, peer, protocol, {
    signal,
    frames: {
      maxFrameBytes: opts.maxResponseBytes,
      maxWriteFrameBytes: Math.max(request.byteLength, 1),
      frameTimeoutMs: opts.timeoutMs,
      idleTimeoutMs: Math.min(opts.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS, opts.timeoutMs),
    },
    ...(opts.log === undefined ? {} : { log: opts.log }),
  })
  try {
    await frames.write(request, { signal })
    const response = await frames.readRequired('response', { signal })
    await frames.close({ signal })
    cutIfLeftOpen(frames, REQUEST_CLOSE_GRACE_MS)
    return response
  } catch (err) {
    if (timeout.aborted && opts.signal?.aborted !== true) {
      const timedOut = new FrameTimeoutError(`no ${protocol} response within ${opts.timeoutMs} ms`, { timeoutMs: opts.timeoutMs }, { cause: err })
      frames.abort(timedOut)
      throw timedOut
    }
    frames.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/**
 * After our half-close, the peer has `graceMs` to close its side; then the
 * stream is cut. A peer that never closes would otherwise keep the stream,
 * and its slot under `maxInboundStreams`/`maxOutboundStreams`, for the life
 * of the connection.
 */
function cutIfLeftOpen(frames: FrameStream, graceMs: number): void {
  const stream = frames.stream
  if (stream.status !== 'open' && stream.status !== 'closing') return
  const timer = setTimeout(() => {
    if (stream.status === 'open' || stream.status === 'closing')
      frames.abort(new FrameTimeoutError(`peer left its ${stream.protocol} stream open after the exchange`))
  }, graceMs)
  timer.unref?.()
  stream.addEventListener('close', () => clearTimeout(timer), { once: true })
}

function describeTarget(peer: DialTarget): string {
  if (Array.isArray(peer)) return peer.map((a) => a.toString()).join(',')
  return peer.toString()
}

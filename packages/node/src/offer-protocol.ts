import type { DialTarget, Logger } from '@libp2p/interface'
import { decode, encode, parseWith, type PeerIdString, type TrustPolicy } from '@tally/core'
import { z } from 'zod'
import {
  OFFER_FETCH_TIMEOUT_MS,
  OFFER_MAX_BYTES,
  OFFER_MAX_INBOUND_STREAMS,
  OFFER_MAX_OUTBOUND_STREAMS,
  OFFER_PROTOCOL,
  OFFER_RATE_BURST,
  OFFER_RATE_PER_SECOND,
  OFFER_REQUEST_MAX_BYTES,
  OFFER_REQUEST_TIMEOUT_MS,
} from './constants.ts'
import { FrameDecodeError, InvalidOfferError, NoOfferError, RemoteError, UnexpectedMessageError } from './errors.ts'
import type { Offer, VerifiedOffer } from './offer.ts'
import { verifyOffer } from './offer.ts'
import { handleProtocol, type ProtocolHandle, type ProtocolHost, requestResponse } from './protocol.ts'

/**
 * /tally/offer/1.0.0 messages, one DAG-CBOR map per frame:
 * request `{type: 'get-offer'}`; response `{type: 'offer', offer}`,
 * `{type: 'no-offer'}` or `{type: 'error', code, message}`.
 */
export const offerRequestSchema = z.discriminatedUnion('type', [z.strictObject({ type: z.literal('get-offer') })])

export const offerResponseSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('offer'), offer: z.unknown() }),
  z.strictObject({ type: z.literal('no-offer') }),
  z.strictObject({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(512) }),
])
export type OfferResponse = z.infer<typeof offerResponseSchema>

/**
 * Serves this node's current offer. The offer is encoded once when set;
 * each request costs one frame read and one write.
 */
export class OfferServer {
  /** Requests answered, and streams cut off by error name (FrameTooLargeError, FrameDecodeError, FrameTimeoutError, RateLimitedError …). */
  readonly stats: { served: number; cutOff: Record<string, number> } = { served: 0, cutOff: {} }
  readonly #host: ProtocolHost
  readonly #log: Logger
  #response: Uint8Array = encode({ type: 'no-offer' })
  #offer: Offer | undefined
  #handle: ProtocolHandle | undefined

  constructor(host: ProtocolHost, log: Logger) {
    this.#host = host
    this.#log = log
  }

  get offer(): Offer | undefined {
    return this.#offer
  }

  /** Serve `offer` from now on (undefined: answer no-offer). The caller has checked it; only its encoded size is checked here. */
  setOffer(offer: Offer | undefined): void {
    const response = encode(offer === undefined ? { type: 'no-offer' } : { type: 'offer', offer })
    if (response.byteLength > OFFER_MAX_BYTES) {
      throw new InvalidOfferError(`offer encodes to ${response.byteLength} bytes, limit ${OFFER_MAX_BYTES}`, { code: 'schema', size: response.byteLength })
    }
    this.#offer = offer
    this.#response = response
  }

  async start(): Promise<void> {
    if (this.#handle !== undefined) return
    this.#handle = await handleProtocol(
      this.#host,
      OFFER_PROTOCOL,
      async ({ frames }) => {
        // One request per stream: the request must arrive promptly and be tiny.
        await frames.readMessage(offerRequestSchema, 'offer request', { idleTimeoutMs: OFFER_REQUEST_TIMEOUT_MS })
        await frames.write(this.#response)
        this.stats.served++
      },
      {
        // A client sends one tiny request, so nothing beyond a few of them is ever buffered for it.
        frames: {
          maxFrameBytes: OFFER_REQUEST_MAX_BYTES,
          maxWriteFrameBytes: OFFER_MAX_BYTES,
          frameTimeoutMs: OFFER_REQUEST_TIMEOUT_MS,
          maxBufferedBytes: 4 * OFFER_REQUEST_MAX_BYTES,
        },
        streamRate: { perSecond: OFFER_RATE_PER_SECOND, burst: OFFER_RATE_BURST },
        maxInboundStreams: OFFER_MAX_INBOUND_STREAMS,
        maxOutboundStreams: OFFER_MAX_OUTBOUND_STREAMS,
        log: this.#log,
        onCutOff: (err) => {
          this.stats.cutOff[err.name] = (this.stats.cutOff[err.name] ?? 0) + 1
        },
      },
    )
  }

  async stop(): Promise<void> {
    const handle = this.#handle
    this.#handle = undefined
    await handle?.close()
  }
}

export interface FetchOfferOptions {
  policy: TrustPolicy
  /** The peer id the offer must be signed by (the peer we dial). */
  expectedPeer: PeerIdString
  timeoutMs?: number
  signal?: AbortSignal
  now?: number
  log?: Logger
}

/** Decode a /tally/offer/1.0.0 response frame. */
export function decodeOfferResponse(bytes: Uint8Array): OfferResponse {
  let value: unknown
  try {
    value = decode(bytes, OFFER_MAX_BYTES)
  } catch (err) {
    throw new FrameDecodeError(`garbage offer response: ${(err as Error).message}`, {}, { cause: err })
  }
  try {
    return parseWith(offerResponseSchema, value, 'offer response')
  } catch (err) {
    if ((err as { details?: { path?: unknown } }).details?.path === 'type') {
      // Not String(): on a nested array it recurses once per level, and a peer's deeply nested `type` overflows the stack.
      const t = (value as { type?: unknown })?.type
      throw new UnexpectedMessageError(
        `unexpected offer response type ${JSON.stringify(typeof t === 'string' ? t.slice(0, 40) : typeof t)}`,
        {},
        { cause: err },
      )
    }
    throw new FrameDecodeError((err as Error).message, {}, { cause: err })
  }
}

/**
 * Ask `target` for its offer and verify it (signature, signer = expected
 * peer, schema, expiry, credentials under `policy`). Throws
 * `PeerUnreachableError`, `FrameTimeoutError`, `FrameDecodeError`,
 * `NoOfferError`, `RemoteError` or `InvalidOfferError`.
 */
export async function fetchOffer(host: ProtocolHost, target: DialTarget, opts: FetchOfferOptions): Promise<VerifiedOffer> {
  const bytes = await requestResponse(host, target, OFFER_PROTOCOL, encode({ type: 'get-offer' }), {
    maxResponseBytes: OFFER_MAX_BYTES,
    timeoutMs: opts.timeoutMs ?? OFFER_FETCH_TIMEOUT_MS,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(opts.log === undefined ? {} : { log: opts.log }),
  })
  const response = decodeOfferResponse(bytes)
  if (response.type === 'no-offer') throw new NoOfferError(`${opts.expectedPeer} serves no offer`)
  if (response.type === 'error') throw new RemoteError(`${opts.expectedPeer} answered ${response.code}: ${response.message}`, { code: response.code })
  return verifyOffer(response.offer, { policy: opts.policy, remotePeer: opts.expectedPeer, ...(opts.now === undefined ? {} : { now: opts.now }) })
}

/**
 * /tally/probe/1.0.0 messages and the identity proof, pure. One DAG-CBOR
 * map per frame, one request and one response per stream (docs/PROTOCOL.md,
 * "/tally/probe/1.0.0").
 */
import { decode, encode, type Identity, type PeerIdString, parseWith, schema, verifyByPeer } from '@tally/core'
import { CHALLENGE_SEED_BYTES } from '@tally/executor'
import { z } from 'zod'
import { FrameDecodeError, UnexpectedMessageError } from './errors.ts'
import { IdentityProofError } from './monitoring-errors.ts'

export const PROBE_PROTOCOL = '/tally/probe/1.0.0'
/** Signing domain of identity proofs: `tally/v1/probe`. */
export const PROBE_SIGNING_DOMAIN = 'probe'
export const PROBE_NONCE_BYTES = 32
/** Largest compute challenge a responder accepts: n = 512 costs ~0.35 s on one plain-JS core and answers with 1 MiB. */
export const PROBE_MAX_N = 512
/** A request is a small map (32-byte nonce or seed, a peer id, two integers): ~150 bytes. */
export const PROBE_REQUEST_MAX_BYTES = 256
/** The largest answer: C of the largest challenge (4·n² bytes) plus the envelope. */
export const PROBE_RESPONSE_MAX_BYTES = 4 * PROBE_MAX_N * PROBE_MAX_N + 256
/** An identity request dated further than this from the provider's clock is refused (replayed or badly skewed). */
export const PROBE_MAX_SKEW_MS = 30_000

const bytesOf = (len: number, what: string) => schema.bytes.refine((b) => b.byteLength === len, { message: `expected ${what} of length ${len}` })

export const probeRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('identity'), nonce: bytesOf(PROBE_NONCE_BYTES, 'nonce'), monitor: schema.peerId, time: schema.timeMs }),
  // n is range-checked by the responder, which answers `bad-request` rather than cutting the stream off.
  z.strictObject({ type: z.literal('compute'), seed: bytesOf(CHALLENGE_SEED_BYTES, 'seed'), n: schema.uint }),
])
export type ProbeRequest = z.infer<typeof probeRequestSchema>
export type IdentityRequest = Extract<ProbeRequest, { type: 'identity' }>
export type ComputeRequest = Extract<ProbeRequest, { type: 'compute' }>

/** Error codes a responder answers with instead of a result. */
export const PROBE_ERROR_CODES = ['bad-request', 'rate-limited', 'busy', 'failed'] as const
export type ProbeErrorCode = (typeof PROBE_ERROR_CODES)[number]

export const probeResponseSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('identity'), provider: schema.peerId, sig: bytesOf(64, 'signature') }),
  z.strictObject({ type: z.literal('compute'), c: schema.bytes, durationMs: schema.uint, solver: z.enum(['cpu', 'gpu']) }),
  z.strictObject({ type: z.literal('error'), code: z.enum(PROBE_ERROR_CODES), message: z.string().max(512) }),
])
export type ProbeResponse = z.infer<typeof probeResponseSchema>

/** The bytes a provider signs (domain `probe`) to answer an identity challenge. */
export function identityProofPayload(req: { nonce: Uint8Array; monitor: PeerIdString; time: number }, provider: PeerIdString): Uint8Array {
  return encode({ nonce: req.nonce, monitor: req.monitor, provider, time: req.time })
}

/** The provider's answer to `req`, signed with its identity. */
export function signIdentityProof(provider: Identity, req: IdentityRequest): ProbeResponse {
  return { type: 'identity', provider: provider.peerId, sig: provider.sign(PROBE_SIGNING_DOMAIN, identityProofPayload(req, provider.peerId)) }
}

/**
 * Throw `IdentityProofError` unless `res` is `expected`'s signature over
 * this very request (nonce, monitor, time).
 */
export function checkIdentityProof(req: IdentityRequest, res: ProbeResponse, expected: PeerIdString): void {
  if (res.type !== 'identity') throw new IdentityProofError(`expected an identity answer, got ${res.type}`)
  if (res.provider !== expected) throw new IdentityProofError(`identity answer names ${res.provider}, not ${expected}`, { expected, got: res.provider })
  if (!verifyByPeer(expected, PROBE_SIGNING_DOMAIN, identityProofPayload(req, expected), res.sig)) {
    throw new IdentityProofError(`identity proof does not verify for ${expected}`, { expected })
  }
}

function decodeFrame<T>(bytes: Uint8Array, max: number, s: z.ZodType<T>, what: string): T {
  let value: unknown
  try {
    value = decode(bytes, max)
  } catch (err) {
    throw new FrameDecodeError(`garbage ${what}: ${(err as Error).message}`, {}, { cause: err })
  }
  try {
    return parseWith(s, value, what)
  } catch (err) {
    if ((err as { details?: { path?: unknown } }).details?.path === 'type') {
      // Not String(): on a nested array it recurses once per level, and a peer's deeply nested `type` overflows the stack.
      const t = (value as { type?: unknown } | null)?.type
      const type = typeof t === 'string' ? t.slice(0, 40) : typeof t
      throw new UnexpectedMessageError(`unexpected ${what} type ${JSON.stringify(type)}`, {}, { cause: err })
    }
    throw new FrameDecodeError((err as Error).message, {}, { cause: err })
  }
}

export function decodeProbeRequest(bytes: Uint8Array): ProbeRequest {
  return decodeFrame(bytes, PROBE_REQUEST_MAX_BYTES, probeRequestSchema, 'probe request')
}

export function decodeProbeResponse(bytes: Uint8Array): ProbeResponse {
  return decodeFrame(bytes, PROBE_RESPONSE_MAX_BYTES, probeResponseSchema, 'probe response')
}

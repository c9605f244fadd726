import { z } from 'zod'
import { decode, type Identity, parseWith, type SignedDocument, schema, signDocument, verifyDocument } from '@tally/core'
import { ObservationSequenceError, ObservationStaleError } from './errors.ts'
import { BP_ONE, bp } from './money.ts'
import type { ObservationEvidence } from './verdict.ts'

/** Document type of a monitor's signed observation. */
export const OBSERVATION_TYPE = 'observation'
/** No observation document (gossip payload or embedded) may exceed this many encoded bytes. */
export const MAX_OBSERVATION_BYTES = 8 * 1024
export const MAX_CHALLENGES = 32

const challengeSchema = z.strictObject({
  kind: z.enum(['identity', 'compute']),
  ok: z.boolean(),
  durationMs: schema.uint,
  detail: z.string().max(256).optional(),
})

const latencySchema = z
  .strictObject({ p50: schema.uint, p95: schema.uint, p99: schema.uint })
  .refine((l) => l.p50 <= l.p95 && l.p95 <= l.p99, 'latency percentiles must be ordered p50 <= p95 <= p99')

/**
 * Body of a monitor's observation of one provider over one window. The
 * monitor signs it as a document of type `observation`; it enters pair
 * logs whole, never re-signed.
 */
export const observationBodySchema = z
  .strictObject({
    /** The provider observed. */
    subject: schema.peerId,
    /** Per-monitor sequence number, from 1, one per observation it issues. */
    seq: schema.uint.min(1),
    window: z.strictObject({ start: schema.timeMs, end: schema.timeMs }),
    samples: z.strictObject({ sent: schema.uint.min(1), ok: schema.uint }),
    /** floor(ok × 10000 / sent). */
    availabilityBp: bp,
    /** Over successful samples; null when none succeeded. */
    latencyUs: latencySchema.nullable(),
    challenges: z.array(challengeSchema).max(MAX_CHALLENGES),
    /** CID of the monitor's credential, when it presents one. */
    credential: schema.cid.nullable().optional(),
    issuedAt: schema.timeMs,
  })
  .superRefine((o, ctx) => {
    const fail = (message: string) => ctx.addIssue({ code: 'custom', message })
    if (o.window.end <= o.window.start) fail('window.end must be after window.start')
    if (o.issuedAt < o.window.end) fail('issuedAt must not precede window.end')
    if (o.samples.ok > o.samples.sent) fail('samples.ok exceeds samples.sent')
    else if (o.availabilityBp !== Math.floor((o.samples.ok * BP_ONE) / o.samples.sent)) fail('availabilityBp must equal floor(ok * 10000 / sent)')
    if ((o.latencyUs === null) !== (o.samples.ok === 0)) fail('latencyUs must be null exactly when no sample succeeded')
  })
export type ObservationBody = z.infer<typeof observationBodySchema>
export type Observation = SignedDocument<ObservationBody>

/** Sign an observation as `monitor` (validates the body first). */
export function signObservation(monitor: Identity, body: ObservationBody): Observation {
  return signDocument(monitor, OBSERVATION_TYPE, parseWith(observationBodySchema, body, 'observation'))
}

/** Check an untrusted value as a signed observation: shape, body rules, signature. */
export function decodeObservation(value: unknown): Observation {
  return verifyDocument(value, OBSERVATION_TYPE, observationBodySchema)
}

/** Decode observation bytes (a gossip payload) under the size bound. */
export function decodeObservationBytes(bytes: Uint8Array): Observation {
  return decodeObservation(decode(bytes, MAX_OBSERVATION_BYTES))
}

export interface FreshnessOptions {
  /** The reader's clock (ms); never read inside this package. */
  now: number
  /** Oldest acceptable issuedAt, as an age. Default 5 minutes. */
  maxAgeMs?: number
  /** How far in the future issuedAt may be (clock skew). Default 30 s. */
  maxSkewMs?: number
}

/** Throw `ObservationStaleError` unless the observation was issued recently relative to `now`. */
export function assertFresh(obs: Observation, opts: FreshnessOptions): void {
  const maxAge = opts.maxAgeMs ?? 5 * 60_000
  const maxSkew = opts.maxSkewMs ?? 30_000
  const at = obs.body.issuedAt
  if (at > opts.now + maxSkew) throw new ObservationStaleError(`observation issued ${at - opts.now} ms in the future`, { monitor: obs.by, seq: obs.body.seq })
  if (at < opts.now - maxAge)
    throw new ObservationStaleError(`observation issued ${opts.now - at} ms ago, older than ${maxAge} ms`, { monitor: obs.by, seq: obs.body.seq })
}

/** Throw `ObservationSequenceError` unless `obs` advances past the monitor's last seen seq. */
export function assertAdvances(obs: Observation, lastSeq: number | undefined): void {
  if (lastSeq !== undefined && obs.body.seq <= lastSeq) {
    throw new ObservationSequenceError(`observation seq ${obs.body.seq} does not advance past ${lastSeq} for monitor ${obs.by}`, {
      monitor: obs.by,
      seq: obs.body.seq,
      lastSeq,
    })
  }
}

/** Gossip-side validation in one call: bytes, size, schema, signature, freshness, sequence. */
export function validateObservation(bytes: Uint8Array, opts: FreshnessOptions & { lastSeq?: number }): Observation {
  const obs = decodeObservationBytes(bytes)
  assertFresh(obs, opts)
  assertAdvances(obs, opts.lastSeq)
  return obs
}

/** The part of an observation the evidence rule reads. */
export function observationEvidence(obs: Observation): ObservationEvidence {
  return {
    monitor: obs.by,
    samples: { sent: obs.body.samples.sent, ok: obs.body.samples.ok },
    latencyP95Us: obs.body.latencyUs === null ? null : obs.body.latencyUs.p95,
    challenges: obs.body.challenges.map((c) => ({ kind: c.kind, ok: c.ok })),
  }
}

/** The epoch an observation window belongs to: the one holding its midpoint (see EVIDENCE-RULES.md). */
export function epochOfWindow(window: { start: number; end: number }, dealStart: number, epochMs: number): number | null {
  if (window.end - window.start > epochMs) return null
  const mid = window.start + Math.floor((window.end - window.start) / 2)
  if (mid < dealStart) return null
  return Math.floor((mid - dealStart) / epochMs)
}

import { encode, type Identity, type PeerIdString } from '@tally/core'
import { type ObservationBody, signObservation } from '@tally/deal'

/** A well-formed observation body of `subject` with `seq`, issued now, for a window that just ended. */
export function observationBody(subject: PeerIdString, seq: number, overrides: Partial<ObservationBody> = {}): ObservationBody {
  const issuedAt = overrides.issuedAt ?? Date.now()
  const end = Math.min(issuedAt, overrides.window?.end ?? issuedAt)
  return {
    subject,
    seq,
    window: { start: end - 10_000, end },
    samples: { sent: 10, ok: 9 },
    availabilityBp: 9_000,
    latencyUs: { p50: 400, p95: 900, p99: 1_200 },
    challenges: [{ kind: 'identity', ok: true, durationMs: 2 }],
    credential: null,
    issuedAt,
    ...overrides,
  }
}

/** The gossip payload of `monitor`'s signed observation. */
export function observationBytes(monitor: Identity, subject: PeerIdString, seq: number, overrides: Partial<ObservationBody> = {}): Uint8Array {
  return encode(signObservation(monitor, observationBody(subject, seq, overrides)))
}

import { schema } from '@tally/core'
import { z } from 'zod'
import { RailConfigError } from './errors.ts'

/**
 * One payment release handed to a rail: the consumer's countersigned
 * voucher moved the pair's cumulative balance from `cumulative − delta`
 * to `cumulative`. The voucher CID identifies the release everywhere,
 * and is the idempotency key a rail passes to the system it drives.
 */
export interface RailRelease {
  /** CID string of the pair descriptor. */
  pair: string
  /** CID string of the deal (its contract). */
  deal: string
  /** CID string of the voucher entry. */
  voucher: string
  /** Total released in this deal so far, including this release. */
  cumulative: schema.Money
  /** What this release adds to the previous voucher. */
  delta: schema.Money
  payer: string
  payee: string
  /** The signed voucher entry's bytes (DAG-CBOR), base64, so the receiving system can verify it. */
  voucherBytesBase64: string
}

/** What the rail reports; it becomes the `rail-result` entry body {deal, voucher, rail, status, detail, reference}. */
export interface RailOutcome {
  rail: string
  status: 'ok' | 'failed'
  /** Human-readable detail, at most `MAX_DETAIL_BYTES` of UTF-8. */
  detail: string
  /** The receiving system's reference (transfer id, transaction hash), or null. */
  reference: string | null
}

/**
 * A payment rail. `release` never throws for a failed payment: every
 * failure (refused, unreachable, timed out, malformed release) is an
 * outcome with status `failed`, so it can be recorded in the log.
 */
export interface Rail {
  readonly name: string
  release(release: RailRelease): Promise<RailOutcome>
}

export const MAX_DETAIL_BYTES = 1024
export const RAIL_NAME = /^[a-z][a-z0-9-]{0,31}$/
/** A reference is kept only when it looks like an identifier, never free text or markup. */
export const SAFE_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._:/#@+=-]{0,127}$/

const cidString = z.string().regex(/^b[a-z2-7]{20,100}$/, 'expected a CIDv1 base32 string')

export const railReleaseSchema = z.strictObject({
  pair: cidString,
  deal: cidString,
  voucher: cidString,
  cumulative: schema.money,
  delta: schema.money,
  payer: schema.peerId,
  payee: schema.peerId,
  voucherBytesBase64: z
    .string()
    .max(512 * 1024)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
})

export const railOutcomeSchema = z.strictObject({
  rail: z.string().regex(RAIL_NAME),
  status: z.enum(['ok', 'failed']),
  detail: z.string().refine((s) => Buffer.byteLength(s) <= MAX_DETAIL_BYTES, `at most ${MAX_DETAIL_BYTES} bytes`),
  reference: z.string().regex(SAFE_REFERENCE).nullable(),
})

/** Cut text to at most `maxBytes` of UTF-8 without splitting a character. */
export function boundText(text: string, maxBytes = MAX_DETAIL_BYTES): string {
  if (Buffer.byteLength(text) <= maxBytes) return text
  const marker = '…'
  let out = Buffer.from(text)
    .subarray(0, maxBytes - Buffer.byteLength(marker))
    .toString('utf8')
  // A cut inside a multi-byte character decodes to U+FFFD; drop it.
  out = out.replace(/\uFFFD+$/, '')
  return out + marker
}

export function safeReference(value: unknown): string | null {
  return typeof value === 'string' && SAFE_REFERENCE.test(value) ? value : null
}

/** Validate a release; returns the failed outcome to record when it is malformed. */
export function checkRelease(rail: string, release: unknown): { ok: true; release: RailRelease } | { ok: false; outcome: RailOutcome } {
  const res = railReleaseSchema.safeParse(release)
  if (res.success) {
    const r = res.data
    if (r.delta.asset !== r.cumulative.asset) return { ok: false, outcome: failed(rail, 'invalid release: delta and cumulative assets differ') }
    if (r.delta.amount > r.cumulative.amount) return { ok: false, outcome: failed(rail, 'invalid release: delta exceeds cumulative') }
    return { ok: true, release: r }
  }
  const issue = res.error.issues[0]
  return { ok: false, outcome: failed(rail, `invalid release: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'malformed'}`) }
}

export function failed(rail: string, detail: string): RailOutcome {
  return { rail, status: 'failed', detail: boundText(detail), reference: null }
}

/** The `rail-result` entry body fields for an outcome (CIDs as strings; the deal package owns the entry schema). */
export function railResultFields(
  release: Pick<RailRelease, 'deal' | 'voucher'>,
  outcome: RailOutcome,
): {
  deal: string
  voucher: string
  rail: string
  status: 'ok' | 'failed'
  detail: string
  reference: string | null
} {
  return { deal: release.deal, voucher: release.voucher, rail: outcome.rail, status: outcome.status, detail: outcome.detail, reference: outcome.reference }
}

export function assertRailName(name: string): string {
  if (typeof name !== 'string' || !RAIL_NAME.test(name)) throw new RailConfigError(`rail name must match ${RAIL_NAME}`)
  return name
}

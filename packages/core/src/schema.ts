import { z } from 'zod'
import { CID } from 'multiformats/cid'
import { SchemaError } from './errors.ts'
import { isPeerId, type PeerIdString } from './identity.ts'

/** Schema pieces shared by every record type. Decoders wrap zod failures into `SchemaError`. */
export const cid = z.custom<CID>((v) => v != null && CID.asCID(v) !== null, { message: 'expected a CID' })
export const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected bytes' })
export const peerId = z.custom<PeerIdString>((v) => isPeerId(v), { message: 'expected an Ed25519 peer id' })
/** Non-negative safe integer: sequence numbers, minor units of money, counts. */
export const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
/** Milliseconds since the Unix epoch. */
export const timeMs = uint
/** Asset code: ISO 4217 or a token ticker, e.g. USD, USDC, AKT. */
export const asset = z.string().regex(/^[A-Z0-9][A-Z0-9.-]{1,15}$/, 'expected an asset code such as USD or USDC')
/** ISO 3166-1 alpha-2 country, optionally with an ISO 3166-2 subdivision (DE, US-CA). */
export const jurisdiction = z.string().regex(/^[A-Z]{2}(-[A-Z0-9]{1,3})?$/, 'expected an ISO 3166 code such as DE or US-CA')
export const shortText = z.string().max(256)
export const text = z.string().max(16 * 1024)

export const money = z.strictObject({ amount: uint, asset })
export type Money = z.infer<typeof money>

/**
 * Parse `value` with `schema`, raising `SchemaError` naming the first bad
 * path. `what` names the record type in the message.
 */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  const path = issue?.path.length ? issue.path.join('.') : '(root)'
  throw new SchemaError(`invalid ${what}: ${path}: ${issue?.message ?? 'malformed'}`, { what, path })
}

export { z }

import { CID, schema, sha256 } from '@tally/core'
import * as Digest from 'multiformats/hashes/digest'
import { z } from 'zod'
import { CAPABILITY_KEY_PREFIX } from './constants.ts'
import { InvalidQueryError } from './errors.ts'

/** Multicodec `raw`: the CID addresses the key string's UTF-8 bytes themselves. */
export const RAW_CODE = 0x55
const SHA256_CODE = 0x12

/**
 * Hardware class: lowercase dotted words, kind first (`gpu.h100`,
 * `gpu.rtx4090`, `cpu.x86_64`). No `/` or `=`, so a capability key is
 * unambiguous to split.
 */
export const hardwareClass = z
  .string()
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*){0,3}$/, 'expected a hardware class such as gpu.h100')

export interface CapabilityQuery {
  hardwareClass?: string
  /** ISO 3166 code: `DE`, or a subdivision `US-CA`. */
  jurisdiction?: string
}

const capabilityQuerySchema = z.strictObject({ hardwareClass: hardwareClass.optional(), jurisdiction: schema.jurisdiction.optional() })

/**
 * The capability key of a query: `tally/cap/v1/hw=<class>`,
 * `tally/cap/v1/jur=<code>` or `tally/cap/v1/hw=<class>/jur=<code>`
 * (always in that order).
 */
export function capabilityKey(query: CapabilityQuery): string {
  const result = capabilityQuerySchema.safeParse(query)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new InvalidQueryError(`invalid capability query: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'malformed'}`)
  }
  const { hardwareClass: hw, jurisdiction: jur } = result.data
  if (hw === undefined && jur === undefined) throw new InvalidQueryError('a capability query needs a hardware class, a jurisdiction or both')
  const parts = [CAPABILITY_KEY_PREFIX]
  if (hw !== undefined) parts.push(`hw=${hw}`)
  if (jur !== undefined) parts.push(`jur=${jur}`)
  return parts.join('/')
}

const encoder = new TextEncoder()

/** CIDv1, codec raw (0x55), sha2-256 of the key's UTF-8 bytes: what providers provide in the DHT. */
export function capabilityCid(key: string): CID {
  return CID.createV1(RAW_CODE, Digest.create(SHA256_CODE, sha256(encoder.encode(key))))
}

/**
 * Every key a provider of `hardwareClass` in `jurisdiction` provides: the
 * class, the jurisdiction and their combination; for a subdivision
 * (`US-CA`) also the country (`US`), so country-wide searches find it.
 */
export function capabilityKeysFor(hardware: string, jurisdiction: string): string[] {
  const jurisdictions = [jurisdiction]
  const dash = jurisdiction.indexOf('-')
  if (dash > 0) jurisdictions.push(jurisdiction.slice(0, dash))
  const keys = [capabilityKey({ hardwareClass: hardware })]
  for (const jur of jurisdictions) {
    keys.push(capabilityKey({ jurisdiction: jur }))
    keys.push(capabilityKey({ hardwareClass: hardware, jurisdiction: jur }))
  }
  return keys
}

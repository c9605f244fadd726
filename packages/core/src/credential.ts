import { z } from 'zod'
import { signDocument, verifyDocument, type SignedDocument } from './document.ts'
import { CredentialError, UntrustedIssuerError } from './errors.ts'
import type { Identity, PeerIdString } from './identity.ts'
import { jurisdiction, money, parseWith, peerId, shortText, timeMs } from './schema.ts'

export const ROLES = ['provider', 'consumer', 'monitor', 'arbiter', 'insurer', 'auditor', 'regulator'] as const
export type Role = (typeof ROLES)[number]
export const role = z.enum(ROLES)

export const credentialBodySchema = z.strictObject({
  subject: peerId,
  roles: z.array(role).min(1).max(ROLES.length),
  jurisdiction,
  scope: z.strictObject({
    maxDealValue: money.optional(),
    hardwareClasses: z.array(shortText).max(64).optional(),
  }),
  notBefore: timeMs,
  notAfter: timeMs,
  /** Free-form label, e.g. the issuer's registration number for the subject. */
  label: shortText.optional(),
})
export type CredentialBody = z.infer<typeof credentialBodySchema>
export type Credential = SignedDocument<CredentialBody>

export function issueCredential(issuer: Identity, body: CredentialBody): Credential {
  const checked = parseWith(credentialBodySchema, body, 'credential')
  if (checked.notAfter <= checked.notBefore) throw new CredentialError('credential notAfter must be after notBefore')
  return signDocument(issuer, 'credential', checked)
}

/** Decode and check a credential's signature; does not judge trust or time. */
export function decodeCredential(value: unknown): Credential {
  return verifyDocument(value, 'credential', credentialBodySchema)
}

/**
 * A reader's trust policy: which issuers it accepts for which role.
 * `self` admits self-issued credentials for that role (bootstrapping);
 * `any` admits any issuer (a permissive local network).
 */
export interface TrustPolicy {
  issuers: Partial<Record<Role, readonly (PeerIdString | 'self' | 'any')[]>>
}

export const trustPolicySchema = z.strictObject({
  issuers: z.partialRecord(role, z.array(z.union([peerId, z.literal('self'), z.literal('any')])).max(256)),
})

/** Accept self-issued credentials for every role: what a fresh node starts with. */
export const OPEN_TRUST_POLICY: TrustPolicy = {
  issuers: Object.fromEntries(ROLES.map((r) => [r, ['self', 'any']])) as TrustPolicy['issuers'],
}

export interface AdmitOptions {
  role: Role
  at: number
  subject?: PeerIdString
  jurisdiction?: string
  hardwareClass?: string
  dealValue?: { amount: number; asset: string }
}

/**
 * Decide whether `cred` lets its subject act in `role` at time `at` under
 * `policy`. Returns the checked credential or throws `CredentialError`
 * (window, role, scope, subject) / `UntrustedIssuerError` (issuer).
 */
export function admitCredential(policy: TrustPolicy, value: unknown, opts: AdmitOptions): Credential {
  const cred = decodeCredential(value)
  const b = cred.body
  const ctx = { issuer: cred.by, subject: b.subject, role: opts.role }
  if (opts.subject !== undefined && b.subject !== opts.subject) {
    throw new CredentialError(`credential is for ${b.subject}, not ${opts.subject}`, ctx)
  }
  if (opts.at < b.notBefore) throw new CredentialError(`credential not valid before ${new Date(b.notBefore).toISOString()}`, ctx)
  if (opts.at >= b.notAfter) throw new CredentialError(`credential expired at ${new Date(b.notAfter).toISOString()}`, ctx)
  if (!b.roles.includes(opts.role)) throw new CredentialError(`credential does not grant role ${opts.role}`, ctx)
  if (opts.jurisdiction !== undefined && b.jurisdiction !== opts.jurisdiction && !opts.jurisdiction.startsWith(`${b.jurisdiction}-`)) {
    throw new CredentialError(`credential jurisdiction ${b.jurisdiction} does not cover ${opts.jurisdiction}`, ctx)
  }
  if (opts.hardwareClass !== undefined && b.scope.hardwareClasses !== undefined && !b.scope.hardwareClasses.includes(opts.hardwareClass)) {
    throw new CredentialError(`credential scope does not cover hardware class ${opts.hardwareClass}`, ctx)
  }
  if (opts.dealValue !== undefined && b.scope.maxDealValue !== undefined) {
    const max = b.scope.maxDealValue
    if (max.asset !== opts.dealValue.asset || opts.dealValue.amount > max.amount) {
      throw new CredentialError(`deal value ${opts.dealValue.amount} ${opts.dealValue.asset} exceeds credential scope ${max.amount} ${max.asset}`, ctx)
    }
  }
  const accepted = policy.issuers[opts.role] ?? []
  const selfIssued = cred.by === b.subject
  const ok = accepted.includes('any') || (selfIssued && accepted.includes('self')) || accepted.includes(cred.by)
  if (!ok) throw new UntrustedIssuerError(`issuer ${cred.by} is not trusted for role ${opts.role}`, ctx)
  return cred
}

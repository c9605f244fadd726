import {
  admitCredential,
  type Credential,
  type Identity,
  isSignedDocumentShape,
  type Money,
  type PeerIdString,
  parseWith,
  schema,
  type SignedDocument,
  signDocument,
  type TrustPolicy,
  verifyDocument,
} from '@tally/core'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { hardwareClass } from './capability.ts'
import { OFFER_MAX_ADDRESSES, OFFER_MAX_CREDENTIALS, OFFER_MAX_PEERS, OFFER_MAX_RAILS } from './constants.ts'
import { InvalidOfferError } from './errors.ts'

export const OFFER_DOCUMENT_TYPE = 'offer'

const multiaddrText = z
  .string()
  .max(512)
  .refine(
    (s) => {
      try {
        multiaddr(s)
        return true
      } catch {
        return false
      }
    },
    { message: 'expected a multiaddr' },
  )

/**
 * The body of a provider's signed offer (document type `offer`, signed by
 * `provider`). Money in minor units, times in ms, availability in basis
 * points (10000 = 100 %), latency in microseconds.
 */
export const offerBodySchema = z.strictObject({
  provider: schema.peerId,
  hardware: z.strictObject({
    class: hardwareClass,
    count: schema.uint.min(1).max(1_000_000),
    model: schema.shortText.optional(),
    /** How the hardware claim is backed: `nvidia-smi`, `procfs`, or `declared` (unverified). */
    attestationSource: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'expected an attestation source such as nvidia-smi'),
  }),
  jurisdiction: schema.jurisdiction,
  price: z.strictObject({ perEpoch: schema.money, epochMs: schema.uint.min(1) }),
  sla: z.strictObject({ availabilityBp: schema.uint.max(10_000), latencyP95Us: schema.uint }),
  /** Monitors the provider accepts in a contract. */
  monitors: z.array(schema.peerId).max(OFFER_MAX_PEERS),
  /** Arbiters the provider accepts in a contract. */
  arbiters: z.array(schema.peerId).max(OFFER_MAX_PEERS),
  /** Payment rails the provider accepts, e.g. `ledger`, `command`, `http`. */
  rails: z
    .array(z.string().regex(/^[a-z0-9][a-z0-9.-]{0,31}$/))
    .min(1)
    .max(OFFER_MAX_RAILS),
  /** Signed credentials presenting the provider; each reader admits them under its own trust policy. */
  credentials: z.array(z.custom<Credential>((v) => isSignedDocumentShape(v), { message: 'expected a signed credential document' })).max(OFFER_MAX_CREDENTIALS),
  /** The offer is void at and after this time. */
  validUntil: schema.timeMs,
  /** Where the provider can be dialed (multiaddrs). */
  addresses: z.array(multiaddrText).max(OFFER_MAX_ADDRESSES),
})
export type OfferBody = z.infer<typeof offerBodySchema>
export type Offer = SignedDocument<OfferBody>

/** An offer that passed every check, with the credentials the reader's policy admitted. */
export interface VerifiedOffer {
  offer: Offer
  credentials: Credential[]
}

/** Sign `body` as the provider's offer; the signer must be `body.provider`. */
export function signOffer(provider: Identity, body: OfferBody): Offer {
  const checked = parseWith(offerBodySchema, body, 'offer')
  if (checked.provider !== provider.peerId) throw new InvalidOfferError(`offer names provider ${checked.provider} but is signed by ${provider.peerId}`)
  return signDocument(provider, OFFER_DOCUMENT_TYPE, checked)
}

/** Why an offer was refused: the `code` of an `InvalidOfferError`. */
export type OfferFailure = 'schema' | 'signature' | 'signer' | 'expired' | 'credential'

function invalid(code: OfferFailure, message: string, details: Record<string, unknown> = {}, cause?: unknown): InvalidOfferError {
  return new InvalidOfferError(message, { code, ...details }, cause === undefined ? undefined : { cause })
}

export interface VerifyOfferOptions {
  /** The reader's trust policy; at least one credential must be admissible for role provider in the offer's jurisdiction and class. */
  policy: TrustPolicy
  /** The peer the offer came from; it must be the signer. */
  remotePeer?: PeerIdString
  now?: number
}

/**
 * Check an untrusted offer: shape, signature, signer (= provider = remote
 * peer), expiry, and credentials under the reader's policy. Throws
 * `InvalidOfferError` whose `details.code` says which check failed.
 */
export function verifyOffer(value: unknown, opts: VerifyOfferOptions): VerifiedOffer {
  const now = opts.now ?? Date.now()
  let offer: Offer
  try {
    offer = verifyDocument(value, OFFER_DOCUMENT_TYPE, offerBodySchema)
  } catch (err) {
    const name = (err as Error).name
    throw invalid(name === 'SignatureError' ? 'signature' : 'schema', (err as Error).message, {}, err)
  }
  const body = offer.body
  if (offer.by !== body.provider) throw invalid('signer', `offer for provider ${body.provider} is signed by ${offer.by}`)
  if (opts.remotePeer !== undefined && offer.by !== opts.remotePeer) {
    throw invalid('signer', `peer ${opts.remotePeer} served an offer signed by ${offer.by}`, { remotePeer: opts.remotePeer, signer: offer.by })
  }
  if (body.validUntil <= now) throw invalid('expired', `offer expired at ${new Date(body.validUntil).toISOString()}`, { validUntil: body.validUntil })
  const admitted: Credential[] = []
  const refusals: string[] = []
  for (const cred of body.credentials) {
    try {
      admitted.push(
        admitCredential(opts.policy, cred, {
          role: 'provider',
          at: now,
          subject: body.provider,
          jurisdiction: body.jurisdiction,
          hardwareClass: body.hardware.class,
        }),
      )
    } catch (err) {
      refusals.push((err as Error).message)
    }
  }
  if (admitted.length === 0) {
    const why = refusals.length === 0 ? 'it presents none' : refusals.join('; ')
    throw invalid('credential', `no credential of ${body.provider} is admissible as provider in ${body.jurisdiction}: ${why}`, { refusals })
  }
  return { offer, credentials: admitted }
}

/** Price ceiling of a query: at most `perEpoch` per `epochMs`, compared as a rate. */
export interface PriceCeiling {
  perEpoch: Money
  epochMs: number
}

/** True when the offer's rate (amount / epochMs) is at most the ceiling's, in the same asset; exact integer arithmetic. */
export function withinPrice(price: OfferBody['price'], ceiling: PriceCeiling): boolean {
  if (price.perEpoch.asset !== ceiling.perEpoch.asset) return false
  return BigInt(price.perEpoch.amount) * BigInt(ceiling.epochMs) <= BigInt(ceiling.perEpoch.amount) * BigInt(price.epochMs)
}

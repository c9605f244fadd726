/**
 * @tally/core: the record layer's pure primitives. Canonical DAG-CBOR and
 * CIDs, domain-separated Ed25519 signatures, identities, signed third-party
 * documents, pair-log entry envelopes, credentials and trust policies, and
 * the named error classes every package throws.
 */
export * from './errors.ts'
export * from './encoding.ts'
export * from './signing.ts'
export * from './identity.ts'
export * as schema from './schema.ts'
export { parseWith, type Money } from './schema.ts'
export * from './document.ts'
export * from './entry.ts'
export * from './credential.ts'
export * from './polyfill.ts'

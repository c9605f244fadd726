import { z } from 'zod'
import { decode, encode, toBlock, type CID } from './encoding.ts'
import { SignatureError } from './errors.ts'
import type { Identity, PeerIdString } from './identity.ts'
import { publicKeyOfPeer } from './identity.ts'
import { bytes, parseWith, peerId } from './schema.ts'
import { verifySignature } from './signing.ts'

/**
 * A third-party document that keeps its own signature wherever it travels
 * (monitor observations, credentials, rulings, attestations, offers,
 * warrants). It is embedded whole in pair-log entries, never re-signed.
 *
 * Signed bytes: `tally/v1/doc/<type>` NUL dagcbor({type, by, body}).
 */
export interface SignedDocument<B = unknown> {
  type: string
  by: PeerIdString
  body: B
  sig: Uint8Array
}

export const DOCUMENT_TYPE = /^[a-z][a-z0-9-]{0,31}$/

export const signedDocumentSchema = z.strictObject({
  type: z.string().regex(DOCUMENT_TYPE),
  by: peerId,
  body: z.unknown(),
  sig: bytes,
})

function payloadOf(type: string, by: PeerIdString, body: unknown): Uint8Array {
  return encode({ type, by, body })
}

export function signDocument<B>(signer: Identity, type: string, body: B): SignedDocument<B> {
  if (!DOCUMENT_TYPE.test(type)) throw new SignatureError(`invalid document type ${JSON.stringify(type)}`)
  const sig = signer.sign(`doc/${type}`, payloadOf(type, signer.peerId, body))
  return { type, by: signer.peerId, body, sig }
}

/** True when the document's signature verifies for its `by`. */
export function documentSignatureValid(doc: SignedDocument): boolean {
  return verifySignature(`doc/${doc.type}`, payloadOf(doc.type, doc.by, doc.body), doc.sig, publicKeyOfPeer(doc.by))
}

/**
 * Check shape and signature of an untrusted value claimed to be a signed
 * document, optionally of one type, with `bodySchema` for its body.
 */
export function verifyDocument<B>(value: unknown, type: string | undefined, bodySchema: z.ZodType<B>): SignedDocument<B> {
  const doc = parseWith(signedDocumentSchema, value, 'signed document')
  if (type !== undefined && doc.type !== type) {
    throw new SignatureError(`expected a ${type} document, got ${doc.type}`, { expected: type, got: doc.type })
  }
  const body = parseWith(bodySchema, doc.body, `${doc.type} document`)
  if (!documentSignatureValid(doc as SignedDocument)) {
    throw new SignatureError(`${doc.type} document signature by ${doc.by} does not verify`, { type: doc.type, by: doc.by })
  }
  return { type: doc.type, by: doc.by, body, sig: doc.sig }
}

export function isSignedDocumentShape(value: unknown): value is SignedDocument {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) return false
  const keys = Object.keys(value)
  return (
    keys.length === 4 &&
    typeof (value as SignedDocument).type === 'string' &&
    typeof (value as SignedDocument).by === 'string' &&
    (value as SignedDocument).sig instanceof Uint8Array &&
    'body' in value
  )
}

/**
 * Every signed document embedded anywhere in `value` (depth-first, bounded),
 * including documents nested inside other documents' bodies.
 */
export function embeddedDocuments(value: unknown, maxDepth = 16): SignedDocument[] {
  const out: SignedDocument[] = []
  const walk = (v: unknown, depth: number): void => {
    if (depth > maxDepth || v === null || typeof v !== 'object' || v instanceof Uint8Array) return
    if (isSignedDocumentShape(v)) {
      out.push(v)
      walk(v.body, depth + 1)
      return
    }
    if (Array.isArray(v)) {
      for (const item of v) walk(item, depth + 1)
      return
    }
    if ((v as { asCID?: unknown }).asCID === v) return // a CID link
    for (const item of Object.values(v)) walk(item, depth + 1)
  }
  walk(value, 0)
  return out
}

/** Document as a standalone block (for gossip payloads and CAR export). */
export function documentBlock(doc: SignedDocument): { bytes: Uint8Array; cid: CID } {
  return toBlock(doc)
}

export function decodeDocument<B>(data: Uint8Array, type: string | undefined, bodySchema: z.ZodType<B>, maxBytes?: number): SignedDocument<B> {
  return verifyDocument(decode(data, maxBytes), type, bodySchema)
}

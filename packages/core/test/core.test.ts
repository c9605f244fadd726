import { mkdtemp, readFile, stat, chmod, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  admitCredential,
  cidOfBytes,
  decodeEntry,
  documentSignatureValid,
  entrySignatureValid,
  Identity,
  IDENTITY_FILE,
  issueCredential,
  loadOrCreateIdentity,
  OPEN_TRUST_POLICY,
  publicKeyOfPeer,
  signDocument,
  signEntry,
  signingBytes,
  toBlock,
  verifySignature,
  embeddedDocuments,
  type TrustPolicy,
} from '../src/index.ts'

const alice = Identity.fromSeed(new Uint8Array(32).fill(1))
const bob = Identity.fromSeed(new Uint8Array(32).fill(2))
const pair = toBlock({ provider: alice.peerId, consumer: bob.peerId, type: 'tally-pair' }).cid

describe('signatures', () => {
  it('are domain separated: a signature for one purpose never verifies for another', () => {
    const payload = new TextEncoder().encode('same bytes')
    const sig = alice.sign('entry', payload)
    expect(verifySignature('entry', payload, sig, alice.publicKey)).toBe(true)
    expect(verifySignature('checkpoint', payload, sig, alice.publicKey)).toBe(false)
    expect(verifySignature('entry', payload, sig, bob.publicKey)).toBe(false)
    expect(Buffer.from(signingBytes('entry', payload)).toString()).toBe('tally/v1/entry\u0000same bytes')
  })

  it('fromSeed is deterministic and peer ids embed the public key', () => {
    expect(Identity.fromSeed(new Uint8Array(32).fill(1)).peerId).toBe(alice.peerId)
    expect(Buffer.from(publicKeyOfPeer(alice.peerId)).equals(Buffer.from(alice.publicKey))).toBe(true)
  })
})

describe('entries', () => {
  it('round trip through bytes with the same CID and a valid signature', () => {
    const b = signEntry(alice, { v: 1, pair, author: alice.peerId, seq: 1, prev: null, seen: null, time: 5, kind: 'open', body: { role: 'provider' } })
    const d = decodeEntry(b.bytes)
    expect(d.cid.equals(b.cid)).toBe(true)
    expect(d.cid.equals(cidOfBytes(b.bytes))).toBe(true)
    expect(entrySignatureValid(d.entry)).toBe(true)
    expect(entrySignatureValid({ ...d.entry, time: 6 })).toBe(false)
  })

  it('refuse unknown kinds, missing prev and wrong authorship with typed errors', () => {
    const good = signEntry(alice, { v: 1, pair, author: alice.peerId, seq: 1, prev: null, seen: null, time: 5, kind: 'note', body: null })
    const bad = toBlock({ ...good.entry, kind: 'mint-money' }).bytes
    expect(() => decodeEntry(bad)).toThrowError(expect.objectContaining({ name: 'UnknownKindError' }))
    const noPrev = toBlock({ ...good.entry, seq: 2 }).bytes
    expect(() => decodeEntry(noPrev)).toThrowError(expect.objectContaining({ name: 'DecodeError' }))
    expect(() => signEntry(bob, good.entry)).toThrowError(expect.objectContaining({ name: 'SignatureError' }))
  })
})

describe('documents', () => {
  it('keep their own signature when embedded, and are found anywhere in a body', () => {
    const obs = signDocument(bob, 'observation', { subject: alice.peerId, availabilityBp: 9_900 })
    const body = { evidence: [{ doc: obs }], note: 'x' }
    const found = embeddedDocuments(body)
    expect(found).toHaveLength(1)
    expect(documentSignatureValid(found[0]!)).toBe(true)
    expect(documentSignatureValid({ ...obs, type: 'ruling' })).toBe(false)
  })
})

describe('credentials and trust policy', () => {
  const issuer = Identity.fromSeed(new Uint8Array(32).fill(9))
  const cred = issueCredential(issuer, {
    subject: alice.peerId,
    roles: ['provider'],
    jurisdiction: 'DE',
    scope: { maxDealValue: { amount: 10_000, asset: 'USD' }, hardwareClasses: ['gpu.h100'] },
    notBefore: 1_000,
    notAfter: 2_000,
  })
  const policy: TrustPolicy = { issuers: { provider: [issuer.peerId] } }

  it('admits a credential within its window, role, jurisdiction and scope', () => {
    const ok = admitCredential(policy, cred, { role: 'provider', at: 1_500, subject: alice.peerId, jurisdiction: 'DE', hardwareClass: 'gpu.h100' })
    expect(ok.body.subject).toBe(alice.peerId)
  })

  it('refuses each failure with its own error', () => {
    const name = (fn: () => unknown) => {
      try {
        fn()
        return 'none'
      } catch (err) {
        return (err as Error).name
      }
    }
    expect(name(() => admitCredential(policy, cred, { role: 'provider', at: 2_000 }))).toBe('CredentialError')
    expect(name(() => admitCredential(policy, cred, { role: 'provider', at: 999 }))).toBe('CredentialError')
    expect(name(() => admitCredential(policy, cred, { role: 'arbiter', at: 1_500 }))).toBe('CredentialError')
    expect(name(() => admitCredential(policy, cred, { role: 'provider', at: 1_500, jurisdiction: 'FR' }))).toBe('CredentialError')
    expect(name(() => admitCredential(policy, cred, { role: 'provider', at: 1_500, dealValue: { amount: 10_001, asset: 'USD' } }))).toBe('CredentialError')
    expect(name(() => admitCredential({ issuers: { provider: ['self'] } }, cred, { role: 'provider', at: 1_500 }))).toBe('UntrustedIssuerError')
    expect(name(() => admitCredential(policy, { ...cred, body: { ...cred.body, notAfter: 9_999 } }, { role: 'provider', at: 1_500 }))).toBe('SignatureError')
    expect(name(() => admitCredential(policy, { nonsense: true }, { role: 'provider', at: 1_500 }))).toBe('SchemaError')
  })

  it('admits a self-issued credential only where the policy says self', () => {
    const self = issueCredential(alice, { subject: alice.peerId, roles: ['consumer'], jurisdiction: 'US-CA', scope: {}, notBefore: 0, notAfter: 10 })
    expect(admitCredential(OPEN_TRUST_POLICY, self, { role: 'consumer', at: 5, jurisdiction: 'US-CA' }).by).toBe(alice.peerId)
    expect(() => admitCredential(policy, self, { role: 'consumer', at: 5 })).toThrow()
  })
})

describe('identity files', () => {
  it('are created 0600 and reloaded unchanged; loose permissions are refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tally-id-'))
    const first = await loadOrCreateIdentity(dir)
    expect(first.created).toBe(true)
    expect((await stat(join(dir, IDENTITY_FILE))).mode & 0o777).toBe(0o600)
    const again = await loadOrCreateIdentity(dir)
    expect(again.created).toBe(false)
    expect(again.identity.peerId).toBe(first.identity.peerId)
    await chmod(join(dir, IDENTITY_FILE), 0o644)
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ name: 'IdentityError' })
    await chmod(join(dir, IDENTITY_FILE), 0o600)
    await writeFile(join(dir, IDENTITY_FILE), new Uint8Array([1, 2, 3]))
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ name: 'IdentityError' })
    expect((await readFile(join(dir, IDENTITY_FILE))).byteLength).toBe(3)
  })
})

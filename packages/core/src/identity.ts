import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile, chmod, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { privateKeyFromProtobuf, privateKeyFromRaw, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { IdentityError } from './errors.ts'
import { Ed25519Signer, ed25519PublicFromSeed, verifySignature } from './signing.ts'

/** A party's peer id in its string form (base58btc, `12D3KooW…` for Ed25519). */
export type PeerIdString = string

/** The file in a data directory that holds the node's libp2p private key (protobuf), mode 0600. */
export const IDENTITY_FILE = 'identity.key'

/** A party: its libp2p key, peer id and a cached signer. */
export class Identity {
  readonly peerId: PeerIdString
  readonly publicKey: Uint8Array
  /** The libp2p private key, for assembling a libp2p node with the same identity. */
  readonly privateKey: Ed25519PrivateKey
  readonly #signer: Ed25519Signer

  constructor(privateKey: PrivateKey) {
    if (privateKey.type !== 'Ed25519') throw new IdentityError(`identity keys must be Ed25519, got ${privateKey.type}`)
    this.privateKey = privateKey
    this.peerId = peerIdFromPrivateKey(privateKey).toString()
    this.publicKey = privateKey.publicKey.raw
    this.#signer = new Ed25519Signer(privateKey.raw.subarray(0, 32), this.publicKey)
  }

  sign(domain: string, payload: Uint8Array): Uint8Array {
    return this.#signer.sign(domain, payload)
  }

  static generate(): Identity {
    return Identity.fromSeed(randomBytes(32))
  }

  /** Deterministic identity from a 32-byte seed (tests, vectors). */
  static fromSeed(seed: Uint8Array): Identity {
    if (seed.byteLength !== 32) throw new IdentityError(`expected seed of length 32, got length=${seed.byteLength}`)
    return new Identity(privateKeyFromRaw(Buffer.concat([seed, ed25519PublicFromSeed(seed)])))
  }

  static fromProtobuf(bytes: Uint8Array): Identity {
    let key: PrivateKey
    try {
      key = privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new IdentityError('identity key file is not a libp2p private key', {}, { cause: err })
    }
    return new Identity(key)
  }

  toProtobuf(): Uint8Array {
    return privateKeyToProtobuf(this.privateKey)
  }
}

/**
 * Load the identity kept in `dataDir`, creating one (mode 0600) on first
 * use. Refuses a key file readable by group or others, as ssh does.
 */
export async function loadOrCreateIdentity(dataDir: string): Promise<{ identity: Identity; created: boolean }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const file = join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new IdentityError(`cannot read identity file ${file}: ${(err as Error).message}`, { file }, { cause: err })
    }
  }
  if (bytes !== undefined) {
    const mode = (await stat(file)).mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new IdentityError(`identity file ${file} has mode ${mode.toString(8)}; run chmod 600 ${file}`, { file, mode })
    }
    return { identity: Identity.fromProtobuf(bytes), created: false }
  }
  const identity = Identity.generate()
  await writeFile(file, identity.toProtobuf(), { mode: 0o600, flag: 'wx' })
  await chmod(file, 0o600)
  return { identity, created: true }
}

const peerKeyCache = new Map<string, Uint8Array>()

/** Raw Ed25519 public key embedded in an Ed25519 peer id string. */
export function publicKeyOfPeer(peerId: PeerIdString): Uint8Array {
  let key = peerKeyCache.get(peerId)
  if (key === undefined) {
    let parsed: ReturnType<typeof peerIdFromString>
    try {
      parsed = peerIdFromString(peerId)
    } catch (err) {
      throw new IdentityError(`not a peer id: ${JSON.stringify(String(peerId).slice(0, 80))}`, {}, { cause: err })
    }
    if (parsed.type !== 'Ed25519') throw new IdentityError(`peer ${peerId} is not an Ed25519 peer id`)
    key = parsed.publicKey.raw
    if (peerKeyCache.size > 4096) peerKeyCache.clear()
    peerKeyCache.set(peerId, key)
  }
  return key
}

/** True when `peerId` is a well-formed Ed25519 peer id string. */
export function isPeerId(peerId: unknown): peerId is PeerIdString {
  if (typeof peerId !== 'string' || peerId.length > 128) return false
  try {
    publicKeyOfPeer(peerId)
    return true
  } catch {
    return false
  }
}

/** Verify a signature by the party named by `peerId`. */
export function verifyByPeer(peerId: PeerIdString, domain: string, payload: Uint8Array, sig: Uint8Array): boolean {
  return verifySignature(domain, payload, sig, publicKeyOfPeer(peerId))
}

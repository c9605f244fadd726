/**
 * RFC 6962 (Certificate Transparency) Merkle trees over entry CIDs.
 * Leaf hash: SHA-256(0x00 || CID bytes); node hash: SHA-256(0x01 || left || right);
 * the empty tree: SHA-256(""). Roots, audit paths (RFC 6962 2.1.1) and
 * consistency proofs (2.1.2), with the verifiers of RFC 9162 2.1.3.2 / 2.1.4.2.
 */
import { hash } from 'node:crypto'
import { ProofError } from './errors.ts'

export const HASH_BYTES = 32

let scratch = new Uint8Array(1 + 2 * HASH_BYTES)

function sha256(b: Uint8Array): Uint8Array {
  const d = hash('sha256', b, 'buffer') as unknown as Uint8Array
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}

export function leafHash(data: Uint8Array): Uint8Array {
  if (scratch.byteLength < data.byteLength + 1) scratch = new Uint8Array(data.byteLength + 1)
  scratch[0] = 0
  scratch.set(data, 1)
  return sha256(scratch.subarray(0, data.byteLength + 1))
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.byteLength !== HASH_BYTES || right.byteLength !== HASH_BYTES) throw new ProofError('Merkle nodes are 32-byte hashes')
  scratch[0] = 1
  scratch.set(left, 1)
  scratch.set(right, 1 + HASH_BYTES)
  return sha256(scratch.subarray(0, 1 + 2 * HASH_BYTES))
}

export const EMPTY_ROOT = sha256(new Uint8Array(0))

/**
 * An append-only tree kept as its perfect subtrees (a compact range):
 * O(log n) memory, O(1) amortised per leaf, root in O(log n).
 */
export class MerkleFrontier {
  /** Roots of the perfect subtrees, largest first; `sizes[i]` leaves under `nodes[i]`. */
  nodes: Uint8Array[] = []
  sizes: number[] = []
  size = 0

  addLeafHash(h: Uint8Array): void {
    let node = h
    let size = 1
    while (this.sizes.length > 0 && this.sizes[this.sizes.length - 1] === size) {
      const left = this.nodes.pop()!
      this.sizes.pop()
      node = nodeHash(left, node)
      size *= 2
    }
    this.nodes.push(node)
    this.sizes.push(size)
    this.size++
  }

  add(data: Uint8Array): void {
    this.addLeafHash(leafHash(data))
  }

  root(): Uint8Array {
    if (this.nodes.length === 0) return EMPTY_ROOT
    let acc = this.nodes[this.nodes.length - 1]!
    for (let i = this.nodes.length - 2; i >= 0; i--) acc = nodeHash(this.nodes[i]!, acc)
    return acc
  }

  clone(): MerkleFrontier {
    const f = new MerkleFrontier()
    f.nodes = this.nodes.slice()
    f.sizes = this.sizes.slice()
    f.size = this.size
    return f
  }
}

function isPowerOfTwo(n: number): boolean {
  let k = 1
  while (k < n) k *= 2
  return k === n
}

/** Largest power of two strictly less than n (n >= 2). */
function split(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** MTH over leaf hashes[lo, hi). */
export function rootOf(leaves: readonly Uint8Array[], lo = 0, hi = leaves.length): Uint8Array {
  const n = hi - lo
  if (n === 0) return EMPTY_ROOT
  if (n === 1) return leaves[lo]!
  const k = split(n)
  return nodeHash(rootOf(leaves, lo, lo + k), rootOf(leaves, lo + k, hi))
}

/** RFC 6962 PATH(m, D[n]) over leaf hashes. */
export function auditPath(leaves: readonly Uint8Array[], m: number, lo = 0, hi = leaves.length): Uint8Array[] {
  const n = hi - lo
  if (m < 0 || m >= n) throw new ProofError(`leaf index ${m} out of range for tree size ${n}`)
  if (n === 1) return []
  const k = split(n)
  if (m < k) return [...auditPath(leaves, m, lo, lo + k), rootOf(leaves, lo + k, hi)]
  return [...auditPath(leaves, m - k, lo + k, hi), rootOf(leaves, lo, lo + k)]
}

/** RFC 9162 2.1.3.2: the root an audit path leads to, or undefined if the path has the wrong length. */
export function rootFromAuditPath(leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[]): Uint8Array | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return undefined
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of path) {
    if (p.byteLength !== HASH_BYTES || sn === 0) return undefined
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 ? r : undefined
}

export function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

export function verifyAuditPath(leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[], root: Uint8Array): boolean {
  const r = rootFromAuditPath(leaf, index, size, path)
  return r !== undefined && bytesEq(r, root)
}

/** RFC 6962 PROOF(m, D[n]): the consistency proof from the first m leaves to all n. */
export function consistencyProof(leaves: readonly Uint8Array[], m: number): Uint8Array[] {
  const n = leaves.length
  if (m < 1 || m > n) throw new ProofError(`consistency proof needs 1 <= m <= n, got m=${m} n=${n}`)
  const sub = (mm: number, lo: number, hi: number, complete: boolean): Uint8Array[] => {
    const size = hi - lo
    if (mm === size) return complete ? [] : [rootOf(leaves, lo, hi)]
    const k = split(size)
    if (mm <= k) return [...sub(mm, lo, lo + k, complete), rootOf(leaves, lo + k, hi)]
    return [...sub(mm - k, lo + k, hi, false), rootOf(leaves, lo, lo + k)]
  }
  return sub(m, 0, n, true)
}

/** RFC 9162 2.1.4.2: true when `proof` shows the tree (size1, root1) is a prefix of (size2, root2). */
export function verifyConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size2 < size1) return false
  if (size1 === size2) return proof.length === 0 && bytesEq(root1, root2)
  if (proof.length === 0 || proof.some((p) => p.byteLength !== HASH_BYTES)) return false
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof.slice()
  let fn = size1 - 1
  let sn = size2 - 1
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  let fr = path[0]!
  let sr = path[0]!
  for (const c of path.slice(1)) {
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && bytesEq(fr, root1) && bytesEq(sr, root2)
}

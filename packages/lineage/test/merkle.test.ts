import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { EMPTY_ROOT, MerkleFrontier, auditPath, consistencyProof, leafHash, nodeHash, rootOf, verifyAuditPath, verifyConsistency } from '../src/merkle.ts'

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Uint8Array.of(i, i >> 8)))

describe('RFC 6962 Merkle trees', () => {
  it('hashes leaves and nodes with domain prefixes and has the empty root of SHA-256("")', () => {
    const sha = (...parts: Uint8Array[]) => new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest())
    expect(leafHash(Uint8Array.of(7))).toEqual(sha(Uint8Array.of(0, 7)))
    const a = leafHash(Uint8Array.of(1))
    const b = leafHash(Uint8Array.of(2))
    expect(nodeHash(a, b)).toEqual(sha(Uint8Array.of(1), a, b))
    expect(EMPTY_ROOT).toEqual(sha())
    // Three leaves: the split is at the largest power of two below n.
    const l = leaves(3)
    expect(rootOf(l)).toEqual(nodeHash(nodeHash(l[0]!, l[1]!), l[2]!))
  })

  it('keeps a frontier whose root equals the full computation at every size', () => {
    const all = leaves(70)
    const f = new MerkleFrontier()
    expect(f.root()).toEqual(EMPTY_ROOT)
    for (let n = 1; n <= all.length; n++) {
      f.addLeafHash(all[n - 1]!)
      expect(f.root()).toEqual(rootOf(all.slice(0, n)))
    }
  })

  it('proves and verifies inclusion of every leaf for sizes 1..40, and rejects wrong proofs', () => {
    for (let n = 1; n <= 40; n++) {
      const l = leaves(n)
      const root = rootOf(l)
      for (let m = 0; m < n; m++) {
        const path = auditPath(l, m)
        expect(verifyAuditPath(l[m]!, m, n, path, root)).toBe(true)
        if (n > 1) {
          expect(verifyAuditPath(l[(m + 1) % n]!, m, n, path, root)).toBe(false)
          expect(verifyAuditPath(l[m]!, (m + 1) % n, n, path, root)).toBe(false)
        }
        expect(verifyAuditPath(l[m]!, m, n, path.slice(1), root)).toBe(n === 1)
      }
    }
  })

  it('proves and verifies consistency between every pair of sizes up to 33', () => {
    const all = leaves(33)
    for (let n = 1; n <= all.length; n++) {
      const l = all.slice(0, n)
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(l, m)
        expect(verifyConsistency(m, n, proof, rootOf(l.slice(0, m)), rootOf(l))).toBe(true)
        if (m < n) {
          const other = leaves(m).map((x) => nodeHash(x, x))
          expect(verifyConsistency(m, n, proof, rootOf(other), rootOf(l))).toBe(false)
        }
      }
    }
  })
})

import type { CID } from '@tally/core'

/**
 * A map keyed by CID without building CID strings (base32 on every entry
 * shows in profiles): bucketed by 48 bits of the digest, exact by equals.
 */
export class CidMap<V> {
  readonly #buckets = new Map<number, [CID, V][]>()
  #size = 0

  get size(): number {
    return this.#size
  }

  static #slot(cid: CID): number {
    const d = cid.multihash.digest
    if (d.byteLength < 6) {
      let n = d.byteLength
      for (const x of d) n = n * 256 + x
      return n
    }
    return ((d[0]! * 256 + d[1]!) * 256 + d[2]!) * 16777216 + ((d[3]! << 16) | (d[4]! << 8) | d[5]!)
  }

  get(cid: CID): V | undefined {
    const b = this.#buckets.get(CidMap.#slot(cid))
    if (b === undefined) return undefined
    for (const [k, v] of b) if (k.equals(cid)) return v
    return undefined
  }

  set(cid: CID, value: V): void {
    const slot = CidMap.#slot(cid)
    const b = this.#buckets.get(slot)
    if (b === undefined) {
      this.#buckets.set(slot, [[cid, value]])
      this.#size++
      return
    }
    for (const kv of b) {
      if (kv[0].equals(cid)) {
        kv[1] = value
        return
      }
    }
    b.push([cid, value])
    this.#size++
  }

  delete(cid: CID): void {
    const slot = CidMap.#slot(cid)
    const b = this.#buckets.get(slot)
    if (b === undefined) return
    const i = b.findIndex(([k]) => k.equals(cid))
    if (i < 0) return
    b.splice(i, 1)
    this.#size--
    if (b.length === 0) this.#buckets.delete(slot)
  }

  clear(): void {
    this.#buckets.clear()
    this.#size = 0
  }
}

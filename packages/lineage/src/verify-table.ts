/**
 * The verifier's per-entry records as struct-of-arrays: typed arrays and a
 * packed digest arena, no object per entry. 100,000 entries take ~16 MB
 * outside the JS heap and leave the garbage collector nothing to trace.
 * An entry is its index `i`.
 */
import { ENTRY_KINDS } from '@tally/core'
import type { EnvelopeScan } from './entry-codec.ts'

export const HAS_PREV = 1
export const HAS_SEEN = 2
export const REACHED = 4
export const SUSPECT = 8

const KIND_INDEX = new Map<string, number>(ENTRY_KINDS.map((k, i) => [k, i]))

export function eq32(a: Uint8Array, ai: number, b: Uint8Array, bi: number): boolean {
  for (let i = 0; i < 32; i++) if (a[ai + i] !== b[bi + i]) return false
  return true
}

export class EntryTable {
  count = 0
  #cap = 0
  /** Three digests per entry: its own (the hash of its bytes), prev, seen. */
  digests = new Uint8Array(0)
  seq = new Float64Array(0)
  time = new Float64Array(0)
  dataOffset = new Float64Array(0)
  dataLength = new Uint32Array(0)
  seenSeq = new Float64Array(0)
  kind = new Uint8Array(0)
  author = new Uint16Array(0)
  flags = new Uint8Array(0)
  readonly authors: string[] = []
  readonly #authorIndex = new Map<string, number>()

  constructor(expected = 1024) {
    this.#grow(Math.max(16, expected))
  }

  #grow(cap: number): void {
    const grow = <T extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(cap * per)
      b.set(a.subarray(0, this.count * per) as never)
      return b
    }
    this.digests = grow(this.digests, (n) => new Uint8Array(n), 96)
    this.seq = grow(this.seq, (n) => new Float64Array(n))
    this.time = grow(this.time, (n) => new Float64Array(n))
    this.dataOffset = grow(this.dataOffset, (n) => new Float64Array(n))
    this.dataLength = grow(this.dataLength, (n) => new Uint32Array(n))
    this.seenSeq = grow(this.seenSeq, (n) => new Float64Array(n))
    this.kind = grow(this.kind, (n) => new Uint8Array(n))
    this.author = grow(this.author, (n) => new Uint16Array(n))
    this.flags = grow(this.flags, (n) => new Uint8Array(n))
    this.#cap = cap
  }

  authorIndex(peer: string): number {
    let i = this.#authorIndex.get(peer)
    if (i === undefined) {
      i = this.authors.length
      this.authors.push(peer)
      this.#authorIndex.set(peer, i)
    }
    return i
  }

  /** Index of an author if it was seen, -1 otherwise. */
  findAuthor(peer: string): number {
    return this.#authorIndex.get(peer) ?? -1
  }

  /** Record an entry: its own digest, and its fields as scanEnvelope found them in `data`. */
  add(own: Uint8Array, data: Uint8Array, fields: EnvelopeScan, dataOffset: number, dataLength: number, suspect: boolean): number {
    const prevAt = fields.prevDigestAt
    const seenAt = fields.seenDigestAt
    if (this.count === this.#cap) this.#grow(Math.ceil(this.#cap * 1.5))
    const i = this.count++
    this.digests.set(own.subarray(0, 32), i * 96)
    let flags = suspect ? SUSPECT : 0
    if (prevAt >= 0) {
      this.digests.set(data.subarray(prevAt, prevAt + 32), i * 96 + 32)
      flags |= HAS_PREV
    }
    if (seenAt >= 0) {
      this.digests.set(data.subarray(seenAt, seenAt + 32), i * 96 + 64)
      flags |= HAS_SEEN
    }
    this.flags[i] = flags
    this.seq[i] = fields.seq
    this.time[i] = fields.time
    this.kind[i] = KIND_INDEX.get(fields.kind) ?? 255
    this.author[i] = this.authorIndex(fields.author)
    this.dataOffset[i] = dataOffset
    this.dataLength[i] = dataLength
    return i
  }

  kindOf(i: number): string {
    return ENTRY_KINDS[this.kind[i]!] ?? '?'
  }

  authorOf(i: number): string {
    return this.authors[this.author[i]!]!
  }

  own(i: number): Uint8Array {
    return this.digests.subarray(i * 96, i * 96 + 32)
  }

  prev(i: number): Uint8Array | undefined {
    return (this.flags[i]! & HAS_PREV) === 0 ? undefined : this.digests.subarray(i * 96 + 32, i * 96 + 64)
  }

  /** Entry i's own digest equals `d` (at offset `off`). */
  is(i: number, d: Uint8Array, off = 0): boolean {
    return eq32(this.digests, i * 96, d, off)
  }

  /** Entry i's own digest equals entry j's prev (which = 1) or seen (which = 2). */
  isLinkOf(i: number, j: number, which: 1 | 2): boolean {
    return eq32(this.digests, i * 96, this.digests, j * 96 + which * 32)
  }

  reached(i: number): boolean {
    return (this.flags[i]! & REACHED) !== 0
  }
}

/**
 * A fast path for the entry envelope of @tally/core, byte-for-byte equal
 * to core's `signEntry`/`decodeEntry` (tests compare them on random
 * entries and mutated bytes). Append and verify spend most of their time
 * in generic DAG-CBOR; the envelope has a fixed canonical layout, so only
 * the body goes through the generic codec. Anything that is not exactly the
 * canonical layout falls back to core, which decides (and names the error).
 *
 * Canonical key order (length first, then bytewise):
 *   v seq sig body kind pair prev seen time author
 */
import { hash } from 'node:crypto'
import * as Digest from 'multiformats/hashes/digest'
import {
  CID,
  type EntryBlock,
  type EntryFields,
  type Entry,
  ENTRY_KINDS,
  ENTRY_SIGNING_DOMAIN,
  type Identity,
  MAX_ENTRY_BYTES,
  SignatureError,
  DecodeError,
  decode,
  decodeEntry,
  encode,
  isPeerId,
} from '@tally/core'

const KEY_V = Uint8Array.of(0x61, 0x76)
const KEY_SEQ = Uint8Array.of(0x63, 0x73, 0x65, 0x71)
const KEY_SIG = Uint8Array.of(0x63, 0x73, 0x69, 0x67)
const KEY_BODY = Uint8Array.of(0x64, 0x62, 0x6f, 0x64, 0x79)
const KEY_KIND = Uint8Array.of(0x64, 0x6b, 0x69, 0x6e, 0x64)
const KEY_PAIR = Uint8Array.of(0x64, 0x70, 0x61, 0x69, 0x72)
const KEY_PREV = Uint8Array.of(0x64, 0x70, 0x72, 0x65, 0x76)
const KEY_SEEN = Uint8Array.of(0x64, 0x73, 0x65, 0x65, 0x6e)
const KEY_TIME = Uint8Array.of(0x64, 0x74, 0x69, 0x6d, 0x65)
const KEY_AUTHOR = Uint8Array.of(0x66, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72)
/** tag(42), bytes(37), 0x00 multibase-identity prefix, CIDv1 dag-cbor sha2-256 (32-byte digest). */
const CID_PREFIX = Uint8Array.of(0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x12, 0x20)
const CID_FIELD_BYTES = CID_PREFIX.byteLength + 32
const NULL = 0xf6
const MAX_SAFE_HIGH = 0x1fffff // high 32 bits of Number.MAX_SAFE_INTEGER

const KIND_SET: ReadonlySet<string> = new Set(ENTRY_KINDS)
const textEncoder = new TextEncoder()
const utf8Cache = new Map<string, Uint8Array>()

/** Authors and kinds repeat on every entry: encode each once. */
function utf8Of(s: string): Uint8Array {
  let b = utf8Cache.get(s)
  if (b === undefined) {
    b = textEncoder.encode(s)
    if (utf8Cache.size >= 1024) utf8Cache.clear()
    utf8Cache.set(s, b)
  }
  return b
}

// ---------------------------------------------------------------------------
// Encoding

class Writer {
  buf: Uint8Array
  pos = 0
  constructor(size: number) {
    this.buf = new Uint8Array(size)
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return
    const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.pos + n))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.byteLength)
    this.buf.set(b, this.pos)
    this.pos += b.byteLength
  }
  head(major: number, n: number): void {
    this.ensure(9)
    const b = this.buf
    const m = major << 5
    if (n < 24) b[this.pos++] = m | n
    else if (n < 0x100) {
      b[this.pos++] = m | 24
      b[this.pos++] = n
    } else if (n < 0x10000) {
      b[this.pos++] = m | 25
      b[this.pos++] = n >>> 8
      b[this.pos++] = n & 0xff
    } else if (n < 0x100000000) {
      b[this.pos++] = m | 26
      b[this.pos++] = n >>> 24
      b[this.pos++] = (n >>> 16) & 0xff
      b[this.pos++] = (n >>> 8) & 0xff
      b[this.pos++] = n & 0xff
    } else {
      const hi = Math.floor(n / 0x100000000)
      const lo = n >>> 0
      b[this.pos++] = m | 27
      b[this.pos++] = hi >>> 24
      b[this.pos++] = (hi >>> 16) & 0xff
      b[this.pos++] = (hi >>> 8) & 0xff
      b[this.pos++] = hi & 0xff
      b[this.pos++] = lo >>> 24
      b[this.pos++] = (lo >>> 16) & 0xff
      b[this.pos++] = (lo >>> 8) & 0xff
      b[this.pos++] = lo & 0xff
    }
  }
  text(s: string): void {
    const utf8 = utf8Of(s)
    this.head(3, utf8.byteLength)
    this.bytes(utf8)
  }
  cidOrNull(c: CID | null): void {
    if (c === null) {
      this.ensure(1)
      this.buf[this.pos++] = NULL
      return
    }
    const raw = c.bytes
    this.ensure(raw.byteLength + 6)
    this.buf[this.pos++] = 0xd8
    this.buf[this.pos++] = 0x2a
    this.head(2, raw.byteLength + 1)
    this.buf[this.pos++] = 0
    this.bytes(raw)
  }
}

function fastEncodable(f: EntryFields): boolean {
  return (
    f.v === 1 &&
    Number.isSafeInteger(f.seq) &&
    f.seq >= 1 &&
    Number.isSafeInteger(f.time) &&
    f.time >= 0 &&
    typeof f.author === 'string' &&
    typeof f.kind === 'string' &&
    CID.asCID(f.pair) !== null &&
    (f.prev === null || CID.asCID(f.prev) !== null) &&
    (f.seen === null || CID.asCID(f.seen) !== null)
  )
}

/** The two parts of the envelope around the signature: `v seq` and `body … author`. */
function encodeParts(f: EntryFields): { head: Uint8Array; tail: Uint8Array } {
  const h = new Writer(16)
  h.bytes(KEY_V)
  h.head(0, 1)
  h.bytes(KEY_SEQ)
  h.head(0, f.seq)
  const body = encode(f.body)
  const w = new Writer(body.byteLength + 200)
  w.bytes(KEY_BODY)
  w.bytes(body)
  w.bytes(KEY_KIND)
  w.text(f.kind)
  w.bytes(KEY_PAIR)
  w.cidOrNull(f.pair)
  w.bytes(KEY_PREV)
  w.cidOrNull(f.prev)
  w.bytes(KEY_SEEN)
  w.cidOrNull(f.seen)
  w.bytes(KEY_TIME)
  w.head(0, f.time)
  w.bytes(KEY_AUTHOR)
  w.text(f.author)
  return { head: h.buf.subarray(0, h.pos), tail: w.buf.subarray(0, w.pos) }
}

/**
 * Sign entry fields as `identity`; the same result as core's `signEntry`
 * with one DAG-CBOR pass over the body instead of two over the entry.
 */
export function signEntryFast(identity: Identity, fields: EntryFields): EntryBlock {
  if (fields.author !== identity.peerId) throw new SignatureError('entry author is not the signing identity')
  if (!fastEncodable(fields)) {
    throw new SignatureError('entry fields are not a valid envelope (v 1, integer seq >= 1 and time, CIDs)')
  }
  const { head, tail } = encodeParts(fields)
  const signed = new Uint8Array(1 + head.byteLength + tail.byteLength)
  signed[0] = 0xa9 // map(9): the fields without sig
  signed.set(head, 1)
  signed.set(tail, 1 + head.byteLength)
  const sig = identity.sign(ENTRY_SIGNING_DOMAIN, signed)
  const w = new Writer(signed.byteLength + sig.byteLength + 8)
  w.buf[w.pos++] = 0xaa // map(10)
  w.bytes(head)
  w.bytes(KEY_SIG)
  w.head(2, sig.byteLength)
  w.bytes(sig)
  w.bytes(tail)
  const data = w.buf.subarray(0, w.pos)
  if (data.byteLength > MAX_ENTRY_BYTES) throw new DecodeError(`entry of ${data.byteLength} bytes exceeds limit ${MAX_ENTRY_BYTES}`)
  const entry: Entry = { ...fields, sig }
  return { entry, bytes: data, cid: cidOf(data) }
}

/** CIDv1 dag-cbor sha2-256 of bytes (one-shot hash: faster than a Hash object per entry). */
function cidOf(data: Uint8Array): CID {
  const d = hash('sha256', data, 'buffer') as unknown as Uint8Array
  return remember(cidOfDigest(d, 0))
}

/** The binary CID prefix of every entry link: v1, dag-cbor, sha2-256, 32 bytes. */
const CID_HEAD = Uint8Array.of(0x01, 0x71, 0x12, 0x20)

/** A CIDv1 dag-cbor sha2-256 from the 32-byte digest at `at`, laid out as `CID.decode` lays it out (views into one array). */
function cidOfDigest(src: Uint8Array, at: number): CID {
  const bytes = new Uint8Array(36)
  bytes.set(CID_HEAD, 0)
  bytes.set(src.subarray(at, at + 32), 4)
  return new CID(1, 0x71, new Digest.Digest(0x12, 32, bytes.subarray(4), bytes.subarray(2)), bytes)
}

/**
 * Recently made entry CIDs. Along a chain the pair id repeats and each
 * `prev` is the CID computed for the entry before, so decoding reuses
 * those (immutable) objects instead of building new ones.
 */
const recentCids: (CID | undefined)[] = [undefined, undefined, undefined, undefined]
let recentNext = 0

function remember(cid: CID): CID {
  recentCids[recentNext] = cid
  recentNext = (recentNext + 1) & 3
  return cid
}

function digestIs(cid: CID, b: Uint8Array, at: number): boolean {
  const c = cid.bytes
  for (let i = 0; i < 32; i++) if (c[4 + i] !== b[at + i]) return false
  return true
}

// ---------------------------------------------------------------------------
// Decoding

/** Where the parts of a canonical envelope lie in its bytes. Offsets of CIDs point at the 32-byte digest. */
export interface EnvelopeScan {
  seq: number
  time: number
  kind: string
  author: string
  pairDigestAt: number
  /** -1 for null. */
  prevDigestAt: number
  /** -1 for null. */
  seenDigestAt: number
  sigStart: number
  sigEnd: number
  bodyStart: number
  bodyEnd: number
}

const NOT_CANONICAL = -1

/** Minimal-length CBOR head of `major` at `pos`; returns [value, next] or undefined. */
function readHead(b: Uint8Array, pos: number, major: number): [number, number] | undefined {
  if (pos >= b.byteLength) return undefined
  const ib = b[pos]!
  if (ib >> 5 !== major) return undefined
  const ai = ib & 0x1f
  if (ai < 24) return [ai, pos + 1]
  if (ai === 24) {
    if (pos + 2 > b.byteLength) return undefined
    const v = b[pos + 1]!
    return v < 24 ? undefined : [v, pos + 2]
  }
  if (ai === 25) {
    if (pos + 3 > b.byteLength) return undefined
    const v = (b[pos + 1]! << 8) | b[pos + 2]!
    return v < 0x100 ? undefined : [v, pos + 3]
  }
  if (ai === 26) {
    if (pos + 5 > b.byteLength) return undefined
    const v = ((b[pos + 1]! << 24) | (b[pos + 2]! << 16) | (b[pos + 3]! << 8) | b[pos + 4]!) >>> 0
    return v < 0x10000 ? undefined : [v, pos + 5]
  }
  if (ai === 27) {
    if (pos + 9 > b.byteLength) return undefined
    const hi = ((b[pos + 1]! << 24) | (b[pos + 2]! << 16) | (b[pos + 3]! << 8) | b[pos + 4]!) >>> 0
    const lo = ((b[pos + 5]! << 24) | (b[pos + 6]! << 16) | (b[pos + 7]! << 8) | b[pos + 8]!) >>> 0
    if (hi === 0 || hi > MAX_SAFE_HIGH) return undefined
    return [hi * 0x100000000 + lo, pos + 9]
  }
  return undefined
}

function match(b: Uint8Array, pos: number, key: Uint8Array): number {
  if (pos + key.byteLength > b.byteLength) return NOT_CANONICAL
  for (let i = 0; i < key.byteLength; i++) if (b[pos + i] !== key[i]) return NOT_CANONICAL
  return pos + key.byteLength
}

/** Offset of the digest of a canonical CID field at `pos`, NOT_CANONICAL otherwise; null gives -2. */
function cidField(b: Uint8Array, pos: number, nullable: boolean): number {
  if (nullable && b[pos] === NULL) return -2
  return match(b, pos, CID_PREFIX) === NOT_CANONICAL || pos + CID_FIELD_BYTES > b.byteLength ? NOT_CANONICAL : pos + CID_PREFIX.byteLength
}

interface CachedText {
  bytes: Uint8Array
  text: string
}
/** Authors and kinds repeat on every entry of a log: reuse their strings. */
const textCache: CachedText[] = []

function asciiText(b: Uint8Array, pos: number): [string, number] | undefined {
  const h = readHead(b, pos, 3)
  if (h === undefined) return undefined
  const [len, start] = h
  const end = start + len
  if (end > b.byteLength || len > 128) return undefined
  outer: for (const c of textCache) {
    if (c.bytes.byteLength !== len) continue
    for (let i = 0; i < len; i++) if (c.bytes[i] !== b[start + i]) continue outer
    return [c.text, end]
  }
  let s = ''
  for (let i = start; i < end; i++) {
    const c = b[i]!
    if (c >= 0x80) return undefined
    s += String.fromCharCode(c)
  }
  return [s, end]
}

/** Remember a validated author or kind string. */
function cacheText(text: string): void {
  if (textCache.length >= 64) textCache.shift()
  textCache.push({ bytes: utf8Of(text), text })
}

const validAuthors = new Set<string>()

/** End of the well-formed definite-length CBOR item at `pos`, or NOT_CANONICAL. */
export function skipItem(b: Uint8Array, pos: number, depth = 0): number {
  if (depth > 64 || pos >= b.byteLength) return NOT_CANONICAL
  const ib = b[pos]!
  const major = ib >> 5
  const ai = ib & 0x1f
  let n: number
  let next: number
  if (ai < 24) {
    n = ai
    next = pos + 1
  } else if (ai <= 27) {
    const size = 1 << (ai - 24)
    if (pos + 1 + size > b.byteLength) return NOT_CANONICAL
    n = 0
    for (let i = 0; i < size; i++) n = n * 256 + b[pos + 1 + i]!
    next = pos + 1 + size
  } else return NOT_CANONICAL
  switch (major) {
    case 0:
    case 1:
      return next
    case 2:
    case 3:
      return next + n > b.byteLength ? NOT_CANONICAL : next + n
    case 4:
      for (let i = 0; i < n; i++) {
        next = skipItem(b, next, depth + 1)
        if (next === NOT_CANONICAL) return NOT_CANONICAL
      }
      return next
    case 5:
      for (let i = 0; i < 2 * n; i++) {
        next = skipItem(b, next, depth + 1)
        if (next === NOT_CANONICAL) return NOT_CANONICAL
      }
      return next
    case 6:
      return skipItem(b, next, depth + 1)
    default:
      // major 7: simple values and floats; the head already covered their bytes
      return next
  }
}

/**
 * Locate the parts of a canonical entry envelope without building objects.
 * Returns undefined for anything not in the exact canonical layout (the
 * caller then falls back to core's strict decoder). The body's extent is
 * found here; its validity is for the caller to check by decoding it.
 */
export function scanEnvelope(b: Uint8Array): EnvelopeScan | undefined {
  if (b.byteLength > MAX_ENTRY_BYTES || b[0] !== 0xaa) return undefined
  let p = match(b, 1, KEY_V)
  if (p === NOT_CANONICAL || b[p] !== 0x01) return undefined
  p = match(b, p + 1, KEY_SEQ)
  if (p === NOT_CANONICAL) return undefined
  const seqH = readHead(b, p, 0)
  if (seqH === undefined || seqH[0] < 1) return undefined
  const seq = seqH[0]
  p = match(b, seqH[1], KEY_SIG)
  if (p === NOT_CANONICAL) return undefined
  const sigH = readHead(b, p, 2)
  if (sigH === undefined) return undefined
  const sigStart = sigH[1]
  const sigEnd = sigStart + sigH[0]
  if (sigEnd > b.byteLength) return undefined
  const bodyStart = match(b, sigEnd, KEY_BODY)
  if (bodyStart === NOT_CANONICAL) return undefined
  const bodyEnd = skipItem(b, bodyStart)
  if (bodyEnd === NOT_CANONICAL) return undefined
  p = match(b, bodyEnd, KEY_KIND)
  if (p === NOT_CANONICAL) return undefined
  const kindT = asciiText(b, p)
  if (kindT === undefined || !KIND_SET.has(kindT[0])) return undefined
  if (!textCache.some((c) => c.text === kindT[0])) cacheText(kindT[0])
  p = match(b, kindT[1], KEY_PAIR)
  if (p === NOT_CANONICAL) return undefined
  const pairDigestAt = cidField(b, p, false)
  if (pairDigestAt < 0) return undefined
  p = match(b, pairDigestAt + 32, KEY_PREV)
  if (p === NOT_CANONICAL) return undefined
  const prevAt = cidField(b, p, true)
  if (prevAt === NOT_CANONICAL) return undefined
  p = match(b, prevAt === -2 ? p + 1 : prevAt + 32, KEY_SEEN)
  if (p === NOT_CANONICAL) return undefined
  const seenAt = cidField(b, p, true)
  if (seenAt === NOT_CANONICAL) return undefined
  p = match(b, seenAt === -2 ? p + 1 : seenAt + 32, KEY_TIME)
  if (p === NOT_CANONICAL) return undefined
  const timeH = readHead(b, p, 0)
  if (timeH === undefined) return undefined
  p = match(b, timeH[1], KEY_AUTHOR)
  if (p === NOT_CANONICAL) return undefined
  const authorT = asciiText(b, p)
  if (authorT === undefined || authorT[1] !== b.byteLength) return undefined
  if ((seq === 1) !== (prevAt === -2)) return undefined
  if (!validAuthors.has(authorT[0])) {
    if (!isPeerId(authorT[0])) return undefined
    if (validAuthors.size >= 4096) validAuthors.clear()
    validAuthors.add(authorT[0])
    cacheText(authorT[0])
  }
  return {
    seq,
    time: timeH[0],
    kind: kindT[0],
    author: authorT[0],
    pairDigestAt,
    prevDigestAt: prevAt === -2 ? -1 : prevAt,
    seenDigestAt: seenAt === -2 ? -1 : seenAt,
    sigStart,
    sigEnd,
    bodyStart,
    bodyEnd,
  }
}

/** A fresh plain Uint8Array copy (Buffer#slice would return a view of type Buffer). */
function copy(b: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start)
  out.set(b.subarray(start, end))
  return out
}

/** The CID whose digest is at `digestAt` (the scanner has checked its prefix is CID_HEAD). */
function cidAt(b: Uint8Array, digestAt: number): CID {
  for (const c of recentCids) if (c !== undefined && digestIs(c, b, digestAt)) return c
  return remember(cidOfDigest(b, digestAt))
}

/**
 * Decode entry bytes; the same result and errors as core's `decodeEntry`,
 * faster for canonical envelopes. The CID is computed from the bytes.
 */
export function decodeEntryFast(data: Uint8Array): EntryBlock {
  if (!(data instanceof Uint8Array)) return decodeEntry(data)
  const s = scanEnvelope(data)
  if (s === undefined) return decodeEntry(data)
  let body: unknown
  try {
    body = decode(data.subarray(s.bodyStart, s.bodyEnd))
  } catch {
    return decodeEntry(data)
  }
  return blockOf(data, s, body)
}

/**
 * Decode entry bytes known to be canonical DAG-CBOR (what `encode` of the
 * decoded entry would give back, byte for byte), or undefined when that is
 * not established here: the caller then decodes with `decodeEntryFast` and
 * compares a full re-encoding, which decides and names the fault.
 *
 * Only the body needs checking: `scanEnvelope` accepts nothing but the
 * canonical envelope layout (key order, minimal heads, one CID form, ASCII
 * strings, no trailing bytes), and the envelope's values re-encode to the
 * bytes they were read from. The body is shown canonical by a byte scan
 * for plain values, by re-encoding it otherwise.
 */
export function decodeCanonicalEntry(data: Uint8Array): EntryBlock | undefined {
  if (!(data instanceof Uint8Array)) return undefined
  const s = scanEnvelope(data)
  if (s === undefined) return undefined
  const raw = data.subarray(s.bodyStart, s.bodyEnd)
  let body: unknown
  let again: Uint8Array
  try {
    body = decode(raw)
    if (plainCanonicalEnd(data, s.bodyStart, 0) === s.bodyEnd) return blockOf(data, s, body)
    again = encode(body)
  } catch {
    return undefined
  }
  if (again.byteLength !== raw.byteLength) return undefined
  for (let i = 0; i < raw.byteLength; i++) if (again[i] !== raw[i]) return undefined
  return blockOf(data, s, body)
}

const PROTO_KEY = utf8Of('__proto__')

/**
 * End of the item at `pos` when it is certainly canonical DAG-CBOR in a
 * plain subset (minimal heads, safe integers, ASCII strings, byte strings,
 * arrays, maps with ASCII keys in strictly increasing canonical order,
 * false/true/null), NOT_CANONICAL otherwise. NOT_CANONICAL only means "not
 * shown here" (floats, tags, non-ASCII text are left to a re-encoding),
 * never "accepted": the bytes must already decode, this only vouches that
 * encoding the decoded value would give them back.
 */
export function plainCanonicalEnd(b: Uint8Array, pos: number, depth: number): number {
  if (depth > 64 || pos >= b.byteLength) return NOT_CANONICAL
  const ib = b[pos]!
  const major = ib >> 5
  if (major === 7) return ib === 0xf4 || ib === 0xf5 || ib === 0xf6 ? pos + 1 : NOT_CANONICAL
  if (major === 6) return NOT_CANONICAL
  const h = readHead(b, pos, major)
  if (h === undefined) return NOT_CANONICAL
  const [n, next] = h
  switch (major) {
    case 0:
      return next
    case 1:
      // -1 - n must stay a safe integer
      return n < Number.MAX_SAFE_INTEGER ? next : NOT_CANONICAL
    case 2:
      return next + n > b.byteLength ? NOT_CANONICAL : next + n
    case 3:
      return asciiEnd(b, next, n)
    case 4: {
      let p = next
      for (let i = 0; i < n && p !== NOT_CANONICAL; i++) p = plainCanonicalEnd(b, p, depth + 1)
      return p
    }
    default: {
      let p = next
      let prevStart = -1
      let prevLen = 0
      for (let i = 0; i < n; i++) {
        const k = readHead(b, p, 3)
        if (k === undefined) return NOT_CANONICAL
        const [len, start] = k
        const end = asciiEnd(b, start, len)
        if (end === NOT_CANONICAL || (len === PROTO_KEY.byteLength && match(b, start, PROTO_KEY) !== NOT_CANONICAL)) return NOT_CANONICAL
        if (prevStart >= 0 && !keyAfter(b, prevStart, prevLen, start, len)) return NOT_CANONICAL
        prevStart = start
        prevLen = len
        p = plainCanonicalEnd(b, end, depth + 1)
        if (p === NOT_CANONICAL) return NOT_CANONICAL
      }
      return p
    }
  }
}

function asciiEnd(b: Uint8Array, start: number, len: number): number {
  const end = start + len
  if (end > b.byteLength) return NOT_CANONICAL
  for (let i = start; i < end; i++) if (b[i]! >= 0x80) return NOT_CANONICAL
  return end
}

/** Whether key bytes at `s2` sort strictly after those at `s1` (length first, then bytewise). */
function keyAfter(b: Uint8Array, s1: number, l1: number, s2: number, l2: number): boolean {
  if (l1 !== l2) return l2 > l1
  for (let i = 0; i < l1; i++) {
    const x = b[s1 + i]!
    const y = b[s2 + i]!
    if (x !== y) return y > x
  }
  return false
}

function blockOf(data: Uint8Array, s: EnvelopeScan, body: unknown): EntryBlock {
  const entry: Entry = {
    v: 1,
    pair: cidAt(data, s.pairDigestAt),
    author: s.author,
    seq: s.seq,
    prev: s.prevDigestAt < 0 ? null : cidAt(data, s.prevDigestAt),
    seen: s.seenDigestAt < 0 ? null : cidAt(data, s.seenDigestAt),
    time: s.time,
    kind: s.kind as Entry['kind'],
    body,
    sig: copy(data, s.sigStart, s.sigEnd),
  }
  return { entry, bytes: data, cid: cidOf(data) }
}

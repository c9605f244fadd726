/**
 * A deterministic, structure-aware mutator for fuzz inputs, as fast-check
 * arbitraries: pick a corpus entry, apply 1 to 4 mutations. Byte level
 * (bit flips, interesting values, insert/delete/duplicate runs, truncate,
 * splice with another corpus entry); CBOR heads (change an item's major
 * type, rewrite its length/argument: non-minimal, huge, indefinite,
 * reserved; duplicate a map key, drop an item, wrap it in a tag); and CBOR
 * values that keep the encoding well-formed so the input gets past the
 * decoder (replace an item with one from another entry or a simple value,
 * change a string's bytes or length, an integer's value, remove a map
 * entry, nest a value thousands deep). The same seed gives the same inputs.
 */
import fc from 'fast-check'

/** No fuzz input is longer: sync decoders cannot be interrupted, so inputs stay small enough to finish quickly. */
export const MAX_INPUT_BYTES = 64 * 1024

/** Inputs every target sees besides its corpus: empty, single bytes, CBOR heads announcing huge or impossible items. */
export const EDGE_INPUTS: readonly Uint8Array[] = [
  new Uint8Array(0),
  Uint8Array.of(0x00),
  Uint8Array.of(0xff),
  Uint8Array.of(0xf6),
  Uint8Array.of(0xa0),
  Uint8Array.of(0x80),
  Uint8Array.of(0xbf, 0xff),
  Uint8Array.of(0x9f, 0x9f, 0x9f, 0xff, 0xff, 0xff),
  Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
  Uint8Array.of(0x7b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00),
  Uint8Array.of(0x9b, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff),
  Uint8Array.of(0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
  Uint8Array.of(0xd8, 0x2a, 0x58, 0x25, 0x00),
  Uint8Array.of(0xfb, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
  new Uint8Array(Array.from({ length: 2000 }, () => 0x81)).fill(0x00, 1999),
]

// ---------------------------------------------------------------------------
// CBOR items, found leniently in possibly broken bytes

export interface CborItem {
  start: number
  /** End of the head (start of the content for strings, of the first child otherwise). */
  headEnd: number
  end: number
  major: number
  ai: number
  arg: number
  parent: number
  /** A map key (DAG-CBOR keys must be strings). */
  key: boolean
}

const MAX_ITEMS = 4096
const MAX_DEPTH = 64

function readArg(b: Uint8Array, pos: number, ai: number): [number, number] | undefined {
  if (ai < 24) return [ai, pos]
  const width = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0
  if (width === 0 || pos + width > b.byteLength) return undefined
  let v = 0
  for (let i = 0; i < width; i++) v = v * 256 + b[pos + i]!
  return [v, pos + width]
}

/** Every well-formed item of `b` in pre-order, stopping quietly at the first broken one. */
export function cborItems(b: Uint8Array): CborItem[] {
  const items: CborItem[] = []
  const walk = (pos: number, parent: number, depth: number, key = false): number | undefined => {
    if (pos >= b.byteLength || items.length >= MAX_ITEMS || depth > MAX_DEPTH) return undefined
    const ib = b[pos]!
    const major = ib >> 5
    const ai = ib & 0x1f
    const index = items.length
    const item: CborItem = { start: pos, headEnd: pos + 1, end: pos + 1, major, ai, arg: 0, parent, key }
    items.push(item)
    if (ai === 31) {
      // Indefinite length: children until a break byte.
      if (major < 2 || major === 6) return undefined
      if (major === 7) return pos + 1
      let p = pos + 1
      for (let i = 0; p < b.byteLength && b[p] !== 0xff; i++) {
        const next = walk(p, index, depth + 1, major === 5 && i % 2 === 0)
        if (next === undefined) return undefined
        p = next
      }
      if (p >= b.byteLength) return undefined
      item.end = p + 1
      return item.end
    }
    const a = readArg(b, pos + 1, ai)
    if (a === undefined) return undefined
    item.arg = a[0]
    item.headEnd = a[1]
    let p = a[1]
    if (major === 2 || major === 3) {
      if (p + item.arg > b.byteLength) return undefined
      p += item.arg
    } else if (major === 4 || major === 5 || major === 6) {
      const n = major === 6 ? 1 : major === 5 ? item.arg * 2 : item.arg
      for (let i = 0; i < n; i++) {
        const next = walk(p, index, depth + 1, major === 5 && i % 2 === 0)
        if (next === undefined) return undefined
        p = next
      }
    }
    item.end = p
    return p
  }
  walk(0, -1, 0)
  return items
}

/** A CBOR head of `major` with argument `arg`, in `width` bytes after the initial byte (-1: minimal). */
export function cborHead(major: number, arg: number, width = -1): Uint8Array {
  const w = width >= 0 ? width : arg < 24 ? 0 : arg < 0x100 ? 1 : arg < 0x10000 ? 2 : arg < 0x100000000 ? 4 : 8
  const ai = w === 0 ? Math.min(arg, 23) : w === 1 ? 24 : w === 2 ? 25 : w === 4 ? 26 : 27
  const out = new Uint8Array(1 + w)
  out[0] = (major << 5) | ai
  let v = arg
  for (let i = w; i >= 1; i--) {
    out[i] = v % 256
    v = Math.floor(v / 256)
  }
  return out
}

// ---------------------------------------------------------------------------
// Mutations

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'interesting'; at: number; pick: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'duplicate'; at: number; len: number; to: number }
  | { op: 'truncate'; at: number }
  | { op: 'splice'; at: number; other: number; from: number }
  | { op: 'cbor-major'; item: number; major: number }
  | { op: 'cbor-arg'; item: number; how: number }
  | { op: 'cbor-dup-key'; item: number }
  | { op: 'cbor-drop'; item: number }
  | { op: 'cbor-replace'; item: number; other: number; with: number }
  | { op: 'cbor-tag'; item: number; tag: number }
  | { op: 'cbor-content'; item: number; at: number; value: number }
  | { op: 'cbor-int'; item: number; pick: number }
  | { op: 'cbor-resize'; item: number; pick: number }
  | { op: 'cbor-simple'; item: number; pick: number }
  | { op: 'cbor-remove'; item: number }
  | { op: 'cbor-deep'; item: number; depth: number; map: boolean }

/** Byte patterns that sit on boundaries: sign bits, CBOR heads of each width, break, undefined, floats, tag 42. */
const INTERESTING: readonly number[][] = [
  [0x00],
  [0xff],
  [0x7f],
  [0x80],
  [0x17],
  [0x18],
  [0x1f],
  [0x38],
  [0x5b],
  [0x7b],
  [0x9b],
  [0xbb],
  [0x9f],
  [0xbf],
  [0xf4],
  [0xf5],
  [0xf6],
  [0xf7],
  [0xf9],
  [0xfb],
  [0xd8, 0x2a],
  [0xff, 0xff],
  [0x7f, 0xff],
  [0x80, 0x00],
  [0xff, 0xff, 0xff, 0xff],
  [0x7f, 0xff, 0xff, 0xff],
  [0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
]

/** Integers at the edges of what the schemas accept: zero, head-width boundaries, 2^32, the largest safe integer and one past it, 2^64 - 1. */
const INTEGERS: readonly number[] = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER, 2 ** 53]

/** Well-formed items that replace another: null, booleans, zero, -1, empty string/bytes/array/map, a CID, undefined and NaN (refused by DAG-CBOR). */
const SIMPLE_ITEMS: readonly number[][] = [
  [0xf6],
  [0xf5],
  [0xf4],
  [0x00],
  [0x20],
  [0x60],
  [0x40],
  [0x80],
  [0xa0],
  [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x3b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x12, 0x20, ...new Array<number>(32).fill(0xab)],
  [0x61, 0x78],
  [0xf7],
  [0xf9, 0x7e, 0x00],
]

/** Ways to rewrite an item's argument (length of a string, count of an array or map, value of an integer). */
const ARG_REWRITES = 12

function rewriteArg(item: CborItem, how: number, b: Uint8Array): Uint8Array {
  const major = item.major
  const headOf = (arg: number, width = -1) => cborHead(major, arg, width)
  switch (how % ARG_REWRITES) {
    case 0:
      return headOf(item.arg + 1)
    case 1:
      return headOf(Math.max(0, item.arg - 1))
    case 2:
      return headOf(0)
    case 3:
      return headOf(item.arg, 1 + (item.arg % 3)) // non-minimal width
    case 4:
      return headOf(item.arg, 8)
    case 5:
      return headOf(0xffffffff)
    case 6:
      return headOf(Number.MAX_SAFE_INTEGER)
    case 7:
      return Uint8Array.of((major << 5) | 27, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
    case 8:
      return Uint8Array.of((major << 5) | 31) // indefinite
    case 9:
      return Uint8Array.of((major << 5) | 28) // reserved
    case 10:
      return headOf(b.byteLength - item.headEnd + 1) // just past the end
    default:
      return headOf(item.arg * 2 + 1)
  }
}

/**
 * A copy of `b`. Not `b.slice()`: on a Node Buffer (what many encoders and
 * stores hand out) slice() is a view, and a mutation through it would
 * change the corpus entry itself.
 */
function copy(b: Uint8Array, start = 0, end = b.byteLength): Uint8Array {
  return new Uint8Array(b.subarray(start, end))
}

function replaceRange(b: Uint8Array, start: number, end: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.byteLength - (end - start) + insert.byteLength)
  out.set(b.subarray(0, start), 0)
  out.set(insert, start)
  out.set(b.subarray(end), start + insert.byteLength)
  return out
}

function childrenOf(items: readonly CborItem[], index: number): number[] {
  const out: number[] = []
  for (let i = index + 1; i < items.length; i++) if (items[i]!.parent === index) out.push(i)
  return out
}

/** Apply one mutation; `corpus` feeds splices and item replacements. */
export function applyMutation(b: Uint8Array, m: Mutation, corpus: readonly Uint8Array[]): Uint8Array {
  const len = b.byteLength
  const pos = (at: number) => (len === 0 ? 0 : at % len)
  const otherOf = (i: number) => (corpus.length === 0 ? b : corpus[i % corpus.length]!)
  switch (m.op) {
    case 'flip': {
      if (len === 0) return Uint8Array.of(1 << m.bit)
      const out = copy(b)
      out[pos(m.at)] = out[pos(m.at)]! ^ (1 << m.bit)
      return out
    }
    case 'set': {
      if (len === 0) return Uint8Array.of(m.value)
      const out = copy(b)
      out[pos(m.at)] = m.value
      return out
    }
    case 'interesting': {
      const v = INTERESTING[m.pick % INTERESTING.length]!
      if (len === 0) return Uint8Array.from(v)
      const at = pos(m.at)
      return replaceRange(b, at, Math.min(len, at + v.length), Uint8Array.from(v))
    }
    case 'insert':
      return replaceRange(b, len === 0 ? 0 : m.at % (len + 1), len === 0 ? 0 : m.at % (len + 1), m.bytes)
    case 'delete': {
      if (len === 0) return b
      const at = pos(m.at)
      return replaceRange(b, at, Math.min(len, at + m.len), new Uint8Array(0))
    }
    case 'duplicate': {
      if (len === 0) return b
      const at = pos(m.at)
      const run = copy(b, at, Math.min(len, at + m.len))
      const to = m.to % (len + 1)
      return replaceRange(b, to, to, run)
    }
    case 'truncate':
      return copy(b, 0, pos(m.at))
    case 'splice': {
      const o = otherOf(m.other)
      const from = o.byteLength === 0 ? 0 : m.from % o.byteLength
      const head = b.subarray(0, len === 0 ? 0 : m.at % (len + 1))
      const out = new Uint8Array(head.byteLength + o.byteLength - from)
      out.set(head, 0)
      out.set(o.subarray(from), head.byteLength)
      return out
    }
    default:
      return applyCborMutation(b, m, corpus)
  }
}

function applyCborMutation(b: Uint8Array, m: Mutation, corpus: readonly Uint8Array[]): Uint8Array {
  const items = cborItems(b)
  if (items.length === 0) return applyMutation(b, { op: 'flip', at: 'item' in m ? m.item : 0, bit: 0 }, corpus)
  const item = items[('item' in m ? m.item : 0) % items.length]!
  switch (m.op) {
    case 'cbor-major': {
      const out = copy(b)
      out[item.start] = ((m.major & 7) << 5) | item.ai
      return out
    }
    case 'cbor-arg':
      return replaceRange(b, item.start, item.headEnd, rewriteArg(item, m.how, b))
    case 'cbor-dup-key': {
      // Duplicate the first key/value pair of a map (or the first element of an array) and bump the count.
      const maps = items.filter((it) => (it.major === 5 || it.major === 4) && it.ai !== 31 && it.arg > 0)
      if (maps.length === 0) return b
      const target = maps[m.item % maps.length]!
      const index = items.indexOf(target)
      const kids = childrenOf(items, index)
      if (kids.length === 0) return b
      const first = items[kids[0]!]!
      const pairEnd = target.major === 5 && kids.length > 1 ? items[kids[1]!]!.end : first.end
      const dup = copy(b, first.start, pairEnd)
      const withDup = replaceRange(b, pairEnd, pairEnd, dup)
      return replaceRange(withDup, target.start, target.headEnd, cborHead(target.major, target.arg + 1))
    }
    case 'cbor-drop':
      return replaceRange(b, item.start, item.end, new Uint8Array(0))
    case 'cbor-replace': {
      // A value by a value, a key by a key, so the map stays decodable.
      const mine = items.filter((it) => it.key === item.key)
      const target = mine[m.item % mine.length]!
      const source = corpus.length === 0 ? b : corpus[m.other % corpus.length]!
      const theirs = cborItems(source).filter((it) => it.key === target.key && it.end > it.start && it.end <= source.byteLength)
      if (theirs.length === 0) return b
      const pick = theirs[m.with % theirs.length]!
      return replaceRange(b, target.start, target.end, copy(source, pick.start, pick.end))
    }
    case 'cbor-tag': {
      const tag = [42, 0, 1, 2, 24, 55799, 0xffffffff][m.tag % 7]!
      return replaceRange(b, item.start, item.start, cborHead(6, tag))
    }
    case 'cbor-content': {
      // A byte inside a string: the encoding stays well-formed (text stays ASCII), the value changes.
      const strings = items.filter((it) => (it.major === 2 || it.major === 3) && it.ai !== 31 && it.arg > 0 && it.headEnd + it.arg <= b.byteLength)
      if (strings.length === 0) return b
      const s = strings[m.item % strings.length]!
      const out = copy(b)
      const at = s.headEnd + (m.at % s.arg)
      out[at] = s.major === 3 ? 0x20 + (m.value % 0x5f) : out[at]! ^ (1 << (m.value % 8))
      return out
    }
    case 'cbor-int': {
      const ints = items.filter((it) => (it.major === 0 || it.major === 1) && it.ai < 28)
      if (ints.length === 0) return b
      const n = ints[m.item % ints.length]!
      const choices = [...INTEGERS, n.arg + 1, Math.max(0, n.arg - 1), n.arg * 2]
      const v = choices[m.pick % choices.length]!
      const major = m.pick % 5 === 4 ? 1 - n.major : n.major
      return replaceRange(b, n.start, n.headEnd, cborHead(major, Math.min(v, Number.MAX_SAFE_INTEGER + 1)))
    }
    case 'cbor-resize': {
      // A string of another length with a matching head: a 63-byte signature, a 35-byte CID, an empty key.
      const strings = items.filter((it) => (it.major === 2 || it.major === 3) && it.ai !== 31 && it.headEnd + it.arg <= b.byteLength)
      if (strings.length === 0) return b
      const s = strings[m.item % strings.length]!
      const content = b.subarray(s.headEnd, s.end)
      const sizes = [0, 1, Math.max(0, s.arg - 1), s.arg + 1, s.arg * 2 + 1, 32, 64, 300]
      const size = Math.min(sizes[m.pick % sizes.length]!, 4096)
      const out = new Uint8Array(size)
      for (let i = 0; i < size; i++) out[i] = content.byteLength === 0 ? 0x61 : content[i % content.byteLength]!
      const head = cborHead(s.major, size)
      const whole = new Uint8Array(head.byteLength + size)
      whole.set(head, 0)
      whole.set(out, head.byteLength)
      return replaceRange(b, s.start, s.end, whole)
    }
    case 'cbor-simple': {
      const values = items.filter((it) => !it.key)
      const target = values[m.item % values.length]!
      return replaceRange(b, target.start, target.end, Uint8Array.from(SIMPLE_ITEMS[m.pick % SIMPLE_ITEMS.length]!))
    }
    case 'cbor-remove': {
      // Remove an array element or a map entry and fix the count: still well-formed, a field or element goes missing.
      const index = items.indexOf(item)
      const parent = items[item.parent]
      if (parent === undefined || parent.ai === 31 || (parent.major !== 4 && parent.major !== 5)) return b
      const kids = childrenOf(items, item.parent)
      let from = item.start
      let to = item.end
      if (parent.major === 5) {
        const k = kids.indexOf(index)
        const keyAt = k - (k % 2)
        from = items[kids[keyAt]!]!.start
        to = items[kids[keyAt + 1] ?? kids[keyAt]!]!.end
      }
      const removed = replaceRange(b, from, to, new Uint8Array(0))
      return replaceRange(removed, parent.start, parent.headEnd, cborHead(parent.major, Math.max(0, parent.arg - 1)))
    }
    case 'cbor-deep': {
      // A value nested thousands deep (arrays or single-key maps): recursion in decoders, walkers and re-encoders.
      const values = items.filter((it) => !it.key)
      const target = values[m.item % values.length]!
      const depth = [64, 1_000, 10_000, 30_000][m.depth % 4]!
      const unit = m.map ? [0xa1, 0x61, 0x61] : [0x81]
      const deep = new Uint8Array(depth * unit.length + 1)
      for (let i = 0; i < depth; i++) deep.set(unit, i * unit.length)
      deep[deep.byteLength - 1] = 0xf6
      return replaceRange(b, target.start, target.end, deep)
    }
    default:
      return b
  }
}

/** Apply mutations in order; the result is capped at MAX_INPUT_BYTES. */
export function applyMutations(base: Uint8Array, ms: readonly Mutation[], corpus: readonly Uint8Array[]): Uint8Array {
  let b = base
  for (const m of ms) {
    b = applyMutation(b, m, corpus)
    if (b.byteLength > MAX_INPUT_BYTES) b = copy(b, 0, MAX_INPUT_BYTES)
  }
  return b
}

// ---------------------------------------------------------------------------
// Arbitraries

const at = fc.nat()
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  // Byte level: mostly breaks the encoding, tests the first line of defence.
  { arbitrary: fc.record({ op: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('set' as const), at, value: fc.integer({ min: 0, max: 255 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('interesting' as const), at, pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), at, len: fc.integer({ min: 1, max: 64 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('duplicate' as const), at, len: fc.integer({ min: 1, max: 256 }), to: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('truncate' as const), at }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('splice' as const), at, other: fc.nat(), from: fc.nat() }), weight: 1 },
  // CBOR heads: wrong major type, non-minimal, huge, indefinite or reserved lengths, duplicate keys, dangling items.
  { arbitrary: fc.record({ op: fc.constant('cbor-major' as const), item: fc.nat(), major: fc.integer({ min: 0, max: 7 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('cbor-arg' as const), item: fc.nat(), how: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('cbor-dup-key' as const), item: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('cbor-drop' as const), item: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('cbor-tag' as const), item: fc.nat(), tag: fc.nat() }), weight: 1 },
  // Values: the encoding stays well-formed, so the input reaches schemas, signatures and the logic behind them.
  { arbitrary: fc.record({ op: fc.constant('cbor-replace' as const), item: fc.nat(), other: fc.nat(), with: fc.nat() }), weight: 8 },
  { arbitrary: fc.record({ op: fc.constant('cbor-content' as const), item: fc.nat(), at, value: fc.integer({ min: 0, max: 255 }) }), weight: 8 },
  { arbitrary: fc.record({ op: fc.constant('cbor-int' as const), item: fc.nat(), pick: fc.nat() }), weight: 8 },
  { arbitrary: fc.record({ op: fc.constant('cbor-resize' as const), item: fc.nat(), pick: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('cbor-simple' as const), item: fc.nat(), pick: fc.nat() }), weight: 6 },
  { arbitrary: fc.record({ op: fc.constant('cbor-remove' as const), item: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('cbor-deep' as const), item: fc.nat(), depth: fc.nat(), map: fc.boolean() }), weight: 1 },
)

/** One mutation most often: each extra one is another chance to break the encoding before the input gets anywhere. */
export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.oneof(
  { arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 1 }), weight: 3 },
  { arbitrary: fc.array(mutationArb, { minLength: 2, maxLength: 2 }), weight: 2 },
  { arbitrary: fc.array(mutationArb, { minLength: 3, maxLength: 4 }), weight: 1 },
)

/** The part of an input worth mutating on its own (an entry's body inside its envelope), as a byte range. */
export type Focus = (bytes: Uint8Array) => { start: number; end: number } | undefined

/** Mutate only `bytes[start, end)`, keeping what lies around it. */
export function mutateWithin(bytes: Uint8Array, focus: Focus, ms: readonly Mutation[], corpus: readonly Uint8Array[]): Uint8Array {
  const range = focus(bytes)
  if (range === undefined) return applyMutations(bytes, ms, corpus)
  const inner = applyMutations(bytes.subarray(range.start, range.end), ms, corpus)
  const out = replaceRange(bytes, range.start, range.end, inner)
  return out.byteLength > MAX_INPUT_BYTES ? out.subarray(0, MAX_INPUT_BYTES) : out
}

/**
 * Fuzz inputs over a corpus (read when each value is generated, so a
 * growing corpus is picked up): mostly mutated entries, some random bytes
 * and the edge inputs. With `focus`, half the mutated inputs change only
 * the focused part.
 */
export function inputArb(corpus: readonly Uint8Array[], focus?: Focus): fc.Arbitrary<Uint8Array> {
  const pick = (i: number) => corpus[i % corpus.length]!
  const mutated = fc
    .tuple(fc.nat(), mutationsArb, fc.boolean())
    .map(([i, ms, inside]) =>
      corpus.length === 0 ? new Uint8Array(0) : inside && focus !== undefined ? mutateWithin(pick(i), focus, ms, corpus) : applyMutations(pick(i), ms, corpus),
    )
  return fc.oneof(
    { arbitrary: mutated, weight: 16 },
    { arbitrary: fc.uint8Array({ maxLength: 256 }), weight: 1 },
    { arbitrary: fc.constantFrom(...EDGE_INPUTS), weight: 1 },
  )
}

/**
 * A persistent (immutable, structurally shared) string-keyed map: a hash
 * array mapped trie. `set` copies only the path to the changed leaf, so the
 * pure reducer stays O(log n) per entry on deals with many thousands of
 * epochs instead of copying a whole Map per entry.
 */

class Leaf<V> {
  constructor(
    readonly hash: number,
    readonly key: string,
    readonly value: V,
  ) {}
}

class Collision<V> {
  constructor(
    readonly hash: number,
    readonly leaves: readonly Leaf<V>[],
  ) {}
}

class Branch<V> {
  constructor(
    readonly bitmap: number,
    readonly children: readonly Child<V>[],
  ) {}
}

type Child<V> = Leaf<V> | Collision<V> | Branch<V>

const BITS = 5
const MASK = 31

/** FNV-1a over UTF-16 code units. */
function hashOf(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555)
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 63
}

function lookup<V>(node: Branch<V>, hash: number, key: string): V | undefined {
  let n: Branch<V> = node
  for (let shift = 0; ; shift += BITS) {
    const bit = 1 << ((hash >>> shift) & MASK)
    if ((n.bitmap & bit) === 0) return undefined
    const child = n.children[popcount(n.bitmap & (bit - 1))] as Child<V>
    if (child instanceof Leaf) return child.key === key ? child.value : undefined
    if (child instanceof Collision) return child.leaves.find((l) => l.key === key)?.value
    n = child
  }
}

function merge<V>(a: Leaf<V> | Collision<V>, b: Leaf<V>, shift: number): Child<V> {
  if (a.hash === b.hash) return new Collision(a.hash, a instanceof Collision ? [...a.leaves, b] : [a, b])
  const ia = (a.hash >>> shift) & MASK
  const ib = (b.hash >>> shift) & MASK
  if (ia === ib) return new Branch(1 << ia, [merge(a, b, shift + BITS)])
  return new Branch((1 << ia) | (1 << ib), ia < ib ? [a, b] : [b, a])
}

function insert<V>(node: Branch<V>, leaf: Leaf<V>, shift: number): { node: Branch<V>; added: boolean } {
  const bit = 1 << ((leaf.hash >>> shift) & MASK)
  const idx = popcount(node.bitmap & (bit - 1))
  if ((node.bitmap & bit) === 0) {
    const children = node.children.slice()
    children.splice(idx, 0, leaf)
    return { node: new Branch(node.bitmap | bit, children), added: true }
  }
  const child = node.children[idx] as Child<V>
  let next: Child<V>
  let added = true
  if (child instanceof Leaf) {
    if (child.key === leaf.key) {
      next = leaf
      added = false
    } else next = merge(child, leaf, shift + BITS)
  } else if (child instanceof Collision) {
    if (child.hash === leaf.hash) {
      const at = child.leaves.findIndex((l) => l.key === leaf.key)
      added = at < 0
      next = new Collision(child.hash, at < 0 ? [...child.leaves, leaf] : child.leaves.map((l, i) => (i === at ? leaf : l)))
    } else next = merge(child, leaf, shift + BITS)
  } else {
    const r = insert(child, leaf, shift + BITS)
    next = r.node
    added = r.added
  }
  const children = node.children.slice()
  children[idx] = next
  return { node: new Branch(node.bitmap, children), added }
}

function* walk<V>(node: Child<V>): Generator<[string, V]> {
  if (node instanceof Leaf) yield [node.key, node.value]
  else if (node instanceof Collision) for (const l of node.leaves) yield [l.key, l.value]
  else for (const c of node.children) yield* walk(c)
}

export class PMap<V> {
  static readonly #empty = new PMap<never>(new Branch(0, []), 0)
  readonly #root: Branch<V>
  readonly size: number

  private constructor(root: Branch<V>, size: number) {
    this.#root = root
    this.size = size
  }

  static empty<V>(): PMap<V> {
    return PMap.#empty as PMap<V>
  }

  get(key: string): V | undefined {
    return lookup(this.#root, hashOf(key), key)
  }

  has(key: string): boolean {
    return this.get(key) !== undefined
  }

  /** A new map with `key` set; this one is unchanged. */
  set(key: string, value: V): PMap<V> {
    const r = insert(this.#root, new Leaf(hashOf(key), key, value), 0)
    return new PMap(r.node, r.added ? this.size + 1 : this.size)
  }

  /** Entries in hash order (deterministic, not insertion order). */
  entries(): IterableIterator<[string, V]> {
    return walk(this.#root)
  }

  *values(): IterableIterator<V> {
    for (const [, v] of walk(this.#root)) yield v
  }
}

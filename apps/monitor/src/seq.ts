import type { Store } from '@tally/lineage'

/** Meta key holding the highest seq reserved so far (decimal). */
export const SEQ_META_KEY = 'monitor/seq-reserved'
/** Seqs reserved per durable write: a crash skips at most this many, and gaps are harmless (receivers only need seqs to grow). */
export const SEQ_BLOCK = 64

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Hands out this monitor's observation seqs, 1, 2, 3 …, never the same
 * twice, across restarts and crashes: a block is reserved durably before
 * any seq in it is used, and a restart starts after the last reservation.
 */
export class SeqAllocator {
  readonly #store: Pick<Store, 'write'>
  #next: number
  #reserved: number
  #reserving: Promise<void> | undefined

  private constructor(store: Pick<Store, 'write'>, reserved: number) {
    this.#store = store
    this.#reserved = reserved
    this.#next = reserved + 1
  }

  static async open(store: Pick<Store, 'write' | 'getMeta'>): Promise<SeqAllocator> {
    const raw = await store.getMeta(SEQ_META_KEY)
    const reserved = raw === undefined ? 0 : Number(decoder.decode(raw))
    if (!Number.isSafeInteger(reserved) || reserved < 0) throw new RangeError(`stored ${SEQ_META_KEY} is corrupt`)
    return new SeqAllocator(store, reserved)
  }

  /** The next seq, durable as reserved before it is returned. */
  async next(): Promise<number> {
    while (this.#next > this.#reserved) {
      this.#reserving ??= this.#reserve().finally(() => {
        this.#reserving = undefined
      })
      await this.#reserving
    }
    return this.#next++
  }

  /** The seq `next()` would return (for logs and tests). */
  peek(): number {
    return this.#next
  }

  async #reserve(): Promise<void> {
    const upTo = this.#reserved + SEQ_BLOCK
    await this.#store.write({ meta: [{ key: SEQ_META_KEY, value: encoder.encode(String(upTo)) }] })
    this.#reserved = upTo
  }
}

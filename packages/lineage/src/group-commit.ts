/**
 * Group commit: writes submitted while another durable write is in flight
 * (or within the same event-loop turn) are merged into one durable write,
 * so N concurrent appends cost one fsync instead of N.
 *
 * If a merged write fails, every batch in it fails, and so does every batch
 * queued behind it: a queued batch may chain on an entry of the failed one
 * (an append's prev), so committing it alone could store a broken chain.
 */
import type { StoreBatch } from './store.ts'

/** Upper bounds of one merged write, so a burst cannot build an unbounded batch. */
export const MAX_GROUP_BATCHES = 4096
export const MAX_GROUP_BYTES = 16 * 1024 * 1024

interface Pending {
  batch: StoreBatch
  bytes: number
  resolve: () => void
  reject: (err: unknown) => void
}

function batchBytes(b: StoreBatch): number {
  let n = 0
  for (const e of b.entries ?? []) n += e.bytes.byteLength + 128
  for (const m of b.meta ?? []) n += (m.value?.byteLength ?? 0) + m.key.length
  return n + 64 * ((b.heads?.length ?? 0) + (b.pairs?.length ?? 0))
}

export class GroupCommitter {
  readonly #flush: (batches: StoreBatch[]) => Promise<void>
  #queue: Pending[] = []
  #inFlight = false
  /** Durable writes issued. */
  writes = 0
  /** Batches committed. */
  batches = 0

  constructor(flush: (batches: StoreBatch[]) => Promise<void>) {
    this.#flush = flush
  }

  submit(batch: StoreBatch): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ batch, bytes: batchBytes(batch), resolve, reject })
      this.#schedule()
    })
  }

  /** Resolves once everything submitted so far has been written (or failed). */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#inFlight) {
      await new Promise<void>((r) => setImmediate(r))
    }
  }

  #schedule(): void {
    // With nothing in flight the write starts at once (a lone append pays no
    // wait); whatever arrives while it is in flight joins the next write.
    if (this.#inFlight) return
    void this.#run()
  }

  async #run(): Promise<void> {
    if (this.#inFlight || this.#queue.length === 0) return
    this.#inFlight = true
    let take = 0
    let bytes = 0
    while (take < this.#queue.length && take < MAX_GROUP_BATCHES) {
      bytes += this.#queue[take]!.bytes
      take++
      if (bytes >= MAX_GROUP_BYTES) break
    }
    const group = this.#queue.splice(0, take)
    try {
      this.writes++
      await this.#flush(group.map((p) => p.batch))
      this.batches += group.length
      for (const p of group) p.resolve()
    } catch (err) {
      const queued = this.#queue.splice(0)
      for (const p of group) p.reject(err)
      for (const p of queued) p.reject(err)
    } finally {
      this.#inFlight = false
      if (this.#queue.length > 0) this.#schedule()
    }
  }
}

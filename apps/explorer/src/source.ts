import { buildDetail, summaryOf } from './detail.ts'
import type { PairRecord } from './record.ts'
import type { PairDetail, PairSummary } from './view.ts'

/** Where the explorer's pairs come from: export files, or a node's store. */
export interface ExplorerSource {
  pairs(): Promise<PairSummary[]>
  /** The pair with this id (CID string), or undefined. */
  pair(id: string): Promise<PairDetail | undefined>
  /** Release what the source holds open (a store it opened itself). */
  close?(): Promise<void>
}

/**
 * Details are built once per version of a pair's record (replaying the
 * deal reducer costs time on long logs); `version` is a string that changes
 * whenever the record does, e.g. both heads' CIDs.
 */
export class DetailCache {
  readonly #cache = new Map<string, { version: string; detail: Promise<PairDetail> }>()

  get(id: string, version: string, load: () => Promise<PairRecord>): Promise<PairDetail> {
    const held = this.#cache.get(id)
    if (held !== undefined && held.version === version) return held.detail
    // Concurrent requests for the same version share one build; a failed build is not kept.
    const detail = load().then(buildDetail)
    this.#cache.set(id, { version, detail })
    detail.catch(() => {
      if (this.#cache.get(id)?.detail === detail) this.#cache.delete(id)
    })
    return detail
  }

  /** Forget pairs that are no longer listed. */
  keep(ids: ReadonlySet<string>): void {
    for (const id of this.#cache.keys()) if (!ids.has(id)) this.#cache.delete(id)
  }
}

export function sortSummaries(list: PairSummary[]): PairSummary[] {
  return list.sort((a, b) => (b.lastTime ?? 0) - (a.lastTime ?? 0) || (a.id < b.id ? -1 : 1))
}

export { summaryOf }

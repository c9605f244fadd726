import type { CID, EntryBlock } from '@tally/core'
import { decodeEntryFast, type PairDescriptor, type Store } from '@tally/lineage'
import { checkChains, type PairRecord, recordOf } from './record.ts'
import { DetailCache, type ExplorerSource, sortSummaries, summaryOf } from './source.ts'
import type { PairDetail, PairSummary, ProblemView } from './view.ts'

const CHECKED = 'store read by the explorer: entry positions, hash links, head signatures'

async function readChain(store: Store, id: CID, pair: PairDescriptor, role: 'provider' | 'consumer', problems: ProblemView[]): Promise<EntryBlock[]> {
  const author = pair[role]
  const head = await store.getHead(id, author)
  if (head === undefined) return []
  const out: EntryBlock[] = []
  for await (const { seq, cid } of store.cids(id, author, 1, head.seq)) {
    const bytes = await store.getBlock(cid)
    const at = { layer: 'lineage' as const, author, role, seq, cid: cid.toString() }
    if (bytes === undefined) {
      problems.push({ ...at, code: 'MissingEntryError', message: `the store lacks entry ${cid}` })
      break
    }
    let block: EntryBlock
    try {
      block = decodeEntryFast(bytes)
    } catch (err) {
      problems.push({ ...at, code: (err as Error).name, message: (err as Error).message })
      break
    }
    if (!block.cid.equals(cid)) {
      problems.push({ ...at, code: 'BlockHashMismatchError', message: 'stored bytes do not hash to the indexed CID' })
      break
    }
    out.push(block)
  }
  if (out.length > 0 && out[out.length - 1]?.entry.seq !== head.seq) {
    problems.push({
      layer: 'lineage',
      author,
      role,
      code: 'GapError',
      message: `the store's ${role} head is #${head.seq} but its chain ends at #${out.length}`,
    })
  }
  return out
}

/** Both chains of one pair as the store holds them now. */
export async function readPair(store: Store, id: CID, pair: PairDescriptor): Promise<PairRecord> {
  const problems: ProblemView[] = []
  const chains = { provider: await readChain(store, id, pair, 'provider', problems), consumer: await readChain(store, id, pair, 'consumer', problems) }
  return recordOf(pair, 'store', chains, [...problems, ...checkChains(pair, chains)], CHECKED)
}

async function versionOf(store: Store, id: CID, pair: PairDescriptor): Promise<string> {
  const p = await store.getHead(id, pair.provider)
  const c = await store.getHead(id, pair.consumer)
  return `${p?.seq ?? 0}:${p?.cid.toString() ?? ''}/${c?.seq ?? 0}:${c?.cid.toString() ?? ''}`
}

export interface StoreSourceOptions {
  /** Called by `close()`, e.g. to close a store the caller opened for the explorer only. */
  onClose?: () => Promise<void>
}

/**
 * Pairs from a node's store, read live: a running daemon passes its own
 * open store. Each pair's view is rebuilt when either head moves.
 */
export function storeSource(store: Store, opts: StoreSourceOptions = {}): ExplorerSource {
  const cache = new DetailCache()
  const detail = async (id: CID, pair: PairDescriptor): Promise<PairDetail> =>
    cache.get(id.toString(), await versionOf(store, id, pair), () => readPair(store, id, pair))
  const source: ExplorerSource = {
    async pairs(): Promise<PairSummary[]> {
      const out: PairSummary[] = []
      const ids = new Set<string>()
      for await (const { id, descriptor } of store.pairs()) {
        ids.add(id.toString())
        out.push(summaryOf(await detail(id, descriptor)))
      }
      cache.keep(ids)
      return sortSummaries(out)
    },
    async pair(id: string): Promise<PairDetail | undefined> {
      for await (const p of store.pairs()) if (p.id.toString() === id) return detail(p.id, p.descriptor)
      return undefined
    },
  }
  if (opts.onClose !== undefined) source.close = opts.onClose
  return source
}

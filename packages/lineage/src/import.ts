import { readFile } from 'node:fs/promises'
import type { CID, EntryBlock } from '@tally/core'
import type { PairDescriptor, PartyRole, VerifyOptions, VerifyReport } from './api.ts'
import { encodeCheckpointState } from './coverage.ts'
import { decodeEntryFast } from './entry-codec.ts'
import { ExportInvalidError, ImportConflictError, StoreError } from './errors.ts'
import { pairIdOf, partyOf } from './pair.ts'
import { checkpointMetaPrefix } from './pair-log.ts'
import type { EntryWrite, HeadWrite, Store } from './store.ts'
import { type ExportAnalysis, analyzeExport } from './verify.ts'

export interface ImportResult {
  pair: PairDescriptor
  id: CID
  /** Entries newly stored per chain. */
  added: { provider: number; consumer: number }
  report: VerifyReport
}

/**
 * Verify an export fully, then store it in one atomic write: entries,
 * heads, the pair registration and its checkpoints. The store may already
 * hold a prefix of either chain (then only the rest is written); a
 * different entry at a held position is an ImportConflictError. Do not
 * import a pair while a PairLog of it is open on the same store.
 */
export async function importCar(store: Store, input: Uint8Array | string, opts: VerifyOptions = {}): Promise<ImportResult> {
  const a = await analyzeExport(input, opts)
  try {
    return await storeAnalysis(store, a)
  } finally {
    a.source.close()
  }
}

async function storeAnalysis(store: Store, a: ExportAnalysis): Promise<ImportResult> {
  if (!a.report.ok || a.pair === undefined) {
    const p = a.report.firstProblem
    throw new ExportInvalidError(`export does not verify: ${p === undefined ? 'unknown problem' : `${p.code}: ${p.message}`}`, { report: a.report })
  }
  const pair = a.pair
  const id = pairIdOf(pair)
  const entries: EntryWrite[] = []
  const heads: HeadWrite[] = []
  const added = { provider: 0, consumer: 0 }
  for (const role of ['provider', 'consumer'] as PartyRole[]) {
    const author = partyOf(pair, role)
    const chain = a.chains[role]
    const blockAt = (seq: number) => {
      const c = chain[seq - 1]!
      return decodeEntryFast(new Uint8Array(a.source.read(c.dataOffset, c.dataLength)))
    }
    const held = await store.getHead(id, author)
    let from = 1
    if (held !== undefined) {
      const at = Math.min(held.seq, chain.length)
      if (at >= 1) {
        const mine = held.seq <= chain.length ? held.cid : await store.getCid(id, author, at)
        if (mine === undefined || !blockAt(at).cid.equals(mine)) {
          throw new ImportConflictError(`the store holds a different ${role} entry #${at} than the export`, { role, seq: at })
        }
      }
      from = held.seq + 1
    }
    for (let seq = from; seq <= chain.length; seq++) {
      const b: EntryBlock = blockAt(seq)
      entries.push({ pair: id, author, seq, cid: b.cid, bytes: b.bytes })
      added[role]++
    }
    if (from <= chain.length) {
      const top = blockAt(chain.length)
      heads.push({ pair: id, author, seq: chain.length, cid: top.cid })
    }
  }
  const meta = a.states.map((s) => ({ key: checkpointMetaPrefix(id) + s.statement.toString(), value: encodeCheckpointState(s) }))
  await store.write({ entries, heads, meta, pairs: [{ id, descriptor: pair }] })
  return { pair, id, added, report: a.report }
}

/** A verified export opened for reading: the report and, when intact, its timeline. */
export interface OpenedExport {
  report: VerifyReport
  pair?: PairDescriptor
  /** Entries of both chains in timeline order (empty unless the chains are intact). */
  timeline(): Generator<EntryBlock>
}

export async function openExport(input: Uint8Array | string, opts: VerifyOptions = {}): Promise<OpenedExport> {
  // Reading the timeline needs the bytes after analysis: keep them in memory.
  let bytes: Uint8Array
  try {
    bytes = typeof input === 'string' ? await readFile(input) : input
  } catch (err) {
    throw new StoreError(`cannot open ${String(input)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {}, { cause: err })
  }
  const a = await analyzeExport(bytes, opts)
  const out: OpenedExport = {
    report: a.report,
    *timeline() {
      const next = { provider: 0, consumer: 0 }
      for (const r of a.order) {
        const role: PartyRole = r === 0 ? 'provider' : 'consumer'
        const c = a.chains[role][next[role]++]!
        yield decodeEntryFast(a.source.read(c.dataOffset, c.dataLength))
      }
    },
  }
  if (a.pair !== undefined) out.pair = a.pair
  return out
}

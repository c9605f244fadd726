import { readFile, stat } from 'node:fs/promises'
import type { EntryBlock } from '@tally/core'
import { openExport, type VerifyProblem } from '@tally/lineage'
import { readExport } from './car-read.ts'
import { ExportReadError } from './errors.ts'
import { type PairRecord, recordOf } from './record.ts'
import { DetailCache, type ExplorerSource, sortSummaries, summaryOf } from './source.ts'
import type { PairDetail, PairSummary, ProblemView } from './view.ts'

function problemView(p: VerifyProblem, role: (author: string) => 'provider' | 'consumer'): ProblemView {
  return {
    layer: 'lineage',
    code: p.code,
    message: p.offset === undefined ? p.message : `${p.message} (byte ${p.offset})`,
    ...(p.author !== undefined ? { author: p.author, role: role(p.author) } : {}),
    ...(p.seq !== undefined ? { seq: p.seq } : {}),
    ...(p.cid !== undefined ? { cid: p.cid } : {}),
  }
}

/**
 * One export as a record: lineage's offline verification decides what is
 * wrong with it; an intact export gives its timeline from the verifier,
 * a damaged one shows whatever entries can still be read.
 */
export async function loadExport(file: string): Promise<PairRecord> {
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await readFile(file))
  } catch (err) {
    throw new ExportReadError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file })
  }
  const opened = await openExport(bytes)
  const report = opened.report
  const checked = 'CAR export verified offline by @tally/lineage: block hashes, hash links, head and checkpoint signatures, embedded documents'
  if (opened.pair !== undefined && report.ok) {
    const pair = opened.pair
    const chains: { provider: EntryBlock[]; consumer: EntryBlock[] } = { provider: [], consumer: [] }
    for (const b of opened.timeline()) chains[b.entry.author === pair.provider ? 'provider' : 'consumer'].push(b)
    return recordOf(pair, file, chains, [], checked)
  }
  const contents = readExport(bytes, file)
  const role = (a: string) => (a === contents.pair.provider ? 'provider' : 'consumer')
  const problems = report.problems.map((p) => problemView(p, role))
  if (problems.length === 0) problems.push({ layer: 'lineage', code: 'ExportInvalidError', message: 'the export does not verify' })
  return recordOf(contents.pair, file, contents.chains, problems, checked)
}

interface Loaded {
  version: string
  record: PairRecord
}

/**
 * Pairs from exported CAR files. Each file is read when first asked for and
 * again when it changes on disk (size or mtime). When several files hold
 * the same pair, the one with the most entries is shown.
 */
export function carSource(files: readonly string[]): ExplorerSource {
  const loaded = new Map<string, Loaded>()
  const cache = new DetailCache()

  const load = async (file: string): Promise<Loaded> => {
    let version: string
    try {
      const s = await stat(file)
      version = `${s.size}:${s.mtimeMs}`
    } catch (err) {
      throw new ExportReadError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file })
    }
    const held = loaded.get(file)
    if (held !== undefined && held.version === version) return held
    const next = { version, record: await loadExport(file) }
    loaded.set(file, next)
    return next
  }

  const byPair = async (): Promise<Map<string, { file: string; loaded: Loaded }>> => {
    const out = new Map<string, { file: string; loaded: Loaded }>()
    for (const file of files) {
      const l = await load(file)
      const id = l.record.id.toString()
      const size = (r: PairRecord) => r.chains.provider.length + r.chains.consumer.length
      const other = out.get(id)
      if (other === undefined || size(l.record) > size(other.loaded.record)) out.set(id, { file, loaded: l })
    }
    cache.keep(new Set(out.keys()))
    return out
  }

  const detail = (id: string, file: string, l: Loaded): Promise<PairDetail> => cache.get(id, `${file}:${l.version}`, async () => l.record)

  return {
    async pairs(): Promise<PairSummary[]> {
      const out: PairSummary[] = []
      for (const [id, { file, loaded: l }] of await byPair()) out.push(summaryOf(await detail(id, file, l)))
      return sortSummaries(out)
    },
    async pair(id: string): Promise<PairDetail | undefined> {
      const hit = (await byPair()).get(id)
      return hit === undefined ? undefined : detail(id, hit.file, hit.loaded)
    },
  }
}

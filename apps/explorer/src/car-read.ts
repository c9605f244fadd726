import { CID, cidOfBytes, decode, type EntryBlock } from '@tally/core'
import { decodeEntryFast, type PairDescriptor, parsePairDescriptor } from '@tally/lineage'
import { ExportReadError } from './errors.ts'
import type { ProblemView } from './view.ts'

/** What the explorer takes out of one export: the pair, its blocks by chain, and anything unreadable. */
export interface ExportContents {
  pair: PairDescriptor
  chains: { provider: EntryBlock[]; consumer: EntryBlock[] }
  problems: ProblemView[]
}

function varint(b: Uint8Array, pos: number): [number, number] | undefined {
  let value = 0
  let mult = 1
  for (let i = 0; i < 8 && pos + i < b.byteLength; i++) {
    const byte = b[pos + i] as number
    value += (byte & 0x7f) * mult
    if ((byte & 0x80) === 0) return [value, i + 1]
    mult *= 128
  }
  return undefined
}

/**
 * Read a CARv1 pair-log export (lineage's layout: one root, the manifest,
 * then entries) into chains. Tolerant: a block that does not hash to its
 * CID, or does not decode, becomes a problem and reading goes on; a broken
 * section ends the reading there. Throws ExportReadError only when no pair
 * can be named (no header, no manifest).
 */
export function readExport(bytes: Uint8Array, what: string): ExportContents {
  const problems: ProblemView[] = []
  const h = varint(bytes, 0)
  if (h === undefined || h[0] === 0 || h[1] + h[0] > bytes.byteLength) throw new ExportReadError(`${what} is not a CAR file (no header)`)
  let root: CID | null = null
  try {
    const header = decode(bytes.subarray(h[1], h[1] + h[0])) as { roots?: unknown }
    root = Array.isArray(header.roots) ? CID.asCID(header.roots[0]) : null
  } catch {
    // reported below
  }
  if (root === null) throw new ExportReadError(`${what} is not a CAR file (unreadable header)`)
  let pair: PairDescriptor | undefined
  const entries: EntryBlock[] = []
  let pos = h[1] + h[0]
  while (pos < bytes.byteLength) {
    const v = varint(bytes, pos)
    if (v === undefined || v[0] === 0 || pos + v[1] + v[0] > bytes.byteLength) {
      problems.push({ layer: 'lineage', code: 'CarFormatError', message: `unreadable section at byte ${pos}; the rest of the file is not read` })
      break
    }
    const start = pos + v[1]
    const end = start + v[0]
    pos = end
    let cid: CID
    let data: Uint8Array
    try {
      const [c, rest] = CID.decodeFirst(bytes.subarray(start, end))
      cid = c
      data = rest
    } catch {
      problems.push({ layer: 'lineage', code: 'CarFormatError', message: `unreadable CID at byte ${start}` })
      continue
    }
    const cidText = cid.toString()
    if (cidOfBytes(data).toString() !== cidText) {
      problems.push({ layer: 'lineage', code: 'BlockHashMismatchError', message: `block at byte ${start} does not hash to its CID`, cid: cidText })
      continue
    }
    if (cid.equals(root)) {
      try {
        pair = parsePairDescriptor((decode(data) as { pair?: unknown }).pair)
      } catch (err) {
        throw new ExportReadError(`${what} has an unreadable manifest: ${(err as Error).message}`)
      }
      continue
    }
    try {
      entries.push(decodeEntryFast(data))
    } catch (err) {
      problems.push({ layer: 'lineage', code: (err as Error).name, message: `block ${cid} is not an entry: ${(err as Error).message}`, cid: cid.toString() })
    }
  }
  if (pair === undefined) throw new ExportReadError(`${what} has no manifest block`)
  const chains: { provider: EntryBlock[]; consumer: EntryBlock[] } = { provider: [], consumer: [] }
  for (const b of entries) {
    if (b.entry.author === pair.provider) chains.provider.push(b)
    else if (b.entry.author === pair.consumer) chains.consumer.push(b)
    else problems.push({ layer: 'lineage', code: 'WrongAuthorError', message: `entry by ${b.entry.author}, not a party`, cid: b.cid.toString() })
  }
  chains.provider.sort((a, b) => a.entry.seq - b.entry.seq)
  chains.consumer.sort((a, b) => a.entry.seq - b.entry.seq)
  return { pair: pair, chains, problems }
}

/**
 * CARv1 export of a pair log (readable by any IPLD tool, e.g. @ipld/car).
 *
 * Layout: header {version: 1, roots: [manifest CID]}, then the manifest
 * block, then every entry of both chains in timeline order. Nothing else.
 * The manifest is not signed: the heads it names are signed entries, and
 * every other entry hangs off them by hash links.
 */
import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { type CID, encode, parseWith, schema, toBlock } from '@tally/core'
import { varint } from 'multiformats'
import type { PairDescriptor } from './api.ts'
import { pairDescriptorSchema } from './pair.ts'
import type { PairLog } from './pair-log.ts'
import { timelineOf } from './timeline-reader.ts'

export const EXPORT_TYPE = 'tally-export'
export const EXPORT_VERSION = 1
/** A manifest is small: pair, two heads, checkpoint CIDs. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

export interface ExportManifest {
  type: typeof EXPORT_TYPE
  v: typeof EXPORT_VERSION
  pair: PairDescriptor
  heads: { provider: { seq: number; cid: CID } | null; consumer: { seq: number; cid: CID } | null }
  /** CIDs of the 'checkpoint' entries (countersigned), oldest first. */
  checkpoints: CID[]
  exportedAt: number
}

const headSchema = schema.z.strictObject({ seq: schema.uint.min(1), cid: schema.cid }).nullable()
export const manifestSchema = schema.z.strictObject({
  type: schema.z.literal(EXPORT_TYPE),
  v: schema.z.literal(EXPORT_VERSION),
  pair: pairDescriptorSchema,
  heads: schema.z.strictObject({ provider: headSchema, consumer: headSchema }),
  checkpoints: schema.z.array(schema.cid).max(1_000_000),
  exportedAt: schema.timeMs,
})

export function parseManifest(value: unknown): ExportManifest {
  return parseWith(manifestSchema, value, 'export manifest') as ExportManifest
}

function section(cid: CID, bytes: Uint8Array): Uint8Array {
  const len = cid.bytes.byteLength + bytes.byteLength
  const head = varint.encodeTo(len, new Uint8Array(varint.encodingLength(len)))
  const out = new Uint8Array(head.byteLength + len)
  out.set(head, 0)
  out.set(cid.bytes, head.byteLength)
  out.set(bytes, head.byteLength + cid.bytes.byteLength)
  return out
}

export function carHeader(root: CID): Uint8Array {
  const header = encode({ version: 1, roots: [root] })
  const out = new Uint8Array(varint.encodingLength(header.byteLength) + header.byteLength)
  varint.encodeTo(header.byteLength, out, 0)
  out.set(header, out.byteLength - header.byteLength)
  return out
}

export interface ExportOptions {
  exportedAt?: number
}

/**
 * Stream the durable part of `log` as a CARv1 file. Entries appended while
 * the export runs are not included (heads are taken at the start).
 */
export async function* exportPairLog(log: PairLog, opts: ExportOptions = {}): AsyncIterable<Uint8Array> {
  const heads = log.heads()
  const top = { provider: heads.provider?.seq ?? 0, consumer: heads.consumer?.seq ?? 0 }
  const checkpoints = log
    .checkpoints()
    .filter((s) => s.heads.provider <= top.provider && s.heads.consumer <= top.consumer)
    .map((s) => s.entry)
  const manifest: ExportManifest = {
    type: EXPORT_TYPE,
    v: EXPORT_VERSION,
    pair: { provider: log.pair.provider, consumer: log.pair.consumer },
    heads: {
      provider: heads.provider === null ? null : { seq: heads.provider.seq, cid: heads.provider.cid },
      consumer: heads.consumer === null ? null : { seq: heads.consumer.seq, cid: heads.consumer.cid },
    },
    checkpoints,
    exportedAt: opts.exportedAt ?? Date.now(),
  }
  const m = toBlock(manifest)
  yield carHeader(m.cid)
  yield section(m.cid, m.bytes)
  // Batch small sections into larger chunks: fewer writes, same bytes.
  let buf: Uint8Array[] = []
  let size = 0
  for await (const b of timelineOf(log, top)) {
    const s = section(b.cid, b.bytes)
    buf.push(s)
    size += s.byteLength
    if (size >= 1 << 20) {
      yield concat(buf, size)
      buf = []
      size = 0
    }
  }
  if (size > 0) yield concat(buf, size)
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.byteLength
  }
  return out
}

/** The whole export in memory. */
export async function exportPairLogBytes(log: PairLog, opts: ExportOptions = {}): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let size = 0
  for await (const p of exportPairLog(log, opts)) {
    parts.push(p)
    size += p.byteLength
  }
  return concat(parts, size)
}

/** Write the export to `path` (created or truncated, mode 0644). */
export async function writePairLogExport(log: PairLog, path: string, opts: ExportOptions = {}): Promise<{ bytes: number }> {
  const out = createWriteStream(path)
  let bytes = 0
  try {
    for await (const chunk of exportPairLog(log, opts)) {
      bytes += chunk.byteLength
      if (!out.write(chunk)) await once(out, 'drain')
    }
  } finally {
    out.end()
    await once(out, 'close')
  }
  return { bytes }
}

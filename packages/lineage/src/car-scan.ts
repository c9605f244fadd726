/**
 * A defensive CARv1 scanner. It never throws on bad bytes: every structural
 * fault becomes a problem with its byte offset, and scanning resumes at the
 * next section whose bytes hash to its CID (sections of this format always
 * carry CIDv1 dag-cbor sha2-256, so a resync point is unambiguous).
 *
 * Section: varint(len) || CID (36 bytes here) || block bytes.
 */
import { hash } from 'node:crypto'
import { CID, decode } from '@tally/core'
import { MAX_ENTRY_BYTES } from '@tally/core'
import { MAX_MANIFEST_BYTES } from './car.ts'

/** 0x01 CIDv1, 0x71 dag-cbor, 0x12 sha2-256, 0x20 32-byte digest. */
export const CID_PREFIX = Uint8Array.of(0x01, 0x71, 0x12, 0x20)
export const CID_BYTES = 36
export const MAX_SECTION = CID_BYTES + Math.max(MAX_ENTRY_BYTES, MAX_MANIFEST_BYTES)
const MAX_HEADER = 4096

export interface ScannedBlock {
  sectionOffset: number
  dataOffset: number
  dataLength: number
  /** Offset of the 32-byte digest the section's CID declares; -1 when the CID is unreadable or of another kind. */
  declaredAt: number
  /** sha2-256 of the block bytes. */
  digest: Uint8Array
  /** The digest equals the declared one. */
  intact: boolean
}

export interface ScanProblem {
  code: 'CarFormatError' | 'BlockHashMismatchError' | 'UnexpectedBlockError'
  message: string
  offset: number
  /** The section concerned, when there is one. */
  block?: ScannedBlock
}

export interface ScanResult {
  /** Root CIDs named by the header (empty when the header is unreadable). */
  roots: CID[]
}

export function sha256(data: Uint8Array): Uint8Array {
  return hash('sha256', data, 'buffer') as unknown as Uint8Array
}

function readVarint(b: Uint8Array, pos: number): [number, number] | undefined {
  let value = 0
  let shift = 1
  for (let i = 0; i < 4; i++) {
    if (pos + i >= b.byteLength) return undefined
    const byte = b[pos + i]!
    value += (byte & 0x7f) * shift
    if ((byte & 0x80) === 0) {
      // Minimal encoding only: a trailing zero byte would be a second spelling of the same length.
      if (i > 0 && byte === 0) return undefined
      return [value, i + 1]
    }
    shift *= 128
  }
  return undefined
}

function equalAt(b: Uint8Array, at: number, d: Uint8Array): boolean {
  for (let i = 0; i < d.byteLength; i++) if (b[at + i] !== d[i]) return false
  return true
}

/** Section of this format starting at `p` whose bytes hash to its CID, or undefined. */
function validSectionAt(b: Uint8Array, p: number): number | undefined {
  const v = readVarint(b, p)
  if (v === undefined) return undefined
  const [len, n] = v
  const cidAt = p + n
  const end = cidAt + len
  if (len <= CID_BYTES || len > MAX_SECTION || end > b.byteLength || !equalAt(b, cidAt, CID_PREFIX)) return undefined
  return equalAt(b, cidAt + 4, sha256(b.subarray(cidAt + CID_BYTES, end))) ? end : undefined
}

/** The next offset >= from where a verifiable section starts, or the end of the bytes. */
export function resync(b: Uint8Array, from: number): number {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  let at = from
  for (;;) {
    const hit = buf.indexOf(CID_PREFIX, at + 1)
    if (hit < 0) return b.byteLength
    // The varint before the CID is 1-3 bytes long.
    for (let k = 1; k <= 3; k++) {
      const p = hit - k
      if (p < from) break
      const v = readVarint(b, p)
      if (v !== undefined && p + v[1] === hit && validSectionAt(b, p) !== undefined) return p
    }
    at = hit
  }
}

/**
 * Walk every section of `b`. Calls `onBlock` for each section whose extent
 * is known (intact or not), `onProblem` for every fault.
 */
export function scanCar(
  b: Uint8Array,
  onBlock: (block: ScannedBlock) => void,
  onProblem: (p: ScanProblem) => void,
  onProgress?: (done: number, total: number) => void,
): ScanResult {
  const roots: CID[] = []
  let pos = 0
  const h = readVarint(b, 0)
  if (h === undefined || h[0] === 0 || h[0] > MAX_HEADER || h[1] + h[0] > b.byteLength) {
    onProblem({ code: 'CarFormatError', message: 'CAR header length is unreadable', offset: 0 })
    pos = resync(b, 0)
  } else {
    pos = h[1] + h[0]
    try {
      const header = decode(b.subarray(h[1], pos)) as { version?: unknown; roots?: unknown }
      const keys = header !== null && typeof header === 'object' ? Object.keys(header).sort().join(',') : ''
      if (keys !== 'roots,version' || header.version !== 1 || !Array.isArray(header.roots)) throw new Error('expected {version: 1, roots}')
      for (const r of header.roots) {
        const cid = CID.asCID(r)
        if (cid === null) throw new Error('a root is not a CID')
        roots.push(cid)
      }
      if (roots.length !== 1) throw new Error(`expected one root, got ${roots.length}`)
    } catch (err) {
      onProblem({ code: 'CarFormatError', message: `CAR header is invalid: ${(err as Error).message}`, offset: 0 })
    }
  }
  let nextProgress = 0
  while (pos < b.byteLength) {
    if (onProgress !== undefined && pos >= nextProgress) {
      onProgress(pos, b.byteLength)
      nextProgress = pos + (1 << 20)
    }
    const start = pos
    const v = readVarint(b, pos)
    if (v === undefined || v[0] <= CID_BYTES || v[0] > MAX_SECTION || start + v[1] + v[0] > b.byteLength) {
      const what = v === undefined ? 'unreadable section length' : `section length ${v[0]} out of bounds`
      onProblem({ code: 'CarFormatError', message: `${what} at byte ${start}`, offset: start })
      pos = resync(b, start)
      continue
    }
    const cidAt = start + v[1]
    const end = cidAt + v[0]
    if (equalAt(b, cidAt, CID_PREFIX)) {
      const dataOffset = cidAt + CID_BYTES
      const digest = sha256(b.subarray(dataOffset, end))
      const intact = equalAt(b, cidAt + 4, digest)
      const block: ScannedBlock = { sectionOffset: start, dataOffset, dataLength: end - dataOffset, declaredAt: cidAt + 4, digest, intact }
      onBlock(block)
      if (intact) {
        pos = end
      } else {
        onProblem({ code: 'BlockHashMismatchError', message: `block at byte ${start} does not hash to its CID`, offset: start, block })
        pos = resync(b, start)
      }
      continue
    }
    // Not a dag-cbor sha2-256 CIDv1: either damaged, or a block of another kind.
    let cidLen = CID_BYTES
    let message = `unreadable CID at byte ${cidAt}`
    let code: ScanProblem['code'] = 'CarFormatError'
    try {
      const [cid] = CID.decodeFirst(b.subarray(cidAt, end))
      cidLen = cid.bytes.byteLength
      message = `block ${cid} at byte ${start} is not a dag-cbor sha2-256 block`
      code = 'UnexpectedBlockError'
    } catch {
      // keep the guess: a 36-byte CID, as every CID of this format
    }
    const dataOffset = Math.min(end, cidAt + cidLen)
    const block: ScannedBlock = {
      sectionOffset: start,
      dataOffset,
      dataLength: end - dataOffset,
      declaredAt: -1,
      digest: sha256(b.subarray(dataOffset, end)),
      intact: false,
    }
    onBlock(block)
    onProblem({ code, message, offset: start, block })
    pos = resync(b, start)
  }
  onProgress?.(b.byteLength, b.byteLength)
  return { roots }
}

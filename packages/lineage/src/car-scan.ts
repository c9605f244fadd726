/**
 * A defensive, incremental CARv1 scanner. It never throws on bad bytes:
 * every structural fault becomes a problem with its byte offset, and
 * scanning resumes at the next section whose bytes hash to its CID
 * (sections of this format always carry CIDv1 dag-cbor sha2-256, so a
 * resync point is unambiguous). Bytes arrive in chunks, so a file of any
 * size is scanned in bounded memory.
 *
 * Section: varint(len) || CID (36 bytes here) || block bytes.
 */
import { hash } from 'node:crypto'
import { CID, MAX_ENTRY_BYTES, decode } from '@tally/core'
import { MAX_MANIFEST_BYTES } from './car.ts'

/** 0x01 CIDv1, 0x71 dag-cbor, 0x12 sha2-256, 0x20 32-byte digest. */
export const CID_PREFIX = Uint8Array.of(0x01, 0x71, 0x12, 0x20)
export const CID_BYTES = 36
export const MAX_SECTION = CID_BYTES + Math.max(MAX_ENTRY_BYTES, MAX_MANIFEST_BYTES)
const MAX_HEADER = 4096

export interface ScannedBlock {
  /** Absolute offsets in the CAR. */
  sectionOffset: number
  dataOffset: number
  dataLength: number
  /** The block bytes (valid only during the callback). */
  data: Uint8Array
  /** The 32-byte digest the section's CID declares (valid only during the callback); undefined when unreadable or of another kind. */
  declared: Uint8Array | undefined
  /** sha2-256 of the block bytes. */
  digest: Uint8Array
  /** The digest equals the declared one. */
  intact: boolean
}

export interface ScanProblem {
  code: 'CarFormatError' | 'BlockHashMismatchError' | 'UnexpectedBlockError'
  message: string
  offset: number
  /** Digests of the section concerned (actual, then declared), when there is one. */
  digests: Uint8Array[]
}

export function sha256(data: Uint8Array): Uint8Array {
  return hash('sha256', data, 'buffer') as unknown as Uint8Array
}

const NEED_MORE = -2
const BAD = -1

/** Minimal LEB128 of at most 4 bytes: [value, length], NEED_MORE, or BAD. */
function readVarint(b: Uint8Array, pos: number): [number, number] | typeof NEED_MORE | typeof BAD {
  let value = 0
  let shift = 1
  for (let i = 0; i < 4; i++) {
    if (pos + i >= b.byteLength) return NEED_MORE
    const byte = b[pos + i]!
    value += (byte & 0x7f) * shift
    if ((byte & 0x80) === 0) return i > 0 && byte === 0 ? BAD : [value, i + 1]
    shift *= 128
  }
  return BAD
}

function equalAt(b: Uint8Array, at: number, d: Uint8Array): boolean {
  for (let i = 0; i < d.byteLength; i++) if (b[at + i] !== d[i]) return false
  return true
}

export class CarScanner {
  readonly roots: CID[] = []
  readonly #onBlock: (block: ScannedBlock) => void
  readonly #onProblem: (p: ScanProblem) => void
  #headerDone = false
  /** Absolute offset from which a resync search continues, or -1 when in step. */
  #resyncFrom = -1

  constructor(onBlock: (block: ScannedBlock) => void, onProblem: (p: ScanProblem) => void) {
    this.#onBlock = onBlock
    this.#onProblem = onProblem
  }

  /**
   * Scan `chunk`, whose first byte is at absolute offset `base`. Returns how
   * many bytes of it are done; pass the rest again, followed by more bytes.
   * With `final`, everything is consumed.
   */
  push(chunk: Uint8Array, base: number, final: boolean): number {
    let pos = 0
    if (!this.#headerDone) {
      const h = readVarint(chunk, 0)
      if (h === NEED_MORE && !final) return 0
      if (h === NEED_MORE || h === BAD || h[0] === 0 || h[0] > MAX_HEADER) {
        this.#onProblem({ code: 'CarFormatError', message: 'CAR header length is unreadable', offset: 0, digests: [] })
        this.#resyncFrom = 0
      } else {
        if (h[1] + h[0] > chunk.byteLength && !final) return 0
        this.#header(chunk.subarray(h[1], Math.min(chunk.byteLength, h[1] + h[0])))
        pos = Math.min(chunk.byteLength, h[1] + h[0])
      }
      this.#headerDone = true
    }
    for (;;) {
      if (this.#resyncFrom >= 0) {
        const found = this.#resync(chunk, base, final)
        if (found < 0) return found === NEED_MORE ? Math.max(pos, this.#resyncFrom - base) : chunk.byteLength
        pos = found
        this.#resyncFrom = -1
      }
      if (pos >= chunk.byteLength) return pos
      const start = pos
      const v = readVarint(chunk, pos)
      if (v === NEED_MORE && !final) return start
      if (v === NEED_MORE || v === BAD || v[0] <= CID_BYTES || v[0] > MAX_SECTION) {
        const what = typeof v === 'number' ? 'unreadable section length' : `section length ${v[0]} out of bounds`
        this.#fault('CarFormatError', `${what} at byte ${base + start}`, base + start, [])
        continue
      }
      const cidAt = start + v[1]
      const end = cidAt + v[0]
      if (end > chunk.byteLength) {
        if (!final) return start
        this.#fault('CarFormatError', `section at byte ${base + start} runs past the end of the file`, base + start, [])
        continue
      }
      if (equalAt(chunk, cidAt, CID_PREFIX)) {
        const data = chunk.subarray(cidAt + CID_BYTES, end)
        const declared = chunk.subarray(cidAt + 4, cidAt + CID_BYTES)
        const digest = sha256(data)
        const intact = equalAt(declared, 0, digest)
        this.#onBlock({ sectionOffset: base + start, dataOffset: base + cidAt + CID_BYTES, dataLength: data.byteLength, data, declared, digest, intact })
        if (intact) pos = end
        else this.#fault('BlockHashMismatchError', `block at byte ${base + start} does not hash to its CID`, base + start, [digest, declared.slice()])
        continue
      }
      // Not a dag-cbor sha2-256 CIDv1: damaged, or a block of another kind.
      let cidLen = CID_BYTES
      let message = `unreadable CID at byte ${base + cidAt}`
      let code: ScanProblem['code'] = 'CarFormatError'
      try {
        const [cid] = CID.decodeFirst(chunk.subarray(cidAt, end))
        cidLen = cid.bytes.byteLength
        message = `block ${cid} at byte ${base + start} is not a dag-cbor sha2-256 block`
        code = 'UnexpectedBlockError'
      } catch {
        // keep the guess: a 36-byte CID, as every CID of this format
      }
      const dataStart = Math.min(end, cidAt + cidLen)
      const data = chunk.subarray(dataStart, end)
      const digest = sha256(data)
      this.#onBlock({
        sectionOffset: base + start,
        dataOffset: base + dataStart,
        dataLength: data.byteLength,
        data,
        declared: undefined,
        digest,
        intact: false,
      })
      this.#fault(code, message, base + start, [digest])
    }
  }

  #fault(code: ScanProblem['code'], message: string, offset: number, digests: Uint8Array[]): void {
    this.#onProblem({ code, message, offset, digests })
    this.#resyncFrom = offset
  }

  #header(bytes: Uint8Array): void {
    try {
      const header = decode(bytes.slice()) as { version?: unknown; roots?: unknown }
      const keys = header !== null && typeof header === 'object' ? Object.keys(header).sort().join(',') : ''
      if (keys !== 'roots,version' || header.version !== 1 || !Array.isArray(header.roots)) throw new Error('expected {version: 1, roots}')
      for (const r of header.roots) {
        const cid = CID.asCID(r)
        if (cid === null) throw new Error('a root is not a CID')
        this.roots.push(cid)
      }
      if (this.roots.length !== 1) throw new Error(`expected one root, got ${this.roots.length}`)
    } catch (err) {
      this.#onProblem({ code: 'CarFormatError', message: `CAR header is invalid: ${(err as Error).message}`, offset: 0, digests: [] })
    }
  }

  /**
   * The relative offset of the next section after #resyncFrom whose bytes
   * hash to its CID; NEED_MORE when the chunk ends first (and is not final);
   * BAD when there is none before the end of the file.
   */
  #resync(b: Uint8Array, base: number, final: boolean): number {
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    const from = this.#resyncFrom - base
    let at = from
    for (;;) {
      const hit = buf.indexOf(CID_PREFIX, at + 1)
      if (hit < 0) {
        // Keep the last bytes: a varint and CID may straddle the chunk end.
        if (!final) this.#resyncFrom = base + Math.max(from, b.byteLength - 8)
        return final ? BAD : NEED_MORE
      }
      for (let k = 1; k <= 3; k++) {
        const p = hit - k
        if (p <= from) break
        const v = readVarint(b, p)
        if (typeof v === 'number' || p + v[1] !== hit) continue
        const end = hit + v[0]
        if (v[0] <= CID_BYTES || v[0] > MAX_SECTION) continue
        if (end > b.byteLength) {
          if (final) continue
          this.#resyncFrom = base + p - 1
          return NEED_MORE
        }
        if (equalAt(b, hit + 4, sha256(b.subarray(hit + CID_BYTES, end)))) return p
      }
      at = hit
    }
  }
}

/** Scan a whole CAR held in memory. */
export function scanCar(b: Uint8Array, onBlock: (block: ScannedBlock) => void, onProblem: (p: ScanProblem) => void): { roots: CID[] } {
  const s = new CarScanner(onBlock, onProblem)
  s.push(b, 0, true)
  return { roots: s.roots }
}

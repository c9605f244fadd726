import { createHash, type Hash } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'

/** The chain starts from 32 zero bytes. */
export const LOGS_HASH_GENESIS = '0'.repeat(64)

/**
 * One step of the per-epoch log hash chain:
 * `h_e = sha256(h_{e-1} || sha256(stdout bytes of epoch e) || sha256(stderr bytes of epoch e))`.
 * Hashing each stream separately keeps the chain deterministic even though
 * the arrival order between the two pipes is not.
 */
export function logsChainStep(prevHex: string, stdoutDigest: Uint8Array, stderrDigest: Uint8Array): string {
  return createHash('sha256').update(Buffer.from(prevHex, 'hex')).update(stdoutDigest).update(stderrDigest).digest('hex')
}

const sha256 = (b: Uint8Array): Uint8Array => createHash('sha256').update(b).digest()

/**
 * Recompute the chain from the kept log files and the cumulative byte
 * counts each epoch reported, so a consumer or arbiter holding the files
 * can check every `logsHash` in the usage entries.
 */
export function logsHashChain(
  stdout: Uint8Array,
  stderr: Uint8Array,
  boundaries: ReadonlyArray<{ stdoutBytes: number; stderrBytes: number }>,
  startHex = LOGS_HASH_GENESIS,
): string[] {
  const out: string[] = []
  let prev = startHex
  let o = 0
  let e = 0
  for (const b of boundaries) {
    prev = logsChainStep(prev, sha256(stdout.subarray(o, b.stdoutBytes)), sha256(stderr.subarray(e, b.stderrBytes)))
    o = b.stdoutBytes
    e = b.stderrBytes
    out.push(prev)
  }
  return out
}

/**
 * A bounded log file for one stream. Bytes past `maxBytes` are dropped
 * after a one-line marker; what the file holds is exactly what is hashed,
 * so the hash can be checked against the file.
 */
export class LogStream {
  readonly path: string
  readonly maxBytes: number
  #fd: number | null
  #written = 0
  #dropped = 0
  #epochHash: Hash = createHash('sha256')

  constructor(path: string, maxBytes: number) {
    this.path = path
    this.maxBytes = maxBytes
    this.#fd = openSync(path, 'w', 0o600)
  }

  get bytes(): number {
    return this.#written
  }

  get droppedBytes(): number {
    return this.#dropped
  }

  write(chunk: Uint8Array): void {
    if (this.#fd === null) return
    const room = this.maxBytes - this.#written
    if (room <= 0) {
      this.#dropped += chunk.byteLength
      return
    }
    const kept = chunk.byteLength <= room ? chunk : chunk.subarray(0, room)
    this.#append(kept)
    if (kept.byteLength < chunk.byteLength) {
      this.#dropped += chunk.byteLength - kept.byteLength
      this.#append(Buffer.from(`\n[tally: log truncated at ${this.maxBytes} bytes]\n`))
    }
  }

  #append(bytes: Uint8Array): void {
    let off = 0
    while (off < bytes.byteLength) off += writeSync(this.#fd!, bytes, off, bytes.byteLength - off)
    this.#epochHash.update(bytes)
    this.#written += bytes.byteLength
  }

  /** Digest of the bytes kept since the previous call, and start a new epoch. */
  takeEpochDigest(): Uint8Array {
    const d = this.#epochHash.digest()
    this.#epochHash = createHash('sha256')
    return d
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd)
    this.#fd = null
  }
}

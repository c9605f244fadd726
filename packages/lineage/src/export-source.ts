import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { StoreError } from './errors.ts'

/** Where an export's bytes come from: memory, or a file read in chunks. */
export interface ExportSource {
  readonly size: number
  /** Feed the whole source to `push` in order (see CarScanner.push); `onProgress` gets bytes done. */
  scan(push: (chunk: Uint8Array, base: number, final: boolean) => number, onProgress?: (done: number, total: number) => void): void
  /** Bytes at an absolute offset; a fresh copy for files, a view for memory. */
  read(offset: number, length: number): Uint8Array
  close(): void
}

export function memorySource(bytes: Uint8Array): ExportSource {
  return {
    size: bytes.byteLength,
    scan(push, onProgress) {
      push(bytes, 0, true)
      onProgress?.(bytes.byteLength, bytes.byteLength)
    },
    read: (offset, length) => bytes.subarray(offset, offset + length),
    close: () => undefined,
  }
}

/** Chunk size of file reads; sections larger than this grow the window. */
const CHUNK = 4 * 1024 * 1024

export function fileSource(path: string): ExportSource {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw new StoreError(`cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { path }, { cause: err })
  }
  const size = fstatSync(fd).size
  return {
    size,
    scan(push, onProgress) {
      let buf = Buffer.allocUnsafe(CHUNK)
      let have = 0
      let base = 0
      let filePos = 0
      for (;;) {
        if (have === buf.byteLength) {
          const bigger = Buffer.allocUnsafe(buf.byteLength * 2)
          buf.copy(bigger, 0, 0, have)
          buf = bigger
        }
        const n = readSync(fd, buf, have, buf.byteLength - have, filePos)
        have += n
        filePos += n
        const final = n === 0 || filePos >= size
        const view = new Uint8Array(buf.buffer, buf.byteOffset, have)
        const done = push(view, base, final)
        onProgress?.(base + done, size)
        if (final) return
        buf.copy(buf, 0, done, have)
        have -= done
        base += done
      }
    },
    read(offset, length) {
      const out = new Uint8Array(length)
      const n = readSync(fd, out, 0, length, offset)
      return n === length ? out : out.subarray(0, n)
    },
    close: () => closeSync(fd),
  }
}

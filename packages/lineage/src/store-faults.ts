/**
 * Disk faults of the LevelDB store as named errors.
 *
 * classic-level reports an I/O failure as `code: 'LEVEL_IO_ERROR'` (on
 * open: `LEVEL_DATABASE_NOT_OPEN` with that error as `cause`) and LevelDB's
 * message `IO error: <file>: <strerror(errno)>`; the errno survives only as
 * its strerror text, which is what is matched here.
 *
 * Why a store refuses every write after one failed (measured on tmpfs and
 * ext4, classic-level 3 with LevelDB 1.20, see test/disk-faults.test.ts):
 * - a failed append to LevelDB's log (disk full, file size limit, read-only
 *   filesystem) may leave part of the record in the file while the writer
 *   believes the block is filled; LevelDB then accepts and acknowledges
 *   later writes on the same handle, and drops them all when the log is
 *   replayed at the next open (20 of 20 lost in the measurement);
 * - a failed flush of the memtable to a table file is sticky: every later
 *   write fails with the same error until the database is reopened.
 * Reopening replays the log, drops the torn record and starts a new log, so
 * the remedy is always the same: fix the disk, then reopen the store.
 */
import { StoreFullError, StoreUnwritableError, StoreWriteError } from './errors.ts'

type WriteErrorClass = typeof StoreWriteError

interface Fault {
  cls: WriteErrorClass
  code: string
  /** What the operator should do (before restarting). */
  remedy: string
}

/** strerror(3) texts of glibc and musl, as LevelDB's PosixError puts them in its message. */
const FAULTS: [RegExp, Fault][] = [
  [/No space left on device/i, { cls: StoreFullError, code: 'ENOSPC', remedy: 'free space on that disk' }],
  [/Disk quota exceeded/i, { cls: StoreFullError, code: 'EDQUOT', remedy: 'raise the disk quota or free space' }],
  [/File too large/i, { cls: StoreFullError, code: 'EFBIG', remedy: 'raise the file size limit (ulimit -f)' }],
  [/Read-only file system/i, { cls: StoreUnwritableError, code: 'EROFS', remedy: 'remount the filesystem read-write (check it first)' }],
  [/Permission denied/i, { cls: StoreUnwritableError, code: 'EACCES', remedy: 'give the node owner and write permission on the directory' }],
  [/Operation not permitted/i, { cls: StoreUnwritableError, code: 'EPERM', remedy: 'give the node owner and write permission on the directory' }],
]

function levelMessage(err: unknown): string {
  const e = err as { message?: unknown; cause?: { message?: unknown } } | null
  const own = typeof e?.message === 'string' ? e.message : String(err)
  const cause = typeof e?.cause?.message === 'string' ? e.cause.message : undefined
  return cause !== undefined && cause !== own ? `${own}: ${cause}` : own
}

function faultOf(message: string): Fault | undefined {
  for (const [re, fault] of FAULTS) if (re.test(message)) return fault
  return undefined
}

function condition(cls: WriteErrorClass, dir: string): string {
  if (cls === StoreFullError) return `no room for the store in ${dir}`
  if (cls === StoreUnwritableError) return `the store directory ${dir} is not writable`
  return `a durable write to the store in ${dir} failed`
}

/** The named error for a failed durable write of the store in `dir`. Any failure is a StoreWriteError, disk faults a subclass. */
export function storeWriteError(dir: string, err: unknown): StoreWriteError {
  const message = levelMessage(err)
  const fault = faultOf(message)
  const cls = fault?.cls ?? StoreWriteError
  const remedy = fault?.remedy ?? 'check the disk and the directory'
  return new cls(`${condition(cls, dir)} (${message}): ${remedy}, then restart the node`, { dir, code: fault?.code, during: 'write' }, { cause: err })
}

/** The named error for a store that cannot be opened because of a disk fault, or undefined for other failures (a lock held, corruption). */
export function storeOpenFault(dir: string, err: unknown): StoreWriteError | undefined {
  const message = levelMessage(err)
  const fault = faultOf(message)
  if (fault === undefined) return undefined
  return new fault.cls(
    `cannot open the store: ${condition(fault.cls, dir)} (${message}): ${fault.remedy}, then start the node again`,
    {
      dir,
      code: fault.code,
      during: 'open',
    },
    { cause: err },
  )
}

/** What every write after `failure` gets: the same class, saying that the store must be reopened. */
export function storeRefusal(failure: StoreWriteError): StoreWriteError {
  const cls = failure.constructor as WriteErrorClass
  return new cls(
    `the store in ${failure.dir} refuses writes since one failed; ${failure.message}`,
    { dir: failure.dir, code: failure.code, during: 'refused' },
    {
      cause: failure,
    },
  )
}

/**
 * Real disk faults for tests: a small tmpfs the test mounts (disk full), an
 * ext4 image on a loop device whose kernel error handling turns it
 * read-only under open files (unwritable), and the capability checks that
 * say which of them this machine allows. Shared by the disk-fault suites of
 * lineage, node and the daemons.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, open, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: 20_000 })
  return stdout.trim()
}

export const isRoot = process.getuid?.() === 0
/** TALLY_DISK_FAULTS_NO_MOUNT=1 runs the suites as where mounting is not allowed (their fallbacks). */
const noMount = process.env['TALLY_DISK_FAULTS_NO_MOUNT'] !== undefined

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN); the reason when not. */
export async function canMountTmpfs(scratch: string): Promise<true | string> {
  if (noMount) return 'mounting disabled by TALLY_DISK_FAULTS_NO_MOUNT'
  if (!isRoot) return 'not root: mounting a tmpfs needs CAP_SYS_ADMIN'
  const probe = join(scratch, 'mount-probe')
  await mkdir(probe, { recursive: true })
  try {
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe])
  } catch (err) {
    return `mount -t tmpfs refused: ${(err as Error).message.split('\n')[0]}`
  }
  await sh('umount', [probe])
  return true
}

export interface Tmpfs {
  dir: string
  /** Fill the filesystem until fewer than `leave` bytes are free (to the page). */
  fill(leave?: number): Promise<void>
  /** Give the space taken by fill() back. */
  free(): Promise<void>
  unmount(): Promise<void>
}

/** Mount a tmpfs of `bytes` on `dir` (created). */
export async function mountTmpfs(dir: string, bytes: number): Promise<Tmpfs> {
  await mkdir(dir, { recursive: true })
  await sh('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir])
  const filler = join(dir, 'filler')
  let mounted = true
  return {
    dir,
    async fill(leave = 0) {
      const free = await freeBytes(dir)
      const fh = await open(filler, 'a')
      try {
        // Past the limit the write stops short (or fails with ENOSPC): the disk is then full to the page.
        const want = Math.max(0, free - leave)
        const chunk = Buffer.alloc(Math.min(want || 1, 1 << 20), 0x5a)
        let written = 0
        while (written < want) {
          try {
            const { bytesWritten } = await fh.write(chunk, 0, Math.min(chunk.length, want - written))
            if (bytesWritten === 0) break
            written += bytesWritten
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
            throw err
          }
        }
      } finally {
        await fh.close()
      }
    },
    async free() {
      await rm(filler, { force: true })
    },
    async unmount() {
      if (!mounted) return
      mounted = false
      await sh('umount', [dir]).catch(() => sh('umount', ['-l', dir]))
    },
  }
}

export async function freeBytes(dir: string): Promise<number> {
  const out = await sh('df', ['-B1', '--output=avail', dir])
  return Number(out.split('\n').pop())
}

export interface Ext4Loop {
  dir: string
  device: string
  /** Make the kernel see a filesystem error: with errors=remount-ro it turns read-only under the open files (EROFS). */
  breakIt(): Promise<void>
  /** Unmount (nothing may hold files there), check and repair, mount read-write again. */
  heal(): Promise<void>
  cleanup(): Promise<void>
}

/** Whether an ext4 image on a loop device can be made read-only under open files here; the reason when not. */
export async function canBreakExt4(scratch: string): Promise<true | string> {
  if (noMount) return 'mounting disabled by TALLY_DISK_FAULTS_NO_MOUNT'
  if (!isRoot) return 'not root: loop devices and mounts need CAP_SYS_ADMIN'
  let loop: Ext4Loop | undefined
  try {
    loop = await ext4Loop(join(scratch, 'ext4-probe'), 8 << 20)
    if (!existsSync(triggerOf(loop.device))) return `the kernel has no ${triggerOf(loop.device)} (ext4 error injection)`
    return true
  } catch (err) {
    return `no ext4 on a loop device: ${(err as Error).message.split('\n')[0]}`
  } finally {
    await loop?.cleanup()
  }
}

function triggerOf(device: string): string {
  return `/sys/fs/ext4/${basename(device)}/trigger_fs_error`
}

/** An ext4 filesystem of `bytes` in an image file under `base`, mounted on `base/mnt` with errors=remount-ro. */
export async function ext4Loop(base: string, bytes: number): Promise<Ext4Loop> {
  await mkdir(base, { recursive: true })
  const image = join(base, 'fs.img')
  const dir = join(base, 'mnt')
  await mkdir(dir, { recursive: true })
  const fh = await open(image, 'w')
  await fh.truncate(bytes)
  await fh.close()
  const device = await sh('losetup', ['-f', '--show', image])
  let mounted = false
  const mount = async () => {
    await sh('mount', ['-t', 'ext4', '-o', 'errors=remount-ro', device, dir])
    mounted = true
  }
  const umount = async () => {
    if (!mounted) return
    mounted = false
    // A file closed a moment ago can keep the mount busy on a loaded machine: retry before a lazy unmount,
    // which would leave the device in use and e2fsck unable to check it.
    for (let i = 0; i < 30; i++) {
      if (
        await sh('umount', [dir]).then(
          () => true,
          () => false,
        )
      )
        return
      await new Promise((r) => setTimeout(r, 100))
    }
    await sh('umount', ['-l', dir])
  }
  try {
    await sh('mkfs.ext4', ['-q', '-F', device])
    await mount()
  } catch (err) {
    await sh('losetup', ['-d', device]).catch(() => undefined)
    throw err
  }
  return {
    dir,
    device,
    async breakIt() {
      await writeFile(triggerOf(device), 'tally disk-fault test\n')
    },
    async heal() {
      await umount()
      // e2fsck exits 1 when it fixed something (it clears the error state the trigger recorded).
      for (let attempt = 1; ; attempt++) {
        const code = await run('e2fsck', ['-f', '-y', device], { timeout: 20_000 }).then(
          () => 0,
          (err: { code?: number }) => err.code ?? -1,
        )
        if (code === 0 || code === 1) break
        // 8: the device is still in use (a lazy unmount finishing); anything else, or too long, is a real failure.
        if (code !== 8 || attempt === 20) throw new Error(`e2fsck -f -y ${device} exited ${code}`)
        await new Promise((r) => setTimeout(r, 250))
      }
      await mount()
    },
    async cleanup() {
      await umount()
      await sh('losetup', ['-d', device]).catch(() => undefined)
      await rm(image, { force: true })
    },
  }
}

export interface DiskFaultCounts {
  /** Faults injected (a disk filled, a filesystem broken, a limit hit). */
  faults: number
  /** Acknowledged entries (append resolved, or acked by the receiver) missing after recovery: must be 0. */
  ackedLost: number
  /** Failed writes that surfaced as a named store error (StoreFullError, StoreUnwritableError). */
  typedErrors: number
  [k: string]: unknown
}

/**
 * Print the suite's summary line and, with TALLY_RELIABILITY_OUT, merge it into
 * $TALLY_RELIABILITY_OUT/disk-faults.json (three suites share the file; a lock directory keeps the merge whole).
 */
export async function reportDiskFaults(part: string, counts: DiskFaultCounts): Promise<void> {
  console.log(JSON.stringify({ suite: 'disk-faults', part, ...counts }))
  const out = process.env['TALLY_RELIABILITY_OUT']
  if (out === undefined) return
  await mkdir(out, { recursive: true })
  const lock = join(out, '.disk-faults.lock')
  for (let i = 0; ; i++) {
    try {
      await mkdir(lock)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 200) throw err
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  try {
    const file = join(out, 'disk-faults.json')
    let parts: Record<string, DiskFaultCounts> = {}
    try {
      parts = (JSON.parse(await readFile(file, 'utf8')) as { parts?: Record<string, DiskFaultCounts> }).parts ?? {}
    } catch {
      // First suite to report.
    }
    parts[part] = counts
    const sum = (k: 'faults' | 'ackedLost' | 'typedErrors') => Object.values(parts).reduce((n, p) => n + p[k], 0)
    const merged = { suite: 'disk-faults', faults: sum('faults'), ackedLost: sum('ackedLost'), typedErrors: sum('typedErrors'), parts }
    await writeFile(`${file}.tmp`, `${JSON.stringify(merged)}\n`)
    await rename(`${file}.tmp`, file)
  } finally {
    await rmdir(lock)
  }
}

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ProbeParseError } from './errors.ts'

/** The fields of /proc/<pid>/stat the executor uses (see proc(5)). */
export interface ProcStat {
  pid: number
  state: string
  ppid: number
  pgrp: number
  /** Clock ticks; utime/stime of the process, cutime/cstime of its waited-for children. */
  utime: number
  stime: number
  cutime: number
  cstime: number
  /** Clock ticks after boot; with pid it identifies a process across pid reuse. */
  starttime: number
  /** Resident set in pages. */
  rssPages: number
}

/**
 * Parse /proc/<pid>/stat. The command name sits in parentheses and may
 * itself contain spaces and parentheses, so fields are counted from the
 * last `)`.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) throw new ProbeParseError('malformed /proc/<pid>/stat')
  const f = text
    .slice(close + 2)
    .trim()
    .split(' ')
  if (f.length < 22) throw new ProbeParseError(`/proc/<pid>/stat has ${f.length + 2} fields, expected at least 24`)
  const n = (i: number): number => {
    const v = Number(f[i])
    if (!Number.isSafeInteger(v)) throw new ProbeParseError(`/proc/<pid>/stat field ${i + 3} is not an integer`)
    return v
  }
  return {
    pid: Number(text.slice(0, open).trim()),
    state: f[0]!,
    ppid: n(1),
    pgrp: n(2),
    utime: n(11),
    stime: n(12),
    cutime: n(13),
    cstime: n(14),
    starttime: n(19),
    rssPages: n(21),
  }
}

/** VmRSS and VmHWM (peak resident set) from /proc/<pid>/status, in bytes; 0 where absent (zombies, kernel threads). */
export function parseProcStatusMemory(text: string): { rssBytes: number; hwmBytes: number } {
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text)
    return m === null ? 0 : Number(m[1]) * 1024
  }
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') }
}

let clockTicks: number | undefined
let pageSize: number | undefined

function getconf(name: string, fallback: number): number {
  try {
    const v = Number(execFileSync('getconf', [name], { encoding: 'utf8', timeout: 2000 }).trim())
    return Number.isSafeInteger(v) && v > 0 ? v : fallback
  } catch {
    return fallback
  }
}

/** USER_HZ, the unit of the stat time fields (100 on every mainstream Linux build). */
export function clockTicksPerSecond(): number {
  clockTicks ??= getconf('CLK_TCK', 100)
  return clockTicks
}

export function systemPageSize(): number {
  pageSize ??= getconf('PAGESIZE', 4096)
  return pageSize
}

/** One look at a workload's process tree. */
export interface TreeSample {
  /** CPU ticks used by the tree since it started, never decreasing. */
  cpuTicks: number
  /** Resident memory of the live tree now. */
  rssBytes: number
  /** Largest peak resident set of any single process seen so far. */
  hwmBytes: number
  /** Processes in the tree now (zombies included). */
  processes: number
  pids: number[]
  /** Members that moved to another process group, which a signal to the group misses. */
  strays: number[]
}

interface Tracked {
  starttime: number
  ppid: number
  total: number
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

/**
 * Samples CPU time and memory of a process tree from procfs: the root,
 * everything in its process group (orphans reparented to init stay in it)
 * and every descendant. CPU of a process that has left is kept when
 * nobody in the tree will absorb it through cutime/cstime (its parent was
 * outside the tree or already gone), so the total neither double-counts
 * nor loses reaped children. Reads are synchronous: a few dozen tiny
 * procfs files cost well under a millisecond.
 */
export class ProcessTreeSampler {
  readonly #root: number
  readonly #pgid: number
  readonly #procRoot: string
  readonly #tracked = new Map<number, Tracked>()
  #departed = 0
  #cpuTicks = 0
  #hwm = 0

  constructor(rootPid: number, opts: { pgid?: number; procRoot?: string } = {}) {
    this.#root = rootPid
    this.#pgid = opts.pgid ?? rootPid
    this.#procRoot = opts.procRoot ?? '/proc'
  }

  sample(): TreeSample {
    const stats = new Map<number, ProcStat>()
    let names: string[]
    try {
      names = readdirSync(this.#procRoot)
    } catch {
      names = []
    }
    for (const name of names) {
      const c = name.charCodeAt(0)
      if (c < 48 || c > 57) continue
      const text = readText(join(this.#procRoot, name, 'stat'))
      if (text === null) continue
      try {
        const st = parseProcStat(text)
        stats.set(st.pid, st)
      } catch {
        // a process that vanished mid-read leaves a truncated file; skip it
      }
    }
    const members = new Set<number>()
    const inTree = (pid: number): boolean => {
      const seen = new Set<number>()
      let cur: number | undefined = pid
      while (cur !== undefined && cur > 1 && !seen.has(cur)) {
        if (cur === this.#root || members.has(cur)) return true
        const st = stats.get(cur)
        if (st === undefined) return false
        if (st.pgrp === this.#pgid) return true
        seen.add(cur)
        cur = st.ppid
      }
      return false
    }
    for (const [pid, st] of stats) {
      if (pid === this.#root || st.pgrp === this.#pgid || inTree(pid)) members.add(pid)
    }

    // Processes that left since the last sample.
    for (const [pid, t] of this.#tracked) {
      const now = stats.get(pid)
      const same = now !== undefined && now.starttime === t.starttime && members.has(pid)
      if (same) continue
      const parent = this.#tracked.get(t.ppid)
      const parentNow = stats.get(t.ppid)
      const absorbed = parent !== undefined && parentNow !== undefined && parentNow.starttime === parent.starttime && members.has(t.ppid)
      if (!absorbed) this.#departed += t.total
      this.#tracked.delete(pid)
    }

    let live = 0
    let rssPages = 0
    for (const pid of members) {
      const st = stats.get(pid)!
      const total = st.utime + st.stime + st.cutime + st.cstime
      this.#tracked.set(pid, { starttime: st.starttime, ppid: st.ppid, total })
      live += total
      rssPages += st.rssPages
      const status = readText(join(this.#procRoot, String(pid), 'status'))
      if (status !== null) this.#hwm = Math.max(this.#hwm, parseProcStatusMemory(status).hwmBytes)
    }
    this.#cpuTicks = Math.max(this.#cpuTicks, this.#departed + live)
    const pids = [...members]
    const strays = pids.filter((pid) => stats.get(pid)!.pgrp !== this.#pgid)
    return { cpuTicks: this.#cpuTicks, rssBytes: rssPages * systemPageSize(), hwmBytes: this.#hwm, processes: members.size, pids, strays }
  }
}

import { type ChildProcess, spawn } from 'node:child_process'
import { accessSync, constants as fsConstants, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { RunSpecError, SpawnError } from './errors.ts'
import { GpuMeter } from './gpu.ts'
import { LOGS_HASH_GENESIS, LogStream, logsChainStep } from './logs.ts'
import { ENV_NAME, isContainedRelativePath, type TallyManifest } from './manifest.ts'
import { clockTicksPerSecond, ProcessTreeSampler, parseProcStat, type TreeSample } from './procfs.ts'

export interface RunLimits {
  /** Wall-clock limit: SIGTERM to the process group, SIGKILL after `graceMs`. */
  wallMs: number
  /** CPU limit over the whole tree (polled), plus RLIMIT_CPU on the root process. */
  cpuMs?: number
  /**
   * Resident-memory limit over the whole tree (polled; SIGKILL on excess, like the OOM killer).
   * Summed RSS counts pages shared between processes once per process, so it errs high.
   */
  memoryBytes?: number
  /**
   * RLIMIT_AS for the root process, a hard kernel limit on address space.
   * Off by default: JIT runtimes and CUDA reserve far more address space
   * than they touch, so it is only right for plain native workloads.
   */
  addressSpaceBytes?: number
}

export interface RunSpec {
  /** Names the work directory `<baseDir>/<id>`; normally the deal CID. */
  id: string
  baseDir: string
  /** argv; no shell unless `shell` is true, and then `command` is one shell script string. */
  command: string[]
  shell?: boolean
  /** Variables set for the workload, on top of the allow-listed ones. */
  env?: Record<string, string>
  /** Names copied from the daemon's environment. Default `DEFAULT_ALLOW_ENV`; nothing else leaks. */
  allowEnv?: readonly string[]
  /** Working directory relative to the work directory. */
  cwd?: string
  limits: RunLimits
  /** Epoch length for usage reports. */
  epochMs: number
  /** Number of the first epoch reported (a relaunch continues at the next epoch). Default 0. */
  firstEpoch?: number
  /** Log-hash chain value to continue from (a relaunch continues the chain). */
  previousLogsHash?: string
  /** Process-tree sampling period. Default min(100, epochMs). */
  sampleMs?: number
  /** Time between SIGTERM and SIGKILL. Default 5000. */
  graceMs?: number
  /** Bytes kept per stream (stdout, stderr). Default 16 MiB. */
  maxLogBytes?: number
  /** GPUs given to the workload (CUDA_VISIBLE_DEVICES) and metered via nvidia-smi. */
  gpu?: { indices: number[]; nvidiaSmi?: string; sampleMs?: number }
  /** How rlimits are applied: `prlimit` (util-linux), `sh` (ulimit then exec), or `auto` (prlimit when installed). */
  limitWrapper?: 'auto' | 'prlimit' | 'sh'
  /** Receives internal problems (a throwing epoch listener, a failed GPU sample). */
  log?: (message: string) => void
}

/** Daemon variables a workload may see unless the spec says otherwise. */
export const DEFAULT_ALLOW_ENV: readonly string[] = ['PATH', 'LANG', 'LC_ALL', 'TZ']

export type EndReason = 'exit' | 'wall' | 'cpu' | 'memory' | 'stopped'

export interface ExitStatus {
  /** Exit code when the process exited, else null. */
  code: number | null
  /** Terminating signal name, else null. */
  signal: string | null
  /** Why it ended: by itself (`exit`), or which limit or request ended it. */
  reason: EndReason
}

/** What the executor measured in one epoch; the provider's `usage` entry is built from it. */
export interface EpochUsage {
  epoch: number
  /** Wall-clock bounds of the epoch (ms since the Unix epoch). */
  startMs: number
  endMs: number
  /** Time the workload ran within the epoch. */
  wallMs: number
  /** CPU time (user + system) of the whole process tree within the epoch. */
  cpuMs: number
  totalCpuMs: number
  /** Peak resident memory of the tree seen within the epoch. */
  maxRssBytes: number
  /** GPU busy time (utilisation × time, summed over assigned GPUs); null without GPU metering. */
  gpuMs: number | null
  /** Mean utilisation of the assigned GPUs over the epoch's samples; null without GPU metering. */
  gpuUtilPercent: number | null
  exited: boolean
  exitStatus: ExitStatus | null
  /** Chained log hash after this epoch (see `logsChainStep`). */
  logsHash: string
  /** Bytes in the kept log files so far, to recompute the chain from the files. */
  stdoutBytes: number
  stderrBytes: number
}

export interface RunResult {
  exitStatus: ExitStatus
  epochs: EpochUsage[]
  wallMs: number
  totalCpuMs: number
  maxRssBytes: number
  logsHash: string
  workdir: string
  stdoutPath: string
  stderrPath: string
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const RUN_FILE = 'run.json'
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

function posInt(v: unknown, what: string, min = 1): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RunSpecError(`${what} must be an integer >= ${min}`, { what })
  return v
}

function validate(spec: RunSpec): void {
  if (typeof spec.id !== 'string' || !RUN_ID.test(spec.id)) throw new RunSpecError('run id must be 1-128 characters of [A-Za-z0-9._-]')
  if (typeof spec.baseDir !== 'string' || spec.baseDir === '') throw new RunSpecError('baseDir is required')
  if (!Array.isArray(spec.command) || spec.command.length === 0) throw new RunSpecError('command must be a non-empty argv array')
  for (const a of spec.command) if (typeof a !== 'string' || a.includes('\0')) throw new RunSpecError('command arguments must be strings without NUL')
  if (spec.command[0] === '') throw new RunSpecError('command[0] must name a program')
  if (spec.shell === true && spec.command.length !== 1) throw new RunSpecError('with shell: true, command must be one script string')
  posInt(spec.limits?.wallMs, 'limits.wallMs')
  if (spec.limits.cpuMs !== undefined) posInt(spec.limits.cpuMs, 'limits.cpuMs')
  if (spec.limits.memoryBytes !== undefined) posInt(spec.limits.memoryBytes, 'limits.memoryBytes')
  if (spec.limits.addressSpaceBytes !== undefined) posInt(spec.limits.addressSpaceBytes, 'limits.addressSpaceBytes')
  posInt(spec.epochMs, 'epochMs', 10)
  if (spec.sampleMs !== undefined) posInt(spec.sampleMs, 'sampleMs', 10)
  if (spec.graceMs !== undefined) posInt(spec.graceMs, 'graceMs', 0)
  if (spec.maxLogBytes !== undefined) posInt(spec.maxLogBytes, 'maxLogBytes', 0)
  if (spec.firstEpoch !== undefined) posInt(spec.firstEpoch, 'firstEpoch', 0)
  if (spec.previousLogsHash !== undefined && !/^[0-9a-f]{64}$/.test(spec.previousLogsHash)) throw new RunSpecError('previousLogsHash must be 64 hex digits')
  if (spec.cwd !== undefined && !isContainedRelativePath(spec.cwd)) throw new RunSpecError('cwd must be a relative path inside the work directory')
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (!ENV_NAME.test(k) || typeof v !== 'string' || v.includes('\0')) throw new RunSpecError(`bad environment variable ${JSON.stringify(k.slice(0, 64))}`)
  }
  if (spec.gpu !== undefined) for (const i of spec.gpu.indices) posInt(i, 'gpu index', 0)
}

/** Absolute path of an executable, searched like execvp does; null when absent or not executable. */
export function resolveExecutable(command: string, pathVar: string, cwd: string): string | null {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : pathVar.split(delimiter).map((d) => join(d || '.', command))
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK)
      return c
    } catch {
      // try the next PATH entry
    }
  }
  return null
}

function limitArgv(spec: RunSpec, argv: string[]): string[] {
  const { cpuMs, addressSpaceBytes } = spec.limits
  if (cpuMs === undefined && addressSpaceBytes === undefined) return argv
  const cpuSoft = cpuMs === undefined ? undefined : Math.max(1, Math.ceil(cpuMs / 1000))
  const mode = spec.limitWrapper ?? 'auto'
  const prlimit = mode === 'sh' ? null : resolveExecutable('prlimit', process.env.PATH ?? DEFAULT_PATH, '/')
  if (mode === 'prlimit' && prlimit === null) throw new SpawnError('prlimit (util-linux) is not installed')
  if (prlimit !== null) {
    // Soft CPU limit sends SIGXCPU, the hard one a second later SIGKILL (setrlimit(2)).
    const opts = [
      ...(cpuSoft !== undefined ? [`--cpu=${cpuSoft}:${cpuSoft + 1}`] : []),
      ...(addressSpaceBytes !== undefined ? [`--as=${addressSpaceBytes}:${addressSpaceBytes}`] : []),
    ]
    return [prlimit, ...opts, '--', ...argv]
  }
  const script = [
    ...(cpuSoft !== undefined ? [`ulimit -S -t ${cpuSoft} || exit 126`, `ulimit -H -t ${cpuSoft + 1} || exit 126`] : []),
    ...(addressSpaceBytes !== undefined ? [`ulimit -v ${Math.max(1, Math.floor(addressSpaceBytes / 1024))} || exit 126`] : []),
    'exec "$@"',
  ].join('; ')
  return ['/bin/sh', '-c', script, 'tally-limits', ...argv]
}

const liveRuns = new Set<Run>()
let exitHookInstalled = false
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Workloads run in their own process group; take them down with the daemon.
  process.once('exit', () => {
    for (const run of liveRuns) run.kill('SIGKILL')
  })
}

/**
 * Start a workload. Resolves once the process exists; rejects with
 * `RunSpecError` for a bad spec and `SpawnError` when the program cannot
 * be started. Nothing survives a daemon restart: the provider relaunches
 * from the manifest (with `firstEpoch` and `previousLogsHash`) and usage
 * continues at the next epoch; `reapStaleRun` kills what a crashed daemon
 * left behind.
 */
export async function startRun(spec: RunSpec): Promise<Run> {
  validate(spec)
  const workdir = join(spec.baseDir, spec.id)
  mkdirSync(workdir, { recursive: true, mode: 0o700 })
  const cwd = spec.cwd === undefined ? workdir : join(workdir, spec.cwd)
  mkdirSync(cwd, { recursive: true, mode: 0o700 })

  const env: Record<string, string> = {}
  for (const name of spec.allowEnv ?? DEFAULT_ALLOW_ENV) {
    const v = process.env[name]
    if (v !== undefined) env[name] = v
  }
  env['HOME'] = workdir
  env['TALLY_RUN_ID'] = spec.id
  env['TALLY_WORKDIR'] = workdir
  if (spec.gpu !== undefined) env['CUDA_VISIBLE_DEVICES'] = spec.gpu.indices.join(',')
  Object.assign(env, spec.env ?? {})

  const program = spec.shell === true ? '/bin/sh' : spec.command[0]!
  const exe = resolveExecutable(program, env['PATH'] ?? DEFAULT_PATH, cwd)
  if (exe === null) throw new SpawnError(`cannot execute ${JSON.stringify(program.slice(0, 200))}: not found or not executable`, { program })
  const argv = limitArgv(spec, spec.shell === true ? [exe, '-c', spec.command[0]!] : [exe, ...spec.command.slice(1)])

  const stdout = new LogStream(join(workdir, 'stdout.log'), spec.maxLogBytes ?? 16 * 1024 * 1024)
  const stderr = new LogStream(join(workdir, 'stderr.log'), spec.maxLogBytes ?? 16 * 1024 * 1024)
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    await new Promise<void>((res, rej) => {
      child.once('spawn', res)
      child.once('error', rej)
    })
  } catch (err) {
    stdout.close()
    stderr.close()
    throw new SpawnError(`cannot start ${JSON.stringify(program.slice(0, 200))}: ${(err as Error).message}`, { program }, { cause: err })
  }
  return new Run(spec, child, workdir, stdout, stderr)
}

/**
 * Kill the process group a previous daemon left running in `workdir`,
 * when the recorded pid still belongs to the same process (start time
 * matches). Returns true when something was killed.
 */
export function reapStaleRun(workdir: string): boolean {
  let rec: { pid?: unknown; starttime?: unknown }
  try {
    rec = JSON.parse(readFileSync(join(workdir, RUN_FILE), 'utf8'))
  } catch {
    return false
  }
  if (typeof rec.pid !== 'number' || typeof rec.starttime !== 'number') return false
  try {
    const st = parseProcStat(readFileSync(`/proc/${rec.pid}/stat`, 'utf8'))
    if (st.starttime !== rec.starttime || st.state === 'Z') return false
    process.kill(-rec.pid, 'SIGKILL')
    return true
  } catch {
    return false
  }
}

/** Build a run spec from a decoded manifest. */
export function runSpecFromManifest(
  manifest: TallyManifest,
  opts: Omit<RunSpec, 'command' | 'env' | 'cwd' | 'limits'> & { extraEnv?: Record<string, string> },
): RunSpec {
  const { extraEnv, ...rest } = opts
  const { wallMs, cpuMs, memoryBytes } = manifest.limits
  const limits: RunLimits = { wallMs }
  if (cpuMs !== undefined) limits.cpuMs = cpuMs
  if (memoryBytes !== undefined) limits.memoryBytes = memoryBytes
  const spec: RunSpec = { ...rest, command: [...manifest.command], env: { ...manifest.env, ...(extraEnv ?? {}) }, limits }
  if (manifest.cwd !== undefined) spec.cwd = manifest.cwd
  return spec
}

/** A running workload. Emits one `EpochUsage` per epoch and a final one when it ends. */
export class Run {
  readonly pid: number
  readonly workdir: string
  readonly startedAt: number
  readonly done: Promise<RunResult>

  readonly #spec: RunSpec
  readonly #child: ChildProcess
  readonly #stdout: LogStream
  readonly #stderr: LogStream
  readonly #sampler: ProcessTreeSampler
  readonly #gpu: GpuMeter | null
  readonly #t0: number
  readonly #tck: number
  readonly #listeners = new Set<(u: EpochUsage) => void>()
  readonly #epochs: EpochUsage[] = []
  readonly #timers: Array<ReturnType<typeof setInterval>> = []
  #resolve!: (r: RunResult) => void
  #epoch: number
  #epochStartRel = 0
  #epochStartTicks = 0
  #epochMaxRss = 0
  #epochHwm = 0
  #epochGpuBusy = 0
  #epochGpuUtil = { sum: 0, n: 0 }
  #logsHash: string
  #last: TreeSample
  #maxRss = 0
  #endReason: EndReason | null = null
  #exit: { code: number | null; signal: string | null } | null = null
  #epochTimer: ReturnType<typeof setTimeout> | null = null
  #finished = false

  constructor(spec: RunSpec, child: ChildProcess, workdir: string, stdout: LogStream, stderr: LogStream) {
    this.#spec = spec
    this.#child = child
    this.pid = child.pid!
    this.workdir = workdir
    this.#stdout = stdout
    this.#stderr = stderr
    this.#t0 = performance.now()
    this.startedAt = Date.now()
    this.#tck = clockTicksPerSecond()
    this.#epoch = spec.firstEpoch ?? 0
    this.#logsHash = spec.previousLogsHash ?? LOGS_HASH_GENESIS
    this.done = new Promise((r) => {
      this.#resolve = r
    })
    this.#sampler = new ProcessTreeSampler(this.pid)
    this.#last = this.#sampler.sample()
    this.#record(this.#last)
    try {
      const st = parseProcStat(readFileSync(`/proc/${this.pid}/stat`, 'utf8'))
      writeFileSync(join(workdir, RUN_FILE), JSON.stringify({ pid: this.pid, starttime: st.starttime, startedAt: this.startedAt }), { mode: 0o600 })
    } catch {
      // the process already exited; nothing to reap later
    }
    this.#gpu = spec.gpu !== undefined ? new GpuMeter(spec.gpu.indices, spec.gpu.nvidiaSmi) : null

    child.stdout!.on('data', (c: Buffer) => this.#stdout.write(c))
    child.stderr!.on('data', (c: Buffer) => this.#stderr.write(c))
    child.once('exit', (code, signal) => this.#onExit(code, signal))
    liveRuns.add(this)
    installExitHook()

    const sampleMs = spec.sampleMs ?? Math.min(100, spec.epochMs)
    this.#timers.push(setInterval(() => this.#sampleTick(), sampleMs))
    if (this.#gpu !== null) {
      const gpu = this.#gpu
      void gpu.sample(performance.now())
      this.#timers.push(setInterval(() => void gpu.sample(performance.now()), spec.gpu?.sampleMs ?? 1000))
    }
    const wall = setTimeout(() => this.#terminate('wall', false), spec.limits.wallMs)
    this.#timers.push(wall)
    this.#scheduleEpoch()
  }

  /** Usage reports so far. */
  get epochs(): readonly EpochUsage[] {
    return this.#epochs
  }

  /** Call `listener` with each epoch's usage; returns an unsubscribe function. */
  onEpoch(listener: (u: EpochUsage) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Stop the workload (SIGTERM, SIGKILL after the grace period) and wait for the final report. */
  stop(): Promise<RunResult> {
    this.#terminate('stopped', false)
    return this.done
  }

  /** Signal every process of the workload: its process group, plus any tree member that left the group. */
  kill(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal)
    } catch {
      // group already empty
    }
    // Fresh membership, so a pid that left and was reused since the last sample is never signalled.
    if (!this.#finished) this.#record(this.#sampler.sample())
    for (const pid of this.#last.strays) {
      try {
        process.kill(pid, signal)
      } catch {
        // already gone
      }
    }
  }

  #terminate(reason: EndReason, immediate: boolean): void {
    if (this.#endReason !== null || this.#finished) return
    this.#endReason = reason
    this.kill(immediate ? 'SIGKILL' : 'SIGTERM')
    if (!immediate) {
      const t = setTimeout(() => this.kill('SIGKILL'), this.#spec.graceMs ?? 5000)
      this.#timers.push(t)
    }
  }

  #record(s: TreeSample): void {
    this.#last = s
    this.#epochMaxRss = Math.max(this.#epochMaxRss, s.rssBytes)
    if (s.hwmBytes > this.#epochHwm) {
      this.#epochMaxRss = Math.max(this.#epochMaxRss, s.hwmBytes)
      this.#epochHwm = s.hwmBytes
    }
    this.#maxRss = Math.max(this.#maxRss, s.rssBytes, s.hwmBytes)
  }

  #cpuMs(ticks: number): number {
    return Math.floor((ticks * 1000) / this.#tck)
  }

  #sampleTick(): void {
    if (this.#finished) return
    const s = this.#sampler.sample()
    this.#record(s)
    const { memoryBytes, cpuMs } = this.#spec.limits
    if (memoryBytes !== undefined && s.rssBytes > memoryBytes) this.#terminate('memory', true)
    else if (cpuMs !== undefined && this.#cpuMs(s.cpuTicks) > cpuMs) this.#terminate('cpu', true)
  }

  #scheduleEpoch(): void {
    const k = this.#epochs.length + 1
    const due = this.#t0 + k * this.#spec.epochMs - performance.now()
    this.#epochTimer = setTimeout(
      () => {
        if (this.#finished || this.#exit !== null) return
        this.#record(this.#sampler.sample())
        this.#emitEpoch(k * this.#spec.epochMs, null)
        this.#scheduleEpoch()
      },
      Math.max(0, due),
    )
  }

  #emitEpoch(endRel: number, exitStatus: ExitStatus | null): void {
    const s = this.#last
    const gpu = this.#gpu
    const gpuMs = gpu === null ? null : Math.round(gpu.busyMs - this.#epochGpuBusy)
    const utilN = gpu === null ? 0 : gpu.utilSamples - this.#epochGpuUtil.n
    const gpuUtil = gpu === null ? null : utilN === 0 ? 0 : Math.round((gpu.utilSum - this.#epochGpuUtil.sum) / utilN)
    this.#logsHash = logsChainStep(this.#logsHash, this.#stdout.takeEpochDigest(), this.#stderr.takeEpochDigest())
    const usage: EpochUsage = {
      epoch: this.#epoch,
      startMs: this.startedAt + this.#epochStartRel,
      endMs: this.startedAt + endRel,
      wallMs: endRel - this.#epochStartRel,
      cpuMs: this.#cpuMs(s.cpuTicks) - this.#cpuMs(this.#epochStartTicks),
      totalCpuMs: this.#cpuMs(s.cpuTicks),
      maxRssBytes: this.#epochMaxRss,
      gpuMs,
      gpuUtilPercent: gpuUtil,
      exited: exitStatus !== null,
      exitStatus,
      logsHash: this.#logsHash,
      stdoutBytes: this.#stdout.bytes,
      stderrBytes: this.#stderr.bytes,
    }
    this.#epochs.push(usage)
    this.#epoch++
    this.#epochStartRel = endRel
    this.#epochStartTicks = s.cpuTicks
    this.#epochMaxRss = s.rssBytes
    if (gpu !== null) {
      this.#epochGpuBusy = gpu.busyMs
      this.#epochGpuUtil = { sum: gpu.utilSum, n: gpu.utilSamples }
    }
    for (const fn of this.#listeners) {
      try {
        fn(usage)
      } catch (err) {
        this.#spec.log?.(`epoch listener threw: ${(err as Error).message}`)
      }
    }
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exit = { code, signal }
    this.#record(this.#sampler.sample())
    // The workload ends with its root process; stragglers would run unmetered.
    this.kill('SIGKILL')
    let closed = 0
    const finish = (): void => {
      if (this.#finished) return
      this.#finish()
    }
    const onClose = (): void => {
      if (++closed === 2) finish()
    }
    const out = this.#child.stdout!
    const err = this.#child.stderr!
    if (out.readableEnded || out.destroyed) closed++
    else out.once('close', onClose)
    if (err.readableEnded || err.destroyed) closed++
    else err.once('close', onClose)
    if (closed >= 2) finish()
    // A grandchild outside our reach may still hold the pipes; do not wait for it forever.
    const t = setTimeout(() => {
      out.destroy()
      err.destroy()
      finish()
    }, 2000)
    this.#timers.push(t)
  }

  #finish(): void {
    this.#finished = true
    for (const t of this.#timers) clearTimeout(t)
    if (this.#epochTimer !== null) clearTimeout(this.#epochTimer)
    liveRuns.delete(this)
    this.#record(this.#sampler.sample())
    const exit = this.#exit!
    const cpuLimit = this.#spec.limits.cpuMs
    const reason: EndReason =
      this.#endReason ??
      (exit.signal === 'SIGXCPU' || (exit.signal === 'SIGKILL' && cpuLimit !== undefined && this.#cpuMs(this.#last.cpuTicks) >= cpuLimit - 1000)
        ? 'cpu'
        : 'exit')
    const exitStatus: ExitStatus = { code: exit.code, signal: exit.signal, reason }
    const endRel = Math.max(this.#epochStartRel, Math.round(performance.now() - this.#t0))
    this.#emitEpoch(endRel, exitStatus)
    this.#stdout.close()
    this.#stderr.close()
    this.#resolve({
      exitStatus,
      epochs: [...this.#epochs],
      wallMs: endRel,
      totalCpuMs: this.#cpuMs(this.#last.cpuTicks),
      maxRssBytes: this.#maxRss,
      logsHash: this.#logsHash,
      workdir: this.workdir,
      stdoutPath: this.#stdout.path,
      stderrPath: this.#stderr.path,
    })
  }
}

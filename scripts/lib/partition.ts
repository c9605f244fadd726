/**
 * Network partitions for the multi-process tests, made of real processes
 * and real kernel networking:
 *
 * - `Member`: a child process of a real binary (tsx), optionally inside a
 *   network namespace, that can be paused (SIGSTOP) and resumed (SIGCONT)
 *   and is always reaped: `stopMembers()` resumes a paused one before
 *   SIGTERM, SIGKILL follows after a grace period.
 * - `Lan`: a private bridge with network namespaces on it. `cut(a, b)`
 *   silently drops every packet between two namespaces while both keep
 *   their paths to the rest of the network (the bridge host and other
 *   namespaces): each side's neighbour entry for the other is pinned to a
 *   MAC address nobody has. `heal` removes the pins and ARP resolves again.
 *   No iptables or tc actions are needed (this kernel has neither).
 * - `controlGet`: a daemon's control API, from any namespace.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { createWriteStream, readdirSync, readlinkSync, type WriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import type { Ready } from './processes.ts'

const run = promisify(execFile)

export interface MemberOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string
  env?: NodeJS.ProcessEnv
  readyTimeoutMs?: number
}

const members = new Set<Member>()

/** A process of a real binary that a partition test can pause, resume and always reap. */
export class Member {
  readonly child: ChildProcess
  /** Its JSON ready line (peerId and multiaddrs); a process that never prints one leaves this rejected. */
  readonly ready: Promise<Ready>
  readonly exited: Promise<number | null>
  readonly stdout: string[] = []
  readonly netns: string | undefined
  #paused = false
  readonly #log: WriteStream

  constructor(
    readonly name: string,
    entry: string,
    args: string[],
    readonly logFile: string,
    opts: MemberOptions = {},
  ) {
    this.netns = opts.netns
    this.#log = createWriteStream(logFile, { flags: 'a' })
    const argv = ['--import', 'tsx', entry, ...args]
    // `ip netns exec` execs the command, so the child's pid is the node process itself: signals reach it directly.
    this.child =
      opts.netns === undefined
        ? spawn(process.execPath, argv, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('ip', ['netns', 'exec', opts.netns, process.execPath, ...argv], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    members.add(this)
    this.child.stderr?.pipe(this.#log)
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
    void this.exited.then(() => members.delete(this))
    const lines = createInterface({ input: this.child.stdout! })
    const limit = opts.readyTimeoutMs ?? 90_000
    this.ready = new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready after ${limit} ms (see ${logFile})`)), limit)
      lines.on('line', (line) => {
        this.stdout.push(line)
        this.#log.write(`[stdout] ${line}\n`)
        try {
          const j = JSON.parse(line) as Ready
          if (typeof j.peerId === 'string' && Array.isArray(j.multiaddrs)) {
            clearTimeout(timer)
            resolve(j)
          }
        } catch {}
      })
      void this.exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`${name} exited with ${code} before it was ready (see ${logFile})`))
      })
    })
    this.ready.catch(() => {})
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  get paused(): boolean {
    return this.#paused
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal)
  }

  /** SIGSTOP: the process keeps its sockets, the kernel keeps accepting and buffering, nothing answers. */
  pause(): void {
    this.kill('SIGSTOP')
    this.#paused = true
  }

  resume(): void {
    this.kill('SIGCONT')
    this.#paused = false
  }

  /** SIGCONT if paused, SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 8_000): Promise<void> {
    if (!this.alive) return
    if (this.#paused) this.resume()
    this.kill('SIGTERM')
    const t = setTimeout(() => this.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(t)
  }
}

/** Stop every member still running (paused ones are resumed first). */
export async function stopMembers(graceMs?: number): Promise<void> {
  await Promise.all([...members].map((m) => m.stop(graceMs)))
}

/** Last resort (the orchestrator itself is going away): SIGKILL reaches stopped processes too. */
export function killMembersSync(): void {
  for (const m of members) m.kill('SIGKILL')
}

/**
 * Pids of processes whose working directory lies under `dir`: workloads
 * our providers started in their work directories, which outlive a
 * provider that was killed.
 */
export function processesUnder(dir: string): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      if (readlinkSync(`/proc/${name}/cwd`).startsWith(dir)) out.push(Number(name))
    } catch {
      // gone, or not ours to read
    }
  }
  return out
}

export interface Namespace {
  name: string
  /** Its address on the bridge. */
  addr: string
  /** Its end of the veth pair (inside the namespace). */
  dev: string
}

const ip = (...args: string[]) => run('ip', args)

/** A private bridge on the host with network namespaces hanging off it (needs root). */
export class Lan {
  readonly namespaces: Namespace[] = []
  readonly #cuts = new Set<string>()

  private constructor(
    readonly tag: string,
    readonly subnet: number,
    readonly bridge: string,
  ) {}

  /** The bridge's address: processes on the host listen here too to be reachable from the namespaces. */
  get hostAddr(): string {
    return `10.231.${this.subnet}.1`
  }

  get cidr(): string {
    return `10.231.${this.subnet}.0/24`
  }

  /** Create the bridge on a /24 no route uses yet. Throws (with the kernel's words) where namespaces cannot be made. */
  static async create(): Promise<Lan> {
    const tag = randomInt(0x1000, 0xffff).toString(16)
    let subnet = 0
    for (let i = 0; i < 20 && subnet === 0; i++) {
      const s = randomInt(1, 255)
      const { stdout } = await ip('route', 'show', `10.231.${s}.0/24`)
      if (stdout.trim() === '') subnet = s
    }
    if (subnet === 0) throw new Error('no free 10.231.x.0/24 subnet')
    const lan = new Lan(tag, subnet, `tp${tag}br`)
    lanRegistry.add(lan)
    await ip('link', 'add', lan.bridge, 'type', 'bridge')
    await ip('addr', 'add', `${lan.hostAddr}/24`, 'dev', lan.bridge)
    await ip('link', 'set', lan.bridge, 'up')
    return lan
  }

  /** A namespace with loopback up and one veth on the bridge at the next address. */
  async addNamespace(): Promise<Namespace> {
    const n = this.namespaces.length + 2
    const ns: Namespace = { name: `tally-part-${this.tag}-${n}`, addr: `10.231.${this.subnet}.${n}`, dev: `tp${this.tag}n${n}` }
    const host = `tp${this.tag}h${n}`
    await ip('netns', 'add', ns.name)
    this.namespaces.push(ns)
    await ip('-n', ns.name, 'link', 'set', 'lo', 'up')
    await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', ns.dev)
    await ip('link', 'set', ns.dev, 'netns', ns.name)
    await ip('link', 'set', host, 'master', this.bridge)
    await ip('link', 'set', host, 'up')
    await ip('-n', ns.name, 'addr', 'add', `${ns.addr}/24`, 'dev', ns.dev)
    await ip('-n', ns.name, 'link', 'set', ns.dev, 'up')
    return ns
  }

  /** Drop everything between `a` and `b`, both ways, silently; both keep reaching the host and everyone else. */
  async cut(a: Namespace, b: Namespace): Promise<void> {
    this.#cuts.add(`${a.name} ${b.name}`)
    // 02:…: locally administered, never a real card; the bridge floods the frame and every port drops it.
    await ip('-n', a.name, 'neigh', 'replace', b.addr, 'lladdr', '02:00:00:de:ad:01', 'dev', a.dev, 'nud', 'permanent')
    await ip('-n', b.name, 'neigh', 'replace', a.addr, 'lladdr', '02:00:00:de:ad:02', 'dev', b.dev, 'nud', 'permanent')
  }

  async heal(a: Namespace, b: Namespace): Promise<void> {
    await ip('-n', a.name, 'neigh', 'del', b.addr, 'dev', a.dev)
    await ip('-n', b.name, 'neigh', 'del', a.addr, 'dev', b.dev)
    this.#cuts.delete(`${a.name} ${b.name}`)
  }

  /** Remove the namespaces and the bridge (their processes must be gone first, or the namespaces linger until they are). */
  destroySync(): void {
    for (const ns of this.namespaces.splice(0)) {
      try {
        execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' })
      } catch {}
    }
    try {
      execFileSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore' })
    } catch {}
    lanRegistry.delete(this)
  }
}

const lanRegistry = new Set<Lan>()

/** Remove every bridge and namespace made here (for exit handlers). */
export function destroyLansSync(): void {
  for (const lan of [...lanRegistry]) lan.destroySync()
}

/**
 * GET a path of the control API of the daemon whose data directory is
 * `dataDir` (its control.json and control.token). Inside a namespace the
 * request runs there, since the API listens on that namespace's loopback.
 */
export async function controlGet(dataDir: string, path: string, netns?: string): Promise<Uint8Array> {
  const { url } = JSON.parse(await readFile(join(dataDir, 'control.json'), 'utf8')) as { url: string }
  const token = (await readFile(join(dataDir, 'control.token'), 'utf8')).trim()
  if (netns === undefined) {
    const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) })
    if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`)
    return new Uint8Array(await r.arrayBuffer())
  }
  const script =
    'fetch(process.env.U,{headers:{authorization:"Bearer "+process.env.T},signal:AbortSignal.timeout(15000)})' +
    '.then(async r=>{if(!r.ok){process.stderr.write(r.status+" "+await r.text());process.exit(1)}process.stdout.write(Buffer.from(await r.arrayBuffer()))})' +
    '.catch(e=>{process.stderr.write(String(e));process.exit(1)})'
  const { stdout } = await run('ip', ['netns', 'exec', netns, process.execPath, '-e', script], {
    env: { ...process.env, U: `${url}${path}`, T: token },
    encoding: 'buffer',
    maxBuffer: 256 * 1024 * 1024,
  })
  return new Uint8Array(stdout)
}

export async function controlJson<T>(dataDir: string, path: string, netns?: string): Promise<T> {
  return JSON.parse(Buffer.from(await controlGet(dataDir, path, netns)).toString('utf8')) as T
}

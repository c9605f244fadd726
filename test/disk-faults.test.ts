/**
 * Disk faults of the real daemons: `tally-provider` and `tally node` run as
 * processes with their data directory on a tmpfs the test fills (or, where
 * mounting is not allowed, under a file size limit), while a counterparty
 * in the test process keeps sending entries over the pair session. The
 * daemon must log an error naming its data directory and exit with status
 * 74 (EX_IOERR) instead of running on with a store that refuses writes.
 * Nothing it acknowledged is lost. The provider goes further: restarted on
 * the disk still full it exits 74 again with the same clear reason; once
 * space returns it restarts, the counterparty resends what was never
 * acknowledged, both hold identical chains, and its export verifies.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { loadOrCreateIdentity } from '@tally/core'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { canMountTmpfs, mountTmpfs, reportDiskFaults } from '../packages/lineage/test/disk-fault-env.ts'
import { exportPairLogBytes, LevelStore, type PairDescriptor, PairLog, pairIdOf, verifyExport } from '../packages/lineage/src/index.ts'
import { localNetwork } from '../packages/node/src/index.ts'
import { chainCids, type Peer, pairPeer, stopPeers } from '../packages/node/test/pair-helpers.ts'

const ROOT = join(import.meta.dirname, '..')
const PROVIDER = join(ROOT, 'apps', 'provider', 'src', 'main.ts')
const CLI = join(ROOT, 'apps', 'cli', 'src', 'main.ts')
const EXIT_IO_ERROR = 74

const scratch = await mkdtemp(join(tmpdir(), 'tally-daemon-disk-'))
const TMPFS = await canMountTmpfs(scratch)
const counts = { faults: 0, ackedLost: 0, typedErrors: 0, exits74: 0, mode: TMPFS === true ? 'tmpfs' : `ulimit -f (${TMPFS})` }
const children = new Set<ChildProcess>()
const cleanups: (() => Promise<void>)[] = []

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await Promise.all([...children].map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))))
  for (const c of cleanups.reverse()) await c().catch(() => undefined)
  await rm(scratch, { recursive: true, force: true })
  await reportDiskFaults('daemons', counts)
})

interface Ready {
  peerId: string
  multiaddrs: string[]
}

/** A daemon process: its ready line, its stderr (JSON log lines), its exit. */
class Daemon {
  readonly child: ChildProcess
  readonly ready: Promise<Ready>
  readonly exited: Promise<number | null>
  stderr = ''

  constructor(argv: string[], fileSizeLimitKiB?: number) {
    const node = [process.execPath, '--import', 'tsx', ...argv]
    this.child =
      fileSizeLimitKiB === undefined
        ? spawn(node[0]!, node.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('bash', ['-c', `ulimit -f ${fileSizeLimitKiB}; exec "$@"`, 'daemon', ...node], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(this.child)
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString()
    })
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready in 30 s: ${this.stderr.slice(-2000)}`)), 30_000)
      void this.exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`exited with ${code} before ready: ${this.stderr.slice(-2000)}`))
      })
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return
        const msg = JSON.parse(line) as { event?: string } & Ready
        if (msg.event === 'ready') {
          clearTimeout(timer)
          resolve(msg)
        }
      })
    })
    this.ready.catch(() => undefined)
  }

  /** JSON log lines at level error. */
  errors(): { msg: string; [k: string]: unknown }[] {
    return this.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level?: string; msg: string })
      .filter((l) => l.level === 'error')
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    return this.exited
  }
}

interface DaemonKind {
  name: string
  /** The role the daemon plays in the pair; the test's peer plays the other. */
  role: 'provider' | 'consumer'
  /**
   * Also restart it on the still-full disk, then on the freed one, and resume the pair. Each start costs seconds on a
   * loaded machine, so one daemon does this for both: the peer runtime under them is the same.
   */
  resume: boolean
  /** `seed`: a DHT peer to join (the provider announces its offer there; with none the announce waits for its timeout). */
  start(base: string, dataDir: string, seed: string, limitKiB?: number): Promise<Daemon>
}

const KINDS: DaemonKind[] = [
  {
    name: 'tally-provider',
    role: 'provider',
    resume: true,
    async start(base, dataDir, seed, limitKiB) {
      const config = join(base, 'provider.yaml')
      const arbiter = (await loadOrCreateIdentity(join(base, 'arbiter'))).identity.peerId
      await writeFile(
        config,
        JSON.stringify({
          dataDir,
          listen: ['/ip4/127.0.0.1/tcp/0'],
          bootstrap: [seed],
          network: localNetwork(),
          provider: { offer: { jurisdiction: 'DE', hardware: { class: 'cpu.x86_64' }, pricePerEpoch: '100USD', epochMs: 60_000, arbiters: [arbiter] } },
          log: { level: 'info' },
        }),
      )
      return new Daemon([PROVIDER, config], limitKiB)
    },
  },
  {
    name: 'tally node',
    role: 'consumer',
    resume: false,
    async start(_base, dataDir, seed, limitKiB) {
      return new Daemon([CLI, '--data-dir', dataDir, '--json', 'node', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', seed], limitKiB)
    },
  },
]

/** The disk under the daemon's data directory: fill it (or set the limit the next start runs under) and give the room back. */
interface Disk {
  dataDir: string
  limitKiB(): number | undefined
  fill(): Promise<void>
  free(): Promise<void>
  error: string
}

async function makeDisk(base: string): Promise<Disk> {
  if (TMPFS === true) {
    const fs = await mountTmpfs(join(base, 'disk'), 16 << 20)
    cleanups.push(() => fs.unmount())
    return { dataDir: join(fs.dir, 'data'), limitKiB: () => undefined, fill: () => fs.fill(0), free: () => fs.free(), error: 'ENOSPC' }
  }
  // No mount allowed: the daemon runs under a file size limit its LevelDB log reaches while settling.
  let limited = true
  return {
    dataDir: join(base, 'data'),
    limitKiB: () => (limited ? 192 : undefined),
    fill: async () => undefined,
    free: async () => {
      limited = false
    },
    error: 'EFBIG',
  }
}

function dialable(ready: Ready): string {
  const a = ready.multiaddrs.find((m) => m.startsWith('/ip4/127.0.0.1/'))
  if (a === undefined) throw new Error('no loopback address')
  return a.includes('/p2p/') ? a : `${a}/p2p/${ready.peerId}`
}

describe('daemons whose data directory fills up', () => {
  const peers: Peer[] = []
  afterEach(async () => {
    await stopPeers(peers.splice(0))
  })

  for (const kind of KINDS) {
    const title = kind.resume ? 'after space returns it resumes and nothing acknowledged is lost' : 'nothing it acknowledged is lost'
    it(`${kind.name}: logs the data directory and exits 74; ${title}`, async () => {
      const base = join(scratch, kind.role)
      await mkdir(base, { recursive: true })
      const disk = await makeDisk(base)
      const peer = await pairPeer()
      peers.push(peer)
      const seed = dialable({ peerId: peer.node.peerId, multiaddrs: peer.node.multiaddrs() })
      let daemon = await kind.start(base, disk.dataDir, seed, disk.limitKiB())
      let ready = await daemon.ready
      const pair: PairDescriptor =
        kind.role === 'provider' ? { provider: ready.peerId, consumer: peer.node.peerId } : { provider: peer.node.peerId, consumer: ready.peerId }
      await peer.sessions.connect(pair, [dialable(ready)], { timeoutMs: 10_000 })
      const log = peer.sessions.logOf(pair)
      for (let i = 0; i < 10; i++) await log.append('note', { before: i })
      await peer.sessions.waitForSync(pair, 15_000)

      // The disk fills while the counterparty keeps sending.
      await disk.fill()
      counts.faults++
      const deadline = Date.now() + 20_000
      while (daemon.child.exitCode === null && Date.now() < deadline) {
        for (let i = 0; i < 10; i++) await log.append('note', { during: i, pad: 'z'.repeat(500) })
        await new Promise((r) => setTimeout(r, 20))
      }
      const code = await Promise.race([daemon.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 8_000))])
      expect(code, daemon.stderr.slice(-3000)).toBe(EXIT_IO_ERROR)
      counts.exits74++
      const reasons = daemon.errors()
      const failure = reasons.find((l) => l['code'] === disk.error && typeof l['reason'] === 'string')
      expect(failure, daemon.stderr.slice(-3000)).toBeDefined()
      expect(failure!['dataDir']).toBe(disk.dataDir)
      expect(failure!['err']).toBe('StoreFullError')
      expect(failure!['reason']).toContain(disk.dataDir)
      expect(reasons.some((l) => l.msg === 'stopping: the store cannot write' && l['exitCode'] === EXIT_IO_ERROR)).toBe(true)
      counts.typedErrors++
      const acked = peer.sessions.status(pair).remote?.ours ?? 0
      const sent = log.heads()[kind.role === 'provider' ? 'consumer' : 'provider']!.seq
      expect(acked).toBeLessThan(sent)

      if (kind.resume && TMPFS === true) {
        // Restarted on a disk that is still full: the same clear reason, the same status, at once.
        const again = await kind.start(base, disk.dataDir, seed)
        const againCode = await Promise.race([
          again.exited,
          again.ready.then(
            () => 'ready' as const,
            () => 'failed' as const,
          ),
        ])
        expect(againCode === 'failed' ? await again.exited : againCode, again.stderr.slice(-3000)).toBe(EXIT_IO_ERROR)
        expect(again.stderr).toContain('StoreFullError')
        expect(again.stderr).toContain(disk.dataDir)
        counts.typedErrors++
      }

      // Space returns: the daemon restarts, the counterparty resends what was never acknowledged.
      await disk.free()
      if (kind.resume) {
        daemon = await kind.start(base, disk.dataDir, seed, disk.limitKiB())
        ready = await daemon.ready
        await peer.sessions.connect(pair, [dialable(ready)], { timeoutMs: 10_000 })
        await peer.sessions.waitForSync(pair, 20_000)
        expect(await daemon.stop()).toBe(0)
      }

      // The daemon's store: every entry it acknowledged, then everything, identical to the counterparty's; the export verifies.
      const store = await LevelStore.open(join(disk.dataDir, 'db'))
      try {
        const id = pairIdOf(pair)
        const author = kind.role === 'provider' ? pair.consumer : pair.provider
        let lost = 0
        for (let seq = 1; seq <= acked; seq++) {
          const want = await log.getBySeq(author, seq)
          const have = await store.getCid(id, author, seq)
          if (want === undefined || have === undefined || !have.equals(want.cid)) lost++
        }
        counts.ackedLost += lost
        expect(lost).toBe(0)
        if (kind.resume) expect(await chainCids(store, pair)).toEqual(await chainCids(peer.store, pair))
        const { identity } = await loadOrCreateIdentity(disk.dataDir)
        const theirs = await PairLog.open(store, pair, identity)
        const report = await verifyExport(await exportPairLogBytes(theirs))
        expect(report.problems).toEqual([])
        expect(report.ok).toBe(true)
      } finally {
        await store.close()
      }
    })
  }
})

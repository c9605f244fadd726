/**
 * Disk faults under a live pair session: two loopback nodes, the consumer's
 * store on a filesystem the test breaks (a tmpfs it fills, an ext4 the
 * kernel turns read-only); and, where no mount is allowed as well, a
 * receiver in its own process (bin/pair-peer.ts) under a file size limit
 * (EFBIG). The receiver never acknowledges what it could
 * not write (the sender's view of what it holds never passes what is on its
 * disk), blames itself rather than the peer, refuses its own appends with
 * the named error; the sender keeps its entries, and once the receiver's
 * disk is repaired and its store reopened both converge to identical heads
 * and their exports verify.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { exportPairLogBytes, LevelStore, type PairDescriptor, pairIdOf, verifyExport } from '@tally/lineage'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { canBreakExt4, canMountTmpfs, ext4Loop, mountTmpfs, reportDiskFaults } from '../../lineage/test/disk-fault-env.ts'
import { localNetwork, type PairSessionEvent, PairSessions, type TallyNode } from '../src/index.ts'
import { dialAddress, loopbackNode, waitFor } from './helpers.ts'
import { chainCids, type Peer, pairPeer, stopPeers, TEST_LIMITS } from './pair-helpers.ts'

const scratch = await mkdtemp(join(tmpdir(), 'tally-pair-disk-'))
const TMPFS = await canMountTmpfs(scratch)
const EXT4 = await canBreakExt4(scratch)
const counts = { faults: 0, ackedLost: 0, typedErrors: 0, sessionsRefused: 0, skipped: [] as string[] }
if (TMPFS !== true) counts.skipped.push(`tmpfs: ${TMPFS}`)
if (EXT4 !== true) counts.skipped.push(`ext4: ${EXT4}`)
const cleanups: (() => Promise<void>)[] = []

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined)
  await rm(scratch, { recursive: true, force: true })
  await reportDiskFaults('pair-sessions', counts)
})

/** The consumer: a node whose pair-session service and LevelDB can be restarted on the same directory. */
interface Receiver {
  node: TallyNode
  storeDir: string
  store: LevelStore
  sessions: PairSessions
  events: PairSessionEvent[]
}

async function startReceiver(node: TallyNode, storeDir: string, events: PairSessionEvent[]): Promise<Receiver> {
  const store = await LevelStore.open(storeDir)
  const sessions = new PairSessions({ node, store, onEvent: (e) => events.push(e), limits: TEST_LIMITS })
  await sessions.start()
  return { node, storeDir, store, sessions, events }
}

async function stopReceiver(r: Receiver): Promise<void> {
  await r.sessions.stop()
  await r.store.close()
}

interface Fault {
  name: string
  available: true | string
  /** A filesystem for the receiver's store: `inject` breaks it while open; `heal` (store closed) repairs it. */
  make(base: string): Promise<{ dir: string; inject(): Promise<void>; heal(): Promise<void>; cleanup(): Promise<void> }>
  error: string
  code: string
}

const FAULTS: Fault[] = [
  {
    name: 'disk full (tmpfs)',
    available: TMPFS,
    error: 'StoreFullError',
    code: 'ENOSPC',
    async make(base) {
      const fs = await mountTmpfs(base, 4 << 20)
      return { dir: fs.dir, inject: () => fs.fill(0), heal: () => fs.free(), cleanup: () => fs.unmount() }
    },
  },
  {
    name: 'filesystem turned read-only (ext4 errors=remount-ro)',
    available: EXT4,
    error: 'StoreUnwritableError',
    code: 'EROFS',
    async make(base) {
      const fs = await ext4Loop(base, 32 << 20)
      return { dir: fs.dir, inject: () => fs.breakIt(), heal: () => fs.heal(), cleanup: () => fs.cleanup() }
    },
  },
]

describe('pair sessions when the receiver’s disk fails', () => {
  const peers: Peer[] = []
  const nodes: TallyNode[] = []
  afterEach(async () => {
    await stopPeers(peers.splice(0))
    for (const n of nodes.splice(0)) await n.stop().catch(() => undefined)
  })

  for (const fault of FAULTS) {
    const note = fault.available === true ? '' : ` [skipped: ${fault.available}]`
    it(`${fault.name}: nothing unwritten is acknowledged; the sender resends after recovery and both converge${note}`, async (t) => {
      if (fault.available !== true) return t.skip(fault.available)
      const fs = await fault.make(join(scratch, fault.code))
      cleanups.push(fs.cleanup)
      const sender = await pairPeer()
      peers.push(sender)
      const node = await loopbackNode()
      nodes.push(node)
      const events: PairSessionEvent[] = []
      const storeDir = join(fs.dir, 'db')
      let receiver = await startReceiver(node, storeDir, events)
      const pair: PairDescriptor = { provider: sender.node.peerId, consumer: node.peerId }
      await sender.sessions.add(pair)
      await receiver.sessions.connect(pair, [dialAddress(sender.node)])
      const slog = sender.sessions.logOf(pair)
      for (let i = 0; i < 20; i++) await slog.append('note', { before: i })
      for (let i = 0; i < 5; i++) await receiver.sessions.logOf(pair).append('note', { before: i })
      await Promise.all([sender.sessions.waitForSync(pair, 10_000), receiver.sessions.waitForSync(pair, 10_000)])

      // The disk fails while the sender keeps settling.
      await fs.inject()
      counts.faults++
      const rlog = receiver.sessions.logOf(pair)
      let acksBeyondDisk = 0
      const failed = await waitFor(async () => {
        for (let i = 0; i < 10; i++) await slog.append('note', { during: i, pad: 'y'.repeat(400) })
        // The sender's view of what the receiver holds never passes the receiver's durable head.
        if ((sender.sessions.status(pair).remote?.ours ?? 0) > (rlog.heads().provider?.seq ?? 0)) acksBeyondDisk++
        return receiver.sessions.status(pair).lastError?.code === fault.error
      }, 15_000)
      expect(failed, JSON.stringify(receiver.sessions.status(pair).lastError)).toBe(true)
      counts.typedErrors++
      expect(receiver.sessions.status(pair).lastError?.message).toContain(storeDir)
      // The receiver's own appends are refused with the same named error.
      const own = await rlog.append('note', { during: 'fault' }).then(
        () => null,
        (err: Error & { code?: string }) => err,
      )
      expect(own?.name).toBe(fault.error)
      expect(own?.code).toBe(fault.code)
      counts.typedErrors++
      // Redials keep failing on the store, never on the peer: no cut-off, the sender is not blamed.
      await waitFor(() => events.filter((e) => e.type === 'session-close' && e.reason.includes(fault.error)).length >= 2, 5_000)
      counts.sessionsRefused += events.filter((e) => e.type === 'session-close' && e.reason.includes(fault.error)).length
      expect(events.filter((e) => e.type === 'cut-off')).toEqual([])
      expect(events.some((e) => e.type === 'session-close' && e.reason.startsWith(`local failure: ${fault.error}`))).toBe(true)
      expect(acksBeyondDisk).toBe(0)
      const sentHead = slog.heads().provider!.seq
      const ackedByReceiver = sender.sessions.status(pair).remote?.ours ?? 0
      expect(ackedByReceiver).toBeLessThan(sentHead)
      expect(sender.sessions.status(pair).lag.toRemote).toBe(sentHead - ackedByReceiver)

      // Recovery: stop the receiver, repair the disk, reopen its store on the same directory.
      await stopReceiver(receiver)
      await fs.heal()
      const reopened = await LevelStore.open(storeDir)
      const id = pairIdOf(pair)
      let lost = 0
      for (let seq = 1; seq <= ackedByReceiver; seq++) {
        const want = await slog.getBySeq(pair.provider, seq)
        const have = await reopened.getCid(id, pair.provider, seq)
        if (want === undefined || have === undefined || !have.equals(want.cid)) lost++
      }
      counts.ackedLost += lost
      expect(lost).toBe(0)
      await reopened.close()

      receiver = await startReceiver(node, storeDir, events)
      // The registration is in the store: the pair resumes by itself and the sender resends what was not acknowledged.
      await Promise.all([sender.sessions.waitForSync(pair, 15_000), receiver.sessions.waitForSync(pair, 15_000)])
      const after = receiver.sessions.logOf(pair)
      const b = await after.append('note', { recovered: true })
      await receiver.sessions.awaitRemoteDurable(pair, b.cid, 10_000)
      await Promise.all([sender.sessions.waitForSync(pair, 10_000), receiver.sessions.waitForSync(pair, 10_000)])
      expect(after.heads()).toEqual(slog.heads())
      expect(after.heads().provider!.seq).toBe(sentHead)
      expect(await chainCids(receiver.store, pair)).toEqual(await chainCids(sender.store, pair))
      for (const log of [slog, after]) {
        const report = await verifyExport(await exportPairLogBytes(log))
        expect(report.problems).toEqual([])
        expect(report.ok).toBe(true)
      }
      await stopReceiver(receiver)
    })
  }
})

const PAIR_PEER = join(import.meta.dirname, '..', 'src', 'bin', 'pair-peer.ts')

interface Line {
  type: string
  [k: string]: unknown
}

/** bin/pair-peer.ts as the receiver, optionally under `ulimit -f`: its ready line, then one answer per command. */
class PairPeerProc {
  readonly child: ChildProcess
  readonly ready: Promise<Line>
  readonly #waiters: ((l: Line) => void)[] = []
  stderr = ''

  constructor(config: string, limitKiB?: number) {
    const argv = [process.execPath, '--import', 'tsx', PAIR_PEER, config]
    const cwd = join(import.meta.dirname, '..', '..', '..')
    this.child =
      limitKiB === undefined
        ? spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn('bash', ['-c', `ulimit -f ${limitKiB}; exec "$@"`, 'pair-peer', ...argv], { cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000)
    })
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pair-peer not ready in 30 s: ${this.stderr}`)), 30_000)
      this.child.once('exit', (code) => reject(new Error(`pair-peer exited (${code}) before ready: ${this.stderr}`)))
      createInterface({ input: this.child.stdout! }).on('line', (text) => {
        const line = JSON.parse(text) as Line
        if (line.type === 'ready') {
          clearTimeout(timer)
          resolve(line)
        } else this.#waiters.shift()?.(line)
      })
    })
    this.ready.catch(() => undefined)
  }

  command(text: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${text}: ${this.stderr}`)), 20_000)
      this.#waiters.push((l) => {
        clearTimeout(timer)
        resolve(l)
      })
      this.child.stdin!.write(`${text}\n`)
    })
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve()
    const done = new Promise<void>((r) => this.child.once('exit', () => r()))
    this.child.kill('SIGTERM')
    return done
  }
}

describe('pair sessions when the receiver process reaches its file size limit', () => {
  const peers: Peer[] = []
  const procs: PairPeerProc[] = []
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      await p.stop()
    }
    await stopPeers(peers.splice(0))
  })

  it('EFBIG (ulimit -f): the receiver refuses and never acknowledges; after a restart without the limit both converge', async () => {
    const dir = join(scratch, 'fsize')
    const config = join(scratch, 'fsize.json')
    const limits = { backoffInitialMs: 50, backoffMaxMs: 500, keepaliveMs: 2_000, idleTimeoutMs: 6_000 }
    await writeFile(
      config,
      JSON.stringify({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], network: localNetwork(), role: 'provider', limits }),
    )
    let receiver = new PairPeerProc(config, 256)
    procs.push(receiver)
    let ready = await receiver.ready
    const sender = await pairPeer()
    peers.push(sender)
    const pair: PairDescriptor = { provider: ready['peerId'] as string, consumer: sender.node.peerId }
    const addr = () => `${(ready['multiaddrs'] as string[]).find((a) => a.startsWith('/ip4/127.0.0.1/'))!}`
    await sender.sessions.connect(pair, [addr()])
    const slog = sender.sessions.logOf(pair)
    for (let i = 0; i < 10; i++) await slog.append('note', { before: i })
    await sender.sessions.waitForSync(pair, 10_000)

    // The receiver's LevelDB log grows to the limit while the sender keeps settling.
    counts.faults++
    const refused = await waitFor(async () => {
      for (let i = 0; i < 20; i++) await slog.append('note', { during: i, pad: 'y'.repeat(500) })
      return sender.sessions.status(pair).lastError?.code === 'PairLocalFaultError'
    }, 20_000)
    expect(refused, JSON.stringify(sender.sessions.status(pair))).toBe(true)
    const status = (await receiver.command('status'))['pairs'] as { lastError?: { code: string; message: string } }[]
    expect(status[0]?.lastError?.code).toBe('StoreFullError')
    expect(status[0]?.lastError?.message).toContain(join(dir, 'db'))
    expect((await receiver.command('append 1'))['code']).toBe('StoreFullError')
    counts.typedErrors += 2
    const acked = sender.sessions.status(pair).remote?.ours ?? 0
    const sent = slog.heads().consumer!.seq
    expect(acked).toBeLessThan(sent)

    // Restarted without the limit: it resumes the pair from its store; the sender resends what was never acknowledged.
    await receiver.stop()
    receiver = new PairPeerProc(config)
    procs.push(receiver)
    ready = await receiver.ready
    await sender.sessions.connect(pair, [addr()])
    await sender.sessions.waitForSync(pair, 15_000)
    await receiver.command('sync 15000')
    const held = (await receiver.command('cids')) as Line & { provider: string[]; consumer: string[] }
    const mine = await chainCids(sender.store, pair)
    expect(held.consumer).toEqual(mine.consumer)
    expect(held.provider).toEqual(mine.provider)
    const lost = mine.consumer.slice(0, acked).filter((cid, i) => held.consumer[i] !== cid).length
    counts.ackedLost += lost
    expect(lost).toBe(0)
    const report = await verifyExport(await exportPairLogBytes(slog))
    expect(report.ok).toBe(true)
  })
})

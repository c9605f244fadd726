/**
 * A benchmark host for `pnpm bench deal-net` (scripts/bench/deal-net.ts):
 * `nodes` Tally nodes in one process (one identity, libp2p node and
 * PairSessions each, since a pair session binds the pair to the peers'
 * keys) over one shared LevelDB, each holding the provider or consumer
 * side of one pair. Every pair log is followed by the deal reducer, and an
 * honest daemon reads `duties` and appends what it owes. Requests
 * `{id, op, args}` over the fork IPC channel, answers `{id, ok, value | error}`.
 */
import '@tally/core'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { type CID, type EntryBlock, type EntryKind, Identity, verifySignature } from '@tally/core'
import {
  type AttestationBody,
  buildAcceptance,
  buildAck,
  buildEvaluation,
  buildProposal,
  buildUsage,
  buildVoucher,
  type ContractTerms,
  type DealState,
  type Duty,
  duties,
  epochOf,
  initialState,
  type PairState,
  type PartyRole,
  reduce,
  signAttestationBody,
  type Workload,
} from '../../../packages/deal/src/index.ts'
import { LevelStore, type PairDescriptor, PairLog } from '../../../packages/lineage/src/index.ts'
import { createTallyNode, localNetwork, PairSessions, type TallyNode } from '../../../packages/node/src/index.ts'
import { type BenchOps, serveBenchOps } from '../common.ts'

const PRICE = 1000
/** Usage runs at most this many epochs ahead of the provider's last acknowledgement, so no side builds an unbounded backlog. */
const WINDOW = 16

interface Party {
  node: TallyNode
  sessions: PairSessions
}

/** One pair log with the deal state reduced over it and the daemon that acts on it. */
interface Follower {
  log: PairLog
  identity: Identity
  state: PairState
  role: PartyRole
  /** The deal the epoch daemon drives; null: answer offers only (the negotiation pair). */
  target: string | null
  busy: boolean
  again: boolean
  error: string | null
  waiters: ((b: EntryBlock) => void)[]
}

let store: LevelStore | undefined
const parties: Party[] = []
const followers = new Map<string, Follower>()
let halted = false

const monitor = Identity.fromSeed(new Uint8Array(32).fill(10))
const arbiter = Identity.fromSeed(new Uint8Array(32).fill(20))

export function dealTerms(nonce: string, epochs: number): ContractTerms {
  return {
    nonce,
    resources: { class: 'gpu.h100', count: 1 },
    jurisdiction: 'DE',
    price: { amount: PRICE, asset: 'USD' },
    // Epochs of 1 ms: the machinery is measured, not the wall clock of a real lease.
    epochMs: 1,
    epochs,
    maxEpochs: epochs,
    sla: { availabilityBp: 9900, latencyP95Us: 50_000 },
    rule: {
      version: 1,
      // One named monitor that never reports, and `missing: pay`: the provider's usage claim alone settles an epoch.
      monitors: [{ peer: monitor.peerId, weight: 1 }],
      quorum: 1,
      availability: { minBp: 9900 },
      latency: { maxP95Us: 50_000 },
      challenges: { identity: 'ignore', compute: 'ignore' },
      usage: 'required',
      missing: 'pay',
      payment: 'full',
    },
    arbiter: arbiter.peerId,
    appealArbiter: null,
    insurer: null,
    collateral: { amount: 0, asset: 'USD' },
    rail: 'ledger',
    timeouts: { answerMs: 3_600_000, evidenceGraceMs: 0, appealMs: 3_600_000 },
  }
}

const workload: Workload = { command: ['/bin/sh', '-c', 'sleep 1'], env: {}, limits: { wallMs: 3_600_000, memoryBytes: 1 << 30 }, gpu: { count: 1 } }

function attestationBody(time: number): AttestationBody {
  return {
    v: 1,
    time,
    facts: {
      hardwareClass: 'gpu.h100',
      classSource: 'nvidia-smi',
      gpus: [
        {
          name: 'NVIDIA H100 80GB HBM3',
          model: 'h100',
          uuid: 'GPU-0',
          memoryBytes: 85_899_345_920,
          driverVersion: '550.54.15',
          pciBusId: '00000000:00:00.0',
          source: 'nvidia-smi' as const,
        },
      ],
      cpu: { model: 'AMD EPYC', logicalCores: 32, arch: 'x86_64', source: 'procfs' },
      memory: { totalBytes: 1 << 30, source: 'procfs' },
      kernel: { version: '6.8.0', source: 'procfs' },
      probedAt: time,
      notes: [],
    },
  }
}

const usageFigures = { claimBp: 10_000, metered: { wallMs: 1, cpuMs: 1, maxRssBytes: 1 << 20, gpuMs: 1 }, exit: null, logsHash: 'ab'.repeat(32) }

const keyOf = (pair: PairDescriptor) => `${pair.provider}/${pair.consumer}`

function follow(log: PairLog, identity: Identity): Follower {
  const f: Follower = { log, identity, state: initialState(log.pair), role: log.role, target: null, busy: false, again: false, error: null, waiters: [] }
  log.subscribe((event) => {
    try {
      f.state = reduce(f.state, event.block)
    } catch (err) {
      f.error ??= `${(err as Error).name}: ${(err as Error).message}`
    }
    if (event.origin === 'remote') for (const w of f.waiters.splice(0)) w(event.block)
    void pump(f)
  })
  return f
}

async function open(party: Party, pair: PairDescriptor): Promise<PairLog> {
  const key = keyOf(pair)
  const known = followers.get(key)
  if (known !== undefined) return known.log
  const log = await PairLog.open(store!, pair, party.node.identity)
  if (!followers.has(key)) followers.set(key, follow(log, party.node.identity))
  return followers.get(key)!.log
}

/** The one duty this daemon performs next, or undefined. Vouchers and acks first, so settlement keeps pace with new work. */
function next(f: Follower, now: number): Duty | undefined {
  const owed = duties(f.state, f.role, now)
  if (f.target === null) return owed.find((d) => d.type === 'answer-offer')
  const mine = owed.filter((d) => d.deal.toString() === f.target)
  const deal = f.state.deals.get(f.target) as DealState
  const pick = (type: Duty['type']) => mine.find((d) => d.type === type)
  if (f.role === 'provider') {
    const settled = deal.acknowledged / PRICE
    return pick('ack') ?? pick('attestation') ?? mine.find((d) => d.type === 'usage' && d.epoch < settled + WINDOW)
  }
  // The consumer evaluates an epoch once the provider's usage claim for it is in.
  return pick('voucher') ?? pick('manifest') ?? mine.find((d) => d.type === 'evaluate' && epochOf(deal, d.epoch).usage !== null)
}

function body(f: Follower, duty: Duty, now: number): [EntryKind, unknown] {
  const s = f.state
  switch (duty.type) {
    case 'answer-offer':
      return ['acceptance', buildAcceptance(s, duty.deal)]
    case 'attestation':
      return ['attestation', { deal: duty.deal, attestation: signAttestationBody(f.identity, attestationBody(now)) }]
    case 'manifest':
      return ['manifest', { deal: duty.deal, workload }]
    case 'usage':
      return ['usage', buildUsage(duty.deal, duty.epoch, usageFigures)]
    case 'evaluate':
      return ['evaluation', buildEvaluation(s, duty.deal, duty.epoch)]
    case 'voucher':
      return ['voucher', buildVoucher(s, duty.deal)]
    case 'ack':
      return ['ack', buildAck(s, duty.deal, duty.voucher)]
    default:
      throw new Error(`the bench daemon does not perform ${duty.type}`)
  }
}

async function pump(f: Follower): Promise<void> {
  if (f.busy) {
    f.again = true
    return
  }
  f.busy = true
  try {
    do {
      f.again = false
      for (;;) {
        if (halted || f.error !== null) return
        const now = Date.now()
        const duty = next(f, now)
        if (duty === undefined) break
        const [kind, b] = body(f, duty, now)
        await f.log.append(kind, b, { time: now })
        // The provider's daemon takes up the long deal a consumer proposes for the epoch run.
        if (duty.type === 'answer-offer' && f.state.deals.get(duty.deal.toString())?.terms?.nonce.startsWith('epochs-') === true)
          f.target = duty.deal.toString()
      }
    } while (f.again)
  } catch (err) {
    f.error ??= `${(err as Error).name}: ${(err as Error).message}`
  } finally {
    f.busy = false
  }
}

function followerAt(i: number, other: string, role: PartyRole): Follower {
  const me = parties[i]!.node.peerId
  const pair = role === 'provider' ? { provider: me, consumer: other } : { provider: other, consumer: me }
  const f = followers.get(keyOf(pair))
  if (f === undefined) throw new Error(`no pair log for ${keyOf(pair)}`)
  return f
}

const ops: BenchOps = {
  async init(args) {
    const dir = args['dir'] as string
    store = await LevelStore.open(join(dir, 'db'))
    const out: { peerId: string; addr: string }[] = []
    for (let i = 0; i < (args['nodes'] as number); i++) {
      const node = await createTallyNode({
        identity: Identity.fromSeed(randomBytes(32)),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: [],
        network: localNetwork(),
      })
      const party: Party = { node, sessions: undefined as unknown as PairSessions }
      party.sessions = new PairSessions({ node, store, logFor: (pair) => open(party, pair), accept: () => true, resume: false })
      await node.register(party.sessions)
      parties.push(party)
      out.push({ peerId: node.peerId, addr: node.multiaddrs().find((a) => a.startsWith('/ip4/127.0.0.1/')) as string })
    }
    return out
  },

  /** Consumer side: open the pair of node `i` with `provider` (at `addr`) and wait for the session to sync. */
  async connect(args) {
    const i = args['i'] as number
    const party = parties[i]!
    const pair = { provider: args['provider'] as string, consumer: party.node.peerId }
    await open(party, pair)
    await party.sessions.connect(pair, [args['addr'] as string], { timeoutMs: 10_000 })
    await party.sessions.waitForSync(pair, 30_000)
    return {}
  },

  /** Consumer side: `n` proposals one after another; each timed from append to the provider's acceptance durable here. */
  async negotiate(args) {
    const f = followerAt(args['i'] as number, args['provider'] as string, 'consumer')
    const samples: number[] = []
    const n = args['n'] as number
    const warmup = args['warmup'] as number
    for (let k = 0; k < warmup + n; k++) {
      const accepted = new Promise<EntryBlock>((resolve) => {
        const wait = (b: EntryBlock) => (b.entry.kind === 'acceptance' ? resolve(b) : f.waiters.push(wait))
        f.waiters.push(wait)
      })
      const t = performance.now()
      const proposal = await f.log.append('proposal', buildProposal(dealTerms(`negotiate-${k}`, 1)))
      const acceptance = await accepted
      const elapsed = performance.now() - t
      if (!((acceptance.entry.body as { deal: CID }).deal as CID).equals(proposal.cid)) throw new Error('acceptance names another deal')
      const deal = f.state.deals.get(proposal.cid.toString())
      if (deal?.status !== 'active') throw new Error(`deal ${k} is ${deal?.status} after its acceptance`)
      if (k >= warmup) samples.push(elapsed)
    }
    if (f.error !== null) throw new Error(f.error)
    return { samples }
  },

  /** Consumer side: propose one long deal on every listed pair and let the daemons on both sides run it. */
  async startEpochs(args) {
    const pairs = args['pairs'] as { i: number; provider: string }[]
    for (const { i, provider } of pairs) {
      const f = followerAt(i, provider, 'consumer')
      const proposal = await f.log.append('proposal', buildProposal(dealTerms(`epochs-${i}`, args['epochs'] as number)))
      f.target = proposal.cid.toString()
    }
    return {}
  },

  /** Epochs acknowledged by the provider and held here, over every pair this process holds; errors seen. */
  async settled() {
    let epochs = 0
    const errors: string[] = []
    for (const f of followers.values()) {
      if (f.error !== null) errors.push(f.error)
      if (f.target === null) continue
      const deal = f.state.deals.get(f.target)
      epochs += (deal?.acknowledged ?? 0) / PRICE
    }
    return { epochs, at: Date.now(), errors }
  },

  /** Raw Ed25519 signs and verifies per second on a payload the size of an entry, in this process. */
  async signVerifyRate(args) {
    const id = Identity.fromSeed(new Uint8Array(32).fill(3))
    const payload = randomBytes(args['bytes'] as number)
    const n = args['n'] as number
    for (let i = 0; i < 200; i++) id.sign('entry', payload)
    let t = performance.now()
    let sig: Uint8Array = new Uint8Array()
    for (let i = 0; i < n; i++) sig = id.sign('entry', payload)
    const sign = n / ((performance.now() - t) / 1000)
    for (let i = 0; i < 200; i++) verifySignature('entry', payload, sig, id.publicKey)
    t = performance.now()
    for (let i = 0; i < n; i++) if (!verifySignature('entry', payload, sig, id.publicKey)) throw new Error('signature does not verify')
    return { sign, verify: n / ((performance.now() - t) / 1000) }
  },

  /** One entry per synced LevelDB batch (as an append or a one-entry ingest writes), ms each, in a fresh database: the floor of each durable step. */
  async syncedWrites(args) {
    const f = followerAt(args['i'] as number, args['provider'] as string, 'consumer')
    const blocks: { seq: number; cid: CID; bytes: Uint8Array }[] = []
    for await (const { seq, cid } of f.log.cids(f.role)) blocks.push({ seq, cid, bytes: (await store!.getBlock(cid))! })
    const db = await LevelStore.open(join(args['dir'] as string, 'limit-db'))
    const samples: number[] = []
    try {
      for (const b of blocks) {
        const t = performance.now()
        await db.write({ entries: [{ pair: f.log.id, author: f.log.me, ...b }], heads: [{ pair: f.log.id, author: f.log.me, seq: b.seq, cid: b.cid }] })
        samples.push(performance.now() - t)
      }
      return { samples }
    } finally {
      await db.close()
    }
  },

  /** CPU time this process has used, ms. */
  async cpu() {
    const u = process.cpuUsage()
    return { ms: (u.user + u.system) / 1000 }
  },

  async halt() {
    halted = true
    return {}
  },

  async stop() {
    halted = true
    for (const p of parties) await p.node.stop()
    for (const f of followers.values()) await f.log.close()
    await store?.close()
    setImmediate(() => process.exit(0))
    return {}
  },
}

serveBenchOps(ops)

/**
 * The crash campaign (issue 7, part 1): a network of real processes
 * settles many deals while a chaos loop SIGKILLs a provider, the consumer,
 * a monitor or the arbiter at random moments and restarts it. A sampler
 * reads every live party's record through its control API all along; at
 * the end the processes are stopped and the invariants of DESIGN.md are
 * checked on what is on disk:
 *
 * - both halves of every pair hold identical chains (heads converge);
 * - nothing a live party ever served from its record is missing or
 *   different at the end (nothing acknowledged is lost);
 * - the deal reducer replays every log without a problem, each deal's
 *   vouchers rise strictly and each voucher was handed to the rail once
 *   (nothing paid twice, nothing paid unauthorised);
 * - every deal ends settled (certified by both, rejected or lapsed) and
 *   every dispute has a ruling.
 *
 * Used by test/crash-campaign.test.ts (CI size) and scripts/reliability.ts
 * (large size).
 */
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { replay } from '../../packages/deal/src/index.ts'
import { type EntryBlock, loadOrCreateIdentity } from '@tally/core'
import { LevelStore, openExport, type PairDescriptor, PairLog, pairIdOf } from '../../packages/lineage/src/index.ts'
import { dialable, entries, freePort, listen, local, prepare, writeConfig } from './network.ts'
import { Proc, type Ready } from './processes.ts'

export interface CampaignOptions {
  /** Working directory (wiped by the caller). */
  out: string
  /** Seed of the chaos schedule, printed so a failing run can be repeated. */
  seed: number
  providers: number
  monitors: number
  /** Each round the consumer proposes one deal to every provider. */
  rounds: number
  /** Pause between rounds, so deals overlap at different stages. */
  roundGapMs: number
  epochs: number
  epochMs: number
  /** Pause between kills, drawn uniformly from [min, max] ms. */
  killEveryMs: [number, number]
  /** How long a killed process stays down, drawn from [min, max] ms. */
  downMs: [number, number]
  /** Give up (and count a violation) if the deals have not settled by then. */
  deadlineMs: number
  say?: ((msg: string) => void) | undefined
}

export type Role = 'provider' | 'consumer' | 'monitor' | 'arbiter'

export interface CampaignResult {
  seed: number
  kills: Record<Role, number>
  killsTotal: number
  /** Kills that landed right after the victim's durable write. */
  killsAfterWrite: number
  /** Deals proposed (a round skips a provider that is down at that moment) and deals held by the consumer at the end. */
  proposed: number
  deals: number
  settled: number
  disputes: number
  ruled: number
  entries: number
  /** Entries read from live parties' records during the run and checked against the final ones. */
  sampled: number
  samples: number
  railResults: number
  /** Releases the payment program recorded, and the times the rail asked it again for one already paid (retries after a crash). */
  payments: number
  redeliveries: number
  violations: string[]
  seconds: number
}

const root = resolve(import.meta.dirname, '../..')
const SETTLED = new Set(['certified', 'rejected', 'lapsed'])

interface DealRow {
  deal: string
  pair: string
  provider: string
  status: string
  certified: { provider: boolean; consumer: boolean }
  disputes: { id: string; status: string; rulings: unknown[] }[]
}

/** A small deterministic PRNG (mulberry32): the same seed gives the same chaos schedule. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A role's process, restartable with the same data directory and port. */
interface Member {
  name: string
  role: Role
  dir: string
  proc: Proc
  ready: Ready | undefined
  start: () => Proc
  /** Has a control API serving pair logs (providers and the consumer). */
  records: boolean
}

async function control(m: Member): Promise<{ url: string; token: string } | undefined> {
  try {
    const info = JSON.parse(await readFile(join(m.dir, 'data', 'control.json'), 'utf8')) as { url: string }
    const token = (await readFile(join(m.dir, 'data', 'control.token'), 'utf8')).trim()
    return { url: info.url, token }
  } catch {
    return undefined
  }
}

/** Wait (at most 4 s) until a party's durable heads move; true if they did. */
async function afterWrite(m: Member): Promise<boolean> {
  const heads = async () => {
    const r = await get(m, '/v1/status', 1_000)
    const s = (await r?.json().catch(() => null)) as { pairs: { local: { provider: number; consumer: number } }[] } | null
    return s == null ? null : s.pairs.map((p) => p.local.provider + p.local.consumer).join(',')
  }
  const first = await heads()
  if (first === null) return false
  const until = Date.now() + 4_000
  while (Date.now() < until) {
    const now = await heads()
    if (now !== null && now !== first) return true
    await sleep(10)
  }
  return false
}

async function get(m: Member, path: string, timeoutMs = 5_000): Promise<Response | undefined> {
  const c = await control(m)
  if (c === undefined) return undefined
  try {
    const r = await fetch(`${c.url}${path}`, { headers: { authorization: `Bearer ${c.token}` }, signal: AbortSignal.timeout(timeoutMs) })
    return r.ok ? r : undefined
  } catch {
    return undefined
  }
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const t0 = Date.now()
  const say = o.say ?? (() => {})
  const rand = prng(o.seed)
  const between = ([lo, hi]: [number, number]) => lo + Math.floor(rand() * (hi - lo + 1))
  const violations: string[] = []
  const members: Member[] = []
  const logOf = (dir: string) => join(dir, 'log.jsonl')

  const seed = await prepare(o.out, 'bootstrap')
  const seedFile = await writeConfig(seed.dir, { dataDir: 'data', listen, network: local })
  const bootstrap = new Proc('bootstrap', entries.node, [seedFile], logOf(seed.dir))
  const seedAddr = dialable(await bootstrap.ready)

  // Fixed ports, so a restarted process comes back where its peers look for it.
  const arb = { ...(await prepare(o.out, 'arbiter')), port: await freePort() }
  const mons = await Promise.all(
    Array.from({ length: o.monitors }, async (_, i) => ({ ...(await prepare(o.out, `monitor-${i + 1}`)), port: await freePort() })),
  )
  const provs = await Promise.all(
    Array.from({ length: o.providers }, async (_, i) => ({ ...(await prepare(o.out, `provider-${i + 1}`)), port: await freePort() })),
  )
  const arbAddr = `/ip4/127.0.0.1/tcp/${arb.port}/p2p/${arb.peerId}`
  const consumerDir = join(o.out, 'consumer')
  await mkdir(consumerDir, { recursive: true })
  const consumerData = join(consumerDir, 'data')

  const arbFile = await writeConfig(arb.dir, {
    dataDir: 'data',
    listen: [`/ip4/127.0.0.1/tcp/${arb.port}`],
    bootstrap: [seedAddr],
    network: local,
    arbiter: { mode: 'first-instance' },
  })
  const jurisdictions = ['DE', 'US-CA', 'JP', 'FR', 'SG', 'BR', 'CA', 'NL']
  const provFiles = await Promise.all(
    provs.map((p, i) =>
      writeConfig(p.dir, {
        dataDir: 'data',
        listen: [`/ip4/127.0.0.1/tcp/${p.port}`],
        bootstrap: [seedAddr],
        network: local,
        provider: {
          offer: {
            jurisdiction: jurisdictions[i % jurisdictions.length],
            hardware: { class: 'auto', count: 1 },
            pricePerEpoch: `${100 + i}USD`,
            epochMs: o.epochMs,
            monitors: mons.map((m) => m.peerId),
            arbiters: [arb.peerId],
            rails: ['ledger', 'command'],
          },
          peers: [arbAddr],
        },
      }),
    ),
  )
  const monFiles = await Promise.all(
    mons.map((m) =>
      writeConfig(m.dir, {
        dataDir: 'data',
        listen: [`/ip4/127.0.0.1/tcp/${m.port}`],
        bootstrap: [seedAddr],
        network: local,
        watch: { providers: provs.map((p) => ({ peer: p.peerId, addrs: [`/ip4/127.0.0.1/tcp/${p.port}`] })) },
        probe: { intervalMs: 250, timeoutMs: 1_000 },
        window: { lengthMs: 1_000 },
        compute: { everyWindows: 0 },
      }),
    ),
  )

  const add = (name: string, role: Role, dir: string, start: () => Proc, records: boolean) => {
    const m: Member = { name, role, dir, proc: start(), ready: undefined, start, records }
    members.push(m)
    return m
  }
  add('arbiter', 'arbiter', arb.dir, () => new Proc('arbiter', entries.arbiter, [arbFile], logOf(arb.dir)), false)
  for (const [i, p] of provs.entries()) {
    add(`provider-${i + 1}`, 'provider', p.dir, () => new Proc(`provider-${i + 1}`, entries.provider, [provFiles[i]!], logOf(p.dir)), true)
  }
  for (const [i, m] of mons.entries()) {
    add(`monitor-${i + 1}`, 'monitor', m.dir, () => new Proc(`monitor-${i + 1}`, entries.monitor, [monFiles[i]!], logOf(m.dir)), false)
  }
  for (const m of members) m.ready = await m.proc.ready
  say(`network up: ${o.providers} providers, ${o.monitors} monitors, an arbiter`)

  const workMs = o.epochs * o.epochMs + 5_000
  const payments = join(o.out, 'payments')
  const network = [
    '--bootstrap',
    seedAddr,
    '--peer',
    arbAddr,
    '--rail-command',
    `${process.execPath} ${join(root, 'scripts/workloads/pay-once.mjs')} ${payments}`,
  ]
  const cli = (args: string[]) => new Proc('consumer', entries.cli, ['--data-dir', consumerData, '--json', ...args], join(consumerDir, 'log.txt'))
  const openArgs = [
    'deal',
    'open',
    '--no-wait',
    '--hardware',
    'cpu.x86_64',
    '--providers',
    String(o.providers),
    '--epochs',
    String(o.epochs),
    '--monitor',
    ...mons.map((m) => m.peerId),
    '--arbiter',
    arb.peerId,
    '--collateral',
    '50USD',
    '--command',
    `${process.execPath} ${join(root, 'scripts/workloads/hash-render.mjs')} ${workMs}`,
    '--wall-ms',
    String(workMs),
    '--answer-ms',
    '20000',
    '--evidence-grace-ms',
    '12000',
    '--appeal-ms',
    '1000',
    ...network,
  ]

  const kills: Record<Role, number> = { provider: 0, consumer: 0, monitor: 0, arbiter: 0 }
  let afterWrites = 0
  let done = false
  let deals: DealRow[] = []
  /** The consumer's data directory is being handed between `tally deal open` and `tally node`: not a victim now. */
  let swapping = false
  let chaosTurn: Promise<void> = Promise.resolve()
  const turns: Role[] = []
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
    }
    return xs
  }

  // The sampler: what each live party serves from its record, entry by entry.
  const seen = new Map<string, string>()
  let samples = 0
  const sampler = (async () => {
    while (!done) {
      for (const m of members) {
        if (!m.records || done) continue
        const status = await get(m, '/v1/status')
        if (status === undefined) continue
        const s = (await status.json().catch(() => ({ pairs: [] }))) as { pairs: { pairId: string }[] }
        for (const p of s.pairs) {
          const r = await get(m, `/v1/pairs/${encodeURIComponent(p.pairId)}/export`)
          if (r === undefined) continue
          const bytes = await r
            .arrayBuffer()
            .then((b) => new Uint8Array(b))
            .catch(() => undefined)
          if (bytes === undefined) continue
          const opened = await openExport(bytes)
          if (!opened.report.ok) {
            violations.push(`${m.name} served an export of ${p.pairId} that does not verify: ${JSON.stringify(opened.report.firstProblem)}`)
            continue
          }
          samples++
          for (const b of opened.timeline()) {
            const k = `${p.pairId}/${b.entry.author}/${b.entry.seq}`
            const cid = b.cid.toString()
            const before = seen.get(k)
            if (before === undefined) seen.set(k, cid)
            else if (before !== cid) violations.push(`${m.name}: entry ${k} changed from ${before} to ${cid}`)
          }
        }
      }
      await sleep(500)
    }
  })().catch((err: unknown) => {
    // A fault of this harness, not of Tally: reported, and the run ends.
    violations.push(`campaign harness failed: ${err instanceof Error ? err.stack : String(err)}`)
    done = true
  })

  // The chaos loop, from the moment the network is up: one victim at a time, so the quorum of monitors holds.
  const chaos = (async () => {
    while (!done) {
      await sleep(between(o.killEveryMs))
      if (done) return
      // Roles take turns in a shuffled order, so even a short campaign kills every role; the victim within a role is random.
      if (turns.length === 0) turns.push(...shuffle(['provider', 'consumer', 'monitor', 'arbiter'] as Role[]))
      const role = turns.shift()!
      const candidates = members.filter((m) => m.role === role)
      if (candidates.length === 0 || (role === 'consumer' && swapping)) {
        turns.push(role)
        continue
      }
      const victim = candidates[Math.floor(rand() * candidates.length)]!
      let release = () => {}
      chaosTurn = new Promise<void>((r) => {
        release = r
      })
      try {
        // Half the kills of a record keeper land right after one of its durable writes, before its acknowledgement can leave.
        const targeted = victim.records && rand() < 0.5 && (await afterWrite(victim))
        if (targeted) afterWrites++
        say(`SIGKILL ${victim.name}${targeted ? ' right after a durable write' : ''}`)
        victim.proc.kill('SIGKILL')
        await victim.proc.exited
        kills[victim.role]++
        await sleep(between(o.downMs))
        victim.proc = victim.start()
        try {
          victim.ready = await victim.proc.ready
        } catch (err) {
          violations.push(`${victim.name} did not come back after SIGKILL: ${(err as Error).message}`)
          done = true
        }
      } finally {
        release()
      }
    }
  })().catch((err: unknown) => {
    // A fault of this harness, not of Tally: reported, and the run ends.
    violations.push(`campaign harness failed: ${err instanceof Error ? err.stack : String(err)}`)
    done = true
  })

  // The consumer proposes each round with `tally deal open --no-wait` (it exits once its deals have started),
  // and `tally node` drives them between rounds and after: that is the consumer the chaos loop kills.
  let consumer: Member | undefined
  let proposed = 0
  for (let r = 0; r < o.rounds && !done; r++) {
    if (consumer !== undefined) {
      swapping = true
      await chaosTurn
      await consumer.proc.stop()
    }
    // A provider the chaos loop has just killed is skipped by the search, as it would be for a user; with none up, retry.
    for (let attempt = 1; ; attempt++) {
      const open = cli(openArgs)
      const code = await open.exited
      const line = open.stdout.find((l) => l.startsWith('{"deals"'))
      if (code === 0 && line !== undefined) {
        proposed += (JSON.parse(line) as { deals: unknown[] }).deals.length
        break
      }
      if (attempt === 5) throw new Error(`round ${r + 1}: tally deal open exited ${code} five times (see ${join(consumerDir, 'log.txt')})`)
      await sleep(2_000)
    }
    if (consumer === undefined) consumer = add('consumer', 'consumer', consumerDir, () => cli(['node', ...network]), true)
    else consumer.proc = consumer.start()
    consumer.ready = await consumer.proc.ready
    swapping = false
    say(`round ${r + 1} of ${o.rounds}: deals started; the consumer node runs them`)
    if (r < o.rounds - 1) await sleep(o.roundGapMs)
  }
  if (consumer === undefined) throw new Error('no round ran')

  // Until every deal the consumer holds has settled.
  const deadline = Date.now() + o.deadlineMs
  const want = proposed
  let last = ''
  while (Date.now() < deadline) {
    const r = await get(consumer, '/v1/deals')
    if (r !== undefined) {
      deals = ((await r.json().catch(() => [])) as DealRow[]) ?? []
      const line = deals.map((d) => d.status).join(' ')
      if (line !== last) say(`deals: ${line}`)
      last = line
      const settled = deals.filter((d) => SETTLED.has(d.status) && (d.status !== 'certified' || (d.certified.provider && d.certified.consumer)))
      if (deals.length >= want && settled.length === deals.length) break
    }
    await sleep(1_000)
  }
  done = true
  await Promise.all([chaos, sampler])
  const unsettled = deals.filter((d) => !SETTLED.has(d.status))
  if (deals.length < want) violations.push(`the consumer holds ${deals.length} deals, ${want} were proposed`)
  for (const d of unsettled) violations.push(`deal ${d.deal} with ${d.provider} is still ${d.status} after ${o.deadlineMs} ms`)

  // Let the last acknowledgements cross, then stop everything cleanly and read the disks.
  const pairs = new Map<string, PairDescriptor>()
  for (const d of deals) pairs.set(d.pair, { provider: d.provider, consumer: consumer.ready!.peerId })
  for (let i = 0; i < 30; i++) {
    const views = await Promise.all(
      members
        .filter((m) => m.records)
        .map(async (m) => ((await (await get(m, '/v1/status'))?.json().catch(() => null)) ?? null) as { pairs: { synced: boolean }[] } | null),
    )
    if (views.every((v) => v?.pairs.every((p) => p.synced))) break
    await sleep(500)
  }
  await Promise.all(members.map((m) => m.proc.stop()))
  await bootstrap.stop()

  let total = 0
  let railResults = 0
  const railOk = new Map<string, boolean>()
  const vouchers = new Set<string>()
  let disputes = 0
  let ruled = 0
  for (const [pairId, pair] of pairs) {
    const prov = members.find((m) => m.role === 'provider' && m.ready?.peerId === pair.provider)
    if (prov === undefined) {
      violations.push(`no provider process for pair ${pairId}`)
      continue
    }
    const ours = await readChains(consumerData, pair)
    const theirs = await readChains(join(prov.dir, 'data'), pair)
    if (JSON.stringify(ours.cids) !== JSON.stringify(theirs.cids)) {
      violations.push(
        `pair ${pairId}: the halves differ (consumer holds ${ours.cids.provider.length}+${ours.cids.consumer.length}, provider ${theirs.cids.provider.length}+${theirs.cids.consumer.length})`,
      )
    }
    for (const [who, chains] of [
      ['consumer', ours],
      ['provider', theirs],
    ] as const) {
      for (const role of ['provider', 'consumer'] as const) {
        const author = pair[role]
        chains.cids[role].forEach((cid, i) => {
          const k = `${pairId}/${author}/${i + 1}`
          const before = seen.get(k)
          if (before !== undefined && before !== cid) violations.push(`${who} of ${pairId}: entry ${k} is ${cid}, was served as ${before}`)
        })
      }
      for (const [k] of seen) {
        const [pid, author, seq] = k.split('/')
        if (pid !== pairId) continue
        const role = author === pair.provider ? 'provider' : 'consumer'
        if (Number(seq) > chains.cids[role].length) violations.push(`${who} of ${pairId}: entry ${k} was served during the run and is gone`)
      }
    }
    total += ours.cids.provider.length + ours.cids.consumer.length
    const result = replay(ours.timeline)
    for (const p of result.problems) violations.push(`pair ${pairId}: replay refuses ${p.kind} ${p.author.slice(-8)}#${p.seq}: ${p.code}: ${p.message}`)
    const released = new Map<string, number>()
    const cumulative = new Map<string, number>()
    for (const b of ours.timeline) {
      const body = b.entry.body as { deal?: { toString(): string }; voucher?: { toString(): string }; cumulative?: { amount: number } }
      if (b.entry.kind === 'voucher') vouchers.add(b.cid.toString())
      if (b.entry.kind === 'rail-result' && body.voucher !== undefined) {
        railResults++
        if ((b.entry.body as { status?: string }).status === 'ok') railOk.set(body.voucher.toString(), true)
        const v = body.voucher.toString()
        released.set(v, (released.get(v) ?? 0) + 1)
        if (released.get(v) === 2) violations.push(`pair ${pairId}: voucher ${v} was handed to the rail twice`)
      }
      if (b.entry.kind === 'voucher' && body.deal !== undefined && body.cumulative !== undefined) {
        const d = body.deal.toString()
        const prev = cumulative.get(d) ?? 0
        if (body.cumulative.amount <= prev) violations.push(`deal ${d}: voucher ${b.cid} does not raise the cumulative (${prev} → ${body.cumulative.amount})`)
        cumulative.set(d, body.cumulative.amount)
      }
    }
    for (const deal of result.state.deals.values()) {
      for (const d of deal.disputes.values()) {
        disputes++
        if (d.rulings.length > 0) ruled++
        else violations.push(`deal ${deal.key}: dispute ${d.reason} has no ruling`)
      }
    }
  }

  // The payment system's side: each voucher paid once, and the amounts add up to what the vouchers say.
  const paid = new Map<string, { deal: string; amount: number; cumulative: number }>()
  for (const f of await readdir(join(payments, 'paid')).catch(() => [] as string[])) {
    paid.set(f, JSON.parse(await readFile(join(payments, 'paid', f), 'utf8')) as { deal: string; amount: number; cumulative: number })
  }
  const calls = (await readFile(join(payments, 'calls.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length
  for (const [v, settledOk] of railOk)
    if (settledOk && !paid.has(v)) violations.push(`voucher ${v}: the rail recorded it paid, the payment system has no payment`)
  for (const [k, p] of paid) if (!vouchers.has(k)) violations.push(`the payment system paid ${k} (${p.amount}), which is no voucher in any record`)
  const byDeal = new Map<string, { sum: number; top: number }>()
  for (const p of paid.values()) {
    const d = byDeal.get(p.deal) ?? { sum: 0, top: 0 }
    byDeal.set(p.deal, { sum: d.sum + p.amount, top: Math.max(d.top, p.cumulative) })
  }
  for (const [deal, d] of byDeal) if (d.sum !== d.top) violations.push(`deal ${deal}: the payment system paid ${d.sum} in all, the vouchers add up to ${d.top}`)

  return {
    seed: o.seed,
    kills,
    killsTotal: Object.values(kills).reduce((a, b) => a + b, 0),
    killsAfterWrite: afterWrites,
    proposed,
    deals: deals.length,
    settled: deals.length - unsettled.length,
    disputes,
    ruled,
    entries: total,
    sampled: seen.size,
    samples,
    railResults,
    payments: paid.size,
    redeliveries: calls - paid.size,
    violations,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
  }
}

/** Both chains of a pair as stored in one party's LevelDB, and the timeline the deal reducer reads. */
async function readChains(dataDir: string, pair: PairDescriptor) {
  const store = await LevelStore.open(join(dataDir, 'db'))
  try {
    const id = pairIdOf(pair)
    const cids = { provider: [] as string[], consumer: [] as string[] }
    for (const role of ['provider', 'consumer'] as const) {
      for await (const b of store.chainEntries(id, pair[role], 1, Number.MAX_SAFE_INTEGER)) cids[role].push(b.cid.toString())
    }
    const { identity } = await loadOrCreateIdentity(dataDir)
    const log = await PairLog.open(store, pair, identity)
    const timeline: EntryBlock[] = []
    for await (const b of log.timeline()) timeline.push(b)
    return { cids, timeline }
  } finally {
    await store.close()
  }
}

import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { ControlClient, ControlServer, createLog, DaemonNotRunningError, Metrics, onShutdown, stopOnFault } from '@tally/daemon'
import { aggregate, reportCsv, type Workload, replay } from '@tally/deal'
import { exportPairLogBytes, verifyExport } from '@tally/lineage'
import { type DealView, dealViews, registerPeerMetrics, registerPeerRoutes } from '@tally/peer'
import { type DealWishes, proposeDeal, railKind, startConsumerPeer, termsFor } from '../consumer.ts'
import { resolveDataDir } from '../data-dir.ts'
import { CliError, EXIT, printJson } from '../output.ts'
import type { GlobalOptions } from '../program.ts'
import { parseMoney } from './credential.ts'
import { findOffers, type FindFlags } from './find.ts'
import { withNetworkFlags, withRailFlags } from './network-flags.ts'

interface OpenFlags extends FindFlags {
  providers: string
  epochs: string
  monitor: string[]
  quorum?: string
  arbiter?: string
  appealArbiter?: string
  collateral?: string
  minAvailability: string
  missing: 'hold' | 'pay' | 'refund'
  command: string
  wallMs?: string
  exportDir?: string
  wait: boolean
  deadline: string
  distinctJurisdictions: boolean
  answerMs: string
  evidenceGraceMs: string
  appealMs: string
}

const SETTLED = new Set(['certified', 'rejected', 'lapsed'])

/** Done: certified by both parties (every epoch settled, every dispute ruled), or never started. */
function settled(d: DealView): boolean {
  return SETTLED.has(d.status) && (d.status !== 'certified' || (d.certified.provider && d.certified.consumer))
}

function line(d: DealView): string {
  const v = d.verdicts.map((x) => (x.verdict === 'performed' ? '+' : x.verdict === 'not-performed' ? 'x' : x.verdict === 'disputed' ? '!' : '?')).join('')
  const disputes = d.disputes.map((x) => `${x.status}${x.rulings.length > 0 ? ` (award ${x.rulings.at(-1)!.toProvider})` : ''}`).join(', ')
  return `${d.provider.slice(-8)} ${String(d.jurisdiction).padEnd(5)} ${d.status.padEnd(10)} epochs [${v.padEnd(d.epochs.total ?? 0)}] paid ${d.paid}/${d.authorised} ${d.price?.asset ?? ''}${disputes ? `  disputes: ${disputes}` : ''}`
}

export function registerDeal(program: Command, globals: () => GlobalOptions): void {
  const deal = program.command('deal').description('open, list, show and watch deals')

  withRailFlags(
    withNetworkFlags(
      deal
        .command('open')
        .description('find providers, propose a contract to each (fan-out), run the deals until they settle, export and verify the records')
        .option('--hardware <class>', 'hardware class, e.g. cpu.x86_64 or gpu.h100')
        .option('--jurisdiction <code>', 'only providers in this jurisdiction')
        .option('--max-price <money>', 'highest price per --epoch-ms')
        .option('--epoch-ms <ms>', 'the period --max-price is for', '60000')
        .option('--providers <n>', 'fan the job out across this many providers', '1')
        .option('--distinct-jurisdictions', 'pick providers in different jurisdictions', false)
        .option('--epochs <n>', 'epochs per deal', '6')
        .requiredOption('--monitor <peerId...>', 'monitors whose observations count (weight 1 each)')
        .option('--quorum <n>', 'monitor weight needed to decide an epoch (default: majority)')
        .option('--arbiter <peerId>', 'arbiter named in the contract (default: the provider’s first)')
        .option('--appeal-arbiter <peerId>', 'appeal arbiter')
        .option('--collateral <money>', 'collateral the provider bonds, e.g. 300USD')
        .option('--min-availability <bp>', 'availability a monitor must see to vote up, basis points', '9000')
        .option('--missing <policy>', 'epochs with too little evidence: hold, pay or refund', 'hold')
        .option('--answer-ms <ms>', 'how long a party has to answer what it owes', '30000')
        .option('--evidence-grace-ms <ms>', 'how long after an epoch verdicts on missing evidence wait', '10000')
        .option('--appeal-ms <ms>', 'how long after a ruling either party may appeal', '2000')
        .requiredOption('--command <cmd>', 'the workload: a command line run on each provider (split on spaces)')
        .option('--wall-ms <ms>', 'wall-time limit of the workload (default: the whole deal)')
        .option('--export-dir <dir>', 'write each pair log here when done (CAR) with a fan-out report', '.')
        .option('--no-wait', 'return once every deal has started (accepted, workload sent) instead of once settled; `tally node` drives them on')
        .option('--limit <n>', 'providers to consider', '20')
        .option('--timeout <ms>', 'how long to search', '10000')
        .option('--deadline <ms>', 'give up waiting after this long', '600000'),
    ),
  ).action(async (f: OpenFlags) => {
    const g = globals()
    const dataDir = resolveDataDir(g.dataDir)
    const log = createLog('tally', { level: g.verbose ? 'info' : 'warn', pretty: true })
    const running: { peer?: { stop(): Promise<void> }; control?: ControlServer } = {}
    const { peer, hooks } = await startConsumerPeer(dataDir, f, log, {
      onStoreFailure: (err) =>
        stopOnFault(log, 'stopping: the store cannot write', { dataDir, code: err.code }, async () => {
          await running.control?.stop()
          await running.peer?.stop()
        }),
    })
    running.peer = peer
    const control = new ControlServer({ dataDir, port: 0, log, info: { role: 'consumer', peerId: peer.peerId } })
    running.control = control
    const metrics = new Metrics('consumer', peer.peerId)
    registerPeerMetrics(metrics, peer)
    registerPeerRoutes(control, peer, () => ({ role: 'consumer' }))
    await control.start()
    // Ctrl-C: close the store and remove control.json; the deals resume with `tally node`.
    onShutdown(log, async () => {
      await control.stop()
      await peer.stop()
    })
    try {
      const found = await findOffers(peer, f, !g.json)
      for (const s of found.skipped) log.warn('provider skipped', { peer: s.peer, code: s.code, reason: s.message })
      const want = Number(f.providers)
      const chosen = []
      const seen = new Set<string>()
      for (const o of found.offers) {
        if (chosen.length >= want) break
        if (f.distinctJurisdictions && seen.has(o.body.jurisdiction)) continue
        seen.add(o.body.jurisdiction)
        chosen.push(o)
      }
      if (chosen.length === 0) throw new CliError('no provider matches', EXIT.failed, 'widen --hardware/--jurisdiction/--max-price, or check --bootstrap')
      if (chosen.length < want) log.warn(`only ${chosen.length} of ${want} providers found`)
      const epochs = Number(f.epochs)
      const wishes: DealWishes = {
        epochs,
        monitors: f.monitor,
        ...(f.quorum !== undefined ? { quorum: Number(f.quorum) } : {}),
        ...(f.arbiter !== undefined ? { arbiter: f.arbiter } : {}),
        appealArbiter: f.appealArbiter ?? null,
        ...(f.collateral !== undefined ? { collateral: parseMoney(f.collateral) } : {}),
        minAvailabilityBp: Number(f.minAvailability),
        missing: f.missing,
        answerMs: Number(f.answerMs),
        evidenceGraceMs: Number(f.evidenceGraceMs),
        appealMs: Number(f.appealMs),
        rail: railKind(f),
      }
      const opened: (Awaited<ReturnType<typeof proposeDeal>> & { jurisdiction: string })[] = []
      for (const offer of chosen) {
        const terms = termsFor(offer, wishes)
        const workload: Workload = {
          command: f.command.split(' ').filter(Boolean),
          env: {},
          limits: { wallMs: f.wallMs !== undefined ? Number(f.wallMs) : terms.epochMs * epochs },
        }
        const d = await proposeDeal(peer, hooks, offer, terms, workload)
        opened.push({ ...d, jurisdiction: offer.body.jurisdiction })
        if (!g.json) process.stderr.write(`proposed deal ${d.deal} to ${offer.by} (${offer.body.jurisdiction})\n`)
      }
      if (!f.wait) {
        // The deal's clock runs from acceptance, so the workload must reach the provider before this process goes.
        const until = Date.now() + Number(f.answerMs)
        const started = async (o: (typeof opened)[number]): Promise<string> => {
          for (;;) {
            const d = o.engine.state.deals.get(o.deal)
            if (d !== undefined && (d.status === 'rejected' || d.status === 'lapsed')) return d.status
            if (d?.manifest != null) {
              await peer.sessions.awaitRemoteDurable(o.pair, d.manifest.cid, Math.max(1, until - Date.now()))
              return 'started'
            }
            if (Date.now() > until)
              throw new CliError(
                `deal ${o.deal} with ${o.pair.provider} has not started after ${f.answerMs} ms`,
                EXIT.failed,
                'run `tally node` to keep driving it, then `tally deal show`',
              )
            await new Promise((r) => setTimeout(r, 100))
          }
        }
        const states = []
        for (const o of opened) states.push({ deal: o.deal, provider: o.pair.provider, state: await started(o) })
        if (g.json) printJson({ deals: states })
        else for (const x of states) process.stdout.write(`${x.deal} ${x.provider.slice(-8)} ${x.state}\n`)
        return
      }
      const deadline = Date.now() + Number(f.deadline)
      const tty = process.stderr.isTTY === true && !g.json
      let views: DealView[] = []
      let shown = 0
      for (;;) {
        views = opened.map((o) => dealViews(o.engine.state).find((v) => v.deal === o.deal)!).filter(Boolean)
        if (tty) {
          process.stderr.write(`${shown > 0 ? `\u001b[${shown}A\u001b[J` : ''}${views.map(line).join('\n')}\n`)
          shown = views.length
        }
        if (views.length === opened.length && views.every(settled)) break
        if (Date.now() > deadline) throw new CliError(`deals not settled after ${f.deadline} ms`, EXIT.failed, 'see `tally deal show` for where each stands')
        await new Promise((r) => setTimeout(r, 500))
      }
      // Let the last acknowledgements reach the providers before exporting.
      for (const o of opened) await peer.sessions.waitForSync(o.pair, 10_000).catch(() => undefined)
      const dir = resolve(f.exportDir ?? '.')
      await mkdir(dir, { recursive: true })
      const exports = []
      for (const o of opened) {
        const bytes = await exportPairLogBytes(o.engine.log)
        const file = join(dir, `${o.engine.log.id.toString()}.car`)
        await writeFile(file, bytes)
        const report = await verifyExport(bytes, { replay: (t) => replay(t).problems })
        exports.push({ file, provider: o.pair.provider, verified: report.ok, ...(report.firstProblem !== undefined ? { problem: report.firstProblem } : {}) })
      }
      const report = aggregate(opened.map((o) => ({ state: o.engine.state, jurisdiction: o.jurisdiction })))
      const csv = join(dir, 'fanout-report.csv')
      await writeFile(csv, reportCsv(report))
      if (g.json) printJson({ deals: views, exports, report: csv })
      else {
        if (!tty) for (const v of views) process.stdout.write(`${line(v)}\n`)
        for (const e of exports) process.stdout.write(`export ${e.file}: ${e.verified ? 'verified' : 'INVALID'}\n`)
        process.stdout.write(`fan-out report ${csv}\n`)
      }
      if (!exports.every((e) => e.verified)) process.exitCode = EXIT.failed
    } finally {
      await control.stop()
      await peer.stop()
    }
  })

  const viaDaemon = async (g: GlobalOptions): Promise<ControlClient> => {
    try {
      return await ControlClient.connect(resolveDataDir(g.dataDir))
    } catch (err) {
      if (err instanceof DaemonNotRunningError) {
        throw new CliError(err.message, EXIT.failed, 'start one with `tally node`, or run `tally deal open` (it serves the control API while it runs)')
      }
      throw err
    }
  }

  deal
    .command('list')
    .description('deals held by the running local node')
    .action(async () => {
      const g = globals()
      const deals = await (await viaDaemon(g)).get<DealView[]>('/v1/deals')
      if (g.json) printJson(deals)
      else if (deals.length === 0) process.stdout.write('no deals\n')
      else for (const d of deals) process.stdout.write(`${d.deal}  ${line(d)}\n`)
    })

  deal
    .command('show')
    .description('one deal: terms, epochs and verdicts, payments, disputes')
    .argument('<deal>', 'deal id (the proposal CID)')
    .action(async (id: string) => {
      const g = globals()
      const d = await (await viaDaemon(g)).get<DealView>(`/v1/deals/${encodeURIComponent(id)}`)
      if (g.json) printJson(d)
      else {
        process.stdout.write(`${line(d)}\n`)
        for (const v of d.verdicts) process.stdout.write(`  epoch ${v.epoch}: ${v.verdict} ${v.amount}\n`)
        for (const x of d.disputes) process.stdout.write(`  dispute ${x.id} epochs ${x.epochs.join(',')}: ${x.status} — ${x.reason}\n`)
      }
    })

  deal
    .command('watch')
    .description('follow the running node’s deals live: epochs, verdicts, payments')
    .option('--interval <ms>', 'refresh period', '1000')
    .option('--until-settled', 'exit once every deal has settled', false)
    .action(async (o: { interval: string; untilSettled: boolean }) => {
      const g = globals()
      const client = await viaDaemon(g)
      const tty = process.stdout.isTTY === true && !g.json
      let shown = 0
      for (;;) {
        const deals = await client.get<DealView[]>('/v1/deals')
        if (g.json) printJson({ t: Date.now(), deals })
        else if (tty) {
          process.stdout.write(`${shown > 0 ? `\u001b[${shown}A\u001b[J` : ''}${deals.map(line).join('\n')}\n`)
          shown = deals.length
        } else for (const d of deals) process.stdout.write(`${line(d)}\n`)
        if (o.untilSettled && deals.length > 0 && deals.every(settled)) return
        await new Promise((r) => setTimeout(r, Number(o.interval)))
      }
    })

  program
    .command('dispute')
    .description('disputes')
    .command('open')
    .description('open a dispute on epochs of a deal (held by the running local node)')
    .argument('<deal>', 'deal id')
    .requiredOption('--epochs <list>', 'comma-separated epoch numbers')
    .option('--reason <text>', 'why', 'disputed by the party')
    .action(async (id: string, o: { epochs: string; reason: string }) => {
      const g = globals()
      const epochs = o.epochs.split(',').map((s) => Number(s.trim()))
      if (epochs.some((e) => !Number.isSafeInteger(e) || e < 0)) throw new CliError('--epochs must be numbers like 2,3', EXIT.usage)
      const r = await (await viaDaemon(g)).post<{ dispute: string }>(`/v1/deals/${encodeURIComponent(id)}/dispute`, { epochs, reason: o.reason })
      if (g.json) printJson(r)
      else process.stdout.write(`opened dispute ${r.dispute}\n`)
    })
}

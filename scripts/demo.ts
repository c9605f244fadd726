/**
 * `pnpm demo`: a whole Tally network on loopback, as separate processes of
 * the real binaries: a bootstrap peer, an arbiter, three providers in
 * different jurisdictions, three monitors and a consumer that finds the
 * providers by capability and fans one workload out across them. One
 * provider is killed mid-job and restarted; its workload outlives it, so
 * its usage claim diverges from what the monitors saw, a dispute opens by
 * itself and the arbiter rules. Everything settles, the records are
 * exported and verified, and a summary is printed. `pnpm demo -- --json`
 * prints the summary as one JSON object.
 */
import '@tally/core'
import { execFile } from 'node:child_process'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { dialable, entries, freePort, listen, local, prepare, writeConfig } from './lib/network.ts'
import { killAllSync, Proc, stopAll } from './lib/processes.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const json = process.argv.includes('--json')
const out = resolve(process.env['TALLY_DEMO_OUT'] ?? join(root, 'out/demo'))
const EPOCH_MS = 2_000
const EPOCHS = 10
const t0 = Date.now()

function say(msg: string): void {
  if (!json) process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`)
}

async function main(): Promise<void> {
  await rm(out, { recursive: true, force: true })
  await mkdir(out, { recursive: true })
  say(`output in ${out}`)

  // Identities first: the providers' configs name the monitors and arbiter they accept.
  const seed = await prepare(out, 'bootstrap')
  const arb = await prepare(out, 'arbiter')
  const appealArb = await prepare(out, 'appeal-arbiter')
  const mons = await Promise.all(['monitor-1', 'monitor-2', 'monitor-3'].map((n) => prepare(out, n)))
  const provs = await Promise.all(
    [
      ['provider-de', 'DE', 100],
      ['provider-us', 'US-CA', 120],
      ['provider-jp', 'JP', 110],
    ].map(async ([name, jur, price]) => ({
      ...(await prepare(out, name as string)),
      name: name as string,
      jur: jur as string,
      price: price as number,
      port: await freePort(),
    })),
  )
  const consumerDir = join(out, 'consumer')
  await mkdir(consumerDir, { recursive: true })

  const seedFile = await writeConfig(seed.dir, { dataDir: 'data', listen, network: local })
  const bootstrap = new Proc('bootstrap', entries.node, [seedFile], join(seed.dir, 'log.jsonl'))
  const seedAddr = dialable(await bootstrap.ready)
  say(`bootstrap peer ${seedAddr}`)

  const arbFile = await writeConfig(arb.dir, {
    dataDir: 'data',
    listen,
    bootstrap: [seedAddr],
    network: local,
    arbiter: { mode: 'first-instance' },
    log: { level: 'info' },
  })
  const arbiter = new Proc('arbiter', entries.arbiter, [arbFile], join(arb.dir, 'log.jsonl'))
  const appealFile = await writeConfig(appealArb.dir, {
    dataDir: 'data',
    listen,
    bootstrap: [seedAddr],
    network: local,
    arbiter: { mode: 'appeal' },
    log: { level: 'info' },
  })
  const appealArbiter = new Proc('appeal-arbiter', entries.arbiter, [appealFile], join(appealArb.dir, 'log.jsonl'))

  const startProvider = async (p: (typeof provs)[number]) => {
    const file = await writeConfig(p.dir, {
      dataDir: 'data',
      listen: [`/ip4/127.0.0.1/tcp/${p.port}`],
      bootstrap: [seedAddr],
      network: local,
      provider: {
        offer: {
          jurisdiction: p.jur,
          hardware: { class: 'auto', count: 1 },
          pricePerEpoch: `${p.price}USD`,
          epochMs: EPOCH_MS,
          monitors: mons.map((m) => m.peerId),
          arbiters: [arb.peerId, appealArb.peerId],
        },
        // A provider whose workload ran through an outage appeals a ruling that pays it nothing.
        appealWhenWorkloadRan: true,
      },
      log: { level: 'info' },
    })
    return new Proc(p.name, entries.provider, [file], join(p.dir, 'log.jsonl'))
  }
  const providers = await Promise.all(provs.map(startProvider))
  const ready = await Promise.all(providers.map((p) => p.ready))
  const arbReady = await arbiter.ready
  const appealReady = await appealArbiter.ready
  say(`arbiter ${arb.peerId.slice(-8)}, providers ${provs.map((p, i) => `${p.jur}=${ready[i]!.peerId.slice(-8)}`).join(' ')}`)

  const monitors = await Promise.all(
    mons.map(async (m, i) => {
      const file = await writeConfig(m.dir, {
        dataDir: 'data',
        listen,
        bootstrap: [seedAddr],
        network: local,
        watch: { providers: provs.map((p, j) => ({ peer: p.peerId, addrs: [dialable(ready[j]!)] })) },
        probe: { intervalMs: 250, timeoutMs: 1_000 },
        window: { lengthMs: 1_000 },
        compute: { everyWindows: 0 },
      })
      return new Proc(`monitor-${i + 1}`, entries.monitor, [file], join(m.dir, 'log.jsonl'))
    }),
  )
  await Promise.all(monitors.map((m) => m.ready))
  say('three monitors probing the providers and gossiping signed observations')

  const exportsDir = join(out, 'exports')
  const consumer = new Proc(
    'consumer',
    entries.cli,
    [
      '--data-dir',
      join(consumerDir, 'data'),
      '--json',
      'deal',
      'open',
      '--hardware',
      'cpu.x86_64',
      '--providers',
      '3',
      '--distinct-jurisdictions',
      '--epochs',
      String(EPOCHS),
      '--monitor',
      ...mons.map((m) => m.peerId),
      '--arbiter',
      arb.peerId,
      '--appeal-arbiter',
      appealArb.peerId,
      '--appeal-ms',
      '15000',
      '--collateral',
      '300USD',
      '--command',
      `${process.execPath} ${join(root, 'scripts/workloads/hash-render.mjs')} ${EPOCHS * EPOCH_MS + 10_000}`,
      '--wall-ms',
      String(EPOCHS * EPOCH_MS + 10_000),
      '--export-dir',
      exportsDir,
      '--bootstrap',
      seedAddr,
      '--peer',
      dialable(arbReady),
      dialable(appealReady),
      '--deadline',
      '240000',
      // Long enough for the killed provider's usage claims to arrive before its epochs are judged.
      '--evidence-grace-ms',
      '45000',
      '--answer-ms',
      '60000',
    ],
    join(consumerDir, 'log.txt'),
  )
  say('consumer looking for cpu.x86_64 providers and fanning the job out')

  // Kill the US provider once its deal is running, then bring it back.
  const victim = 1
  const controlOf = async (): Promise<{ url: string; token: string } | undefined> => {
    try {
      const info = JSON.parse(await readFile(join(consumerDir, 'data', 'control.json'), 'utf8')) as { url: string }
      const token = (await readFile(join(consumerDir, 'data', 'control.token'), 'utf8')).trim()
      return { url: info.url, token }
    } catch {
      return undefined
    }
  }
  let restarted: Proc | undefined
  const chaos = (async () => {
    for (let i = 0; i < 200; i++) {
      await new Promise((r) => setTimeout(r, 250))
      if (consumer.child.exitCode !== null) return
      const c = await controlOf()
      if (c === undefined) continue
      const deals = (await fetch(`${c.url}/v1/deals`, { headers: { authorization: `Bearer ${c.token}` } })
        .then((r) => r.json())
        .catch(() => [])) as { provider: string; verdicts: unknown[]; status: string }[]
      const d = deals.find((x) => x.provider === provs[victim]!.peerId)
      if (d !== undefined && d.status === 'active' && d.verdicts.length >= 1) break
    }
    say(`killing ${provs[victim]!.name} (SIGKILL) mid-job`)
    providers[victim]!.kill('SIGKILL')
    await providers[victim]!.exited
    await new Promise((r) => setTimeout(r, 2 * EPOCH_MS + 500))
    say(`restarting ${provs[victim]!.name}`)
    restarted = await startProvider(provs[victim]!)
    await restarted.ready
    say(`${provs[victim]!.name} is back; its pair session resumes by itself`)
  })()

  const code = await consumer.exited
  await chaos
  const summaryLine = consumer.stdout.find((l) => l.startsWith('{"deals"'))
  if (code !== 0 || summaryLine === undefined) throw new Error(`consumer failed (exit ${code}); see ${join(consumerDir, 'log.txt')}`)
  const summary = JSON.parse(summaryLine) as {
    deals: {
      deal: string
      provider: string
      jurisdiction: string
      status: string
      epochs: Record<string, number>
      paid: number
      price: { asset: string } | null
      disputes: {
        id: string
        epochs: number[]
        status: string
        reason: string
        rulings: { arbiter: string; toProvider: number; collateralToConsumer: number; appeal: boolean }[]
      }[]
    }[]
    exports: { file: string; provider: string; verified: boolean }[]
    report: string
  }

  // An auditor's check of each export, with the real `tally verify`.
  const run = promisify(execFile)
  const verified: Record<string, boolean> = {}
  for (const e of summary.exports) {
    const r = await run(process.execPath, ['--import', 'tsx', entries.cli, '--json', 'verify', e.file]).then(
      (x) => x,
      (err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }),
    )
    verified[e.file] = (JSON.parse(r.stdout) as { ok: boolean }).ok
  }

  // The explorer over the exports: started, checked, and its URL printed.
  const explorer = new Proc('explorer', entries.cli, ['--json', 'explorer', ...summary.exports.map((e) => e.file)], join(out, 'explorer.log'))
  const explorerUrl = await new Promise<string>((resolveUrl, reject) => {
    const t = setInterval(() => {
      const l = explorer.stdout.find((x) => x.includes('"url"'))
      if (l !== undefined) {
        clearInterval(t)
        resolveUrl((JSON.parse(l) as { url: string }).url)
      }
    }, 100)
    explorer.exited.then(() => reject(new Error('explorer exited')))
  })
  const page = await fetch(explorerUrl).then((r) => r.status)

  const result = {
    deals: summary.deals.map((d) => ({
      deal: d.deal,
      provider: d.provider,
      jurisdiction: d.jurisdiction,
      state: d.status,
      epochsPerformed: d.epochs['performed'] ?? 0,
      epochsDisputed: d.epochs['disputed'] ?? 0,
      epochsNotPerformed: d.epochs['notPerformed'] ?? 0,
      paid: d.paid,
      asset: d.price?.asset ?? '',
    })),
    disputes: summary.deals.flatMap((d) =>
      d.disputes.map((x) => ({ deal: d.deal, provider: d.provider, epochs: x.epochs, status: x.status, reason: x.reason, rulings: x.rulings })),
    ),
    exports: summary.exports.map((e) => ({ file: e.file, provider: e.provider, verified: verified[e.file] === true })),
    report: summary.report,
    explorer: { url: explorerUrl, status: page },
    killed: provs[victim]!.peerId,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
  }
  await explorer.stop()
  void restarted
  await stopAll()

  if (json) process.stdout.write(`${JSON.stringify(result)}\n`)
  else {
    const w = (s: string) => process.stdout.write(`${s}\n`)
    w('')
    w('provider   jurisdiction  state       performed  disputed  not-performed  paid')
    for (const d of result.deals) {
      w(
        `${d.provider.slice(-8)}   ${d.jurisdiction.padEnd(12)}  ${d.state.padEnd(10)}  ${String(d.epochsPerformed).padStart(9)}  ${String(d.epochsDisputed).padStart(8)}  ${String(d.epochsNotPerformed).padStart(13)}  ${d.paid} ${d.asset}`,
      )
    }
    w('')
    for (const x of result.disputes) {
      const r = x.rulings.at(-1)
      const by = r === undefined ? '' : `${r.appeal ? 'appeal arbiter' : 'arbiter'} ${r.arbiter.slice(-8)}`
      w(
        `dispute on ${x.provider.slice(-8)} epochs ${x.epochs.join(',')}: ${x.status}${r ? ` — ${by} awarded ${r.toProvider} to the provider, ${r.collateralToConsumer} collateral to the consumer` : ''}`,
      )
    }
    for (const e of result.exports) w(`export ${e.file}: ${e.verified ? 'verified by tally verify' : 'FAILED verification'}`)
    w(`fan-out report ${result.report}`)
    w(`explorer: ${explorerUrl} (answered ${page}; reopen with: pnpm tally explorer ${exportsDir}/*.car)`)
    w(`finished in ${result.seconds} s; every process stopped`)
  }
  const ok = result.exports.length === 3 && result.exports.every((e) => e.verified) && result.disputes.length > 0
  if (!ok) process.exitCode = 1
}

process.on('SIGINT', () => {
  killAllSync()
  process.exit(130)
})
main().catch(async (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`)
  await stopAll()
  process.exit(1)
})

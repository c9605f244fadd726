/**
 * `pnpm local-network`: the shared services of a loopback network, for
 * trying Tally by hand in a few terminals: a bootstrap peer, an arbiter and
 * a monitor that watches every cpu/gpu provider it finds in the DHT. It
 * writes a provider config and prints the commands for the provider and
 * the consumer terminals. Ctrl-C stops everything.
 */
import '@tally/core'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { attestHardware } from '@tally/executor'
import { dialable, entries, freePort, listen, local, prepare, writeConfig } from './lib/network.ts'
import { killAllSync, Proc, stopAll } from './lib/processes.ts'

const out = resolve(process.env['TALLY_LOCAL_OUT'] ?? 'out/local')

async function main(): Promise<void> {
  await mkdir(out, { recursive: true })
  const hw = (await attestHardware()).hardwareClass
  const seed = await prepare(out, 'bootstrap')
  const arb = await prepare(out, 'arbiter')
  const mon = await prepare(out, 'monitor')
  const seedProc = new Proc('bootstrap', entries.node, [await writeConfig(seed.dir, { dataDir: 'data', listen, network: local })], join(seed.dir, 'log.jsonl'))
  const seedAddr = dialable(await seedProc.ready)
  const arbiter = new Proc(
    'arbiter',
    entries.arbiter,
    [await writeConfig(arb.dir, { dataDir: 'data', listen, bootstrap: [seedAddr], network: local })],
    join(arb.dir, 'log.jsonl'),
  )
  const monitor = new Proc(
    'monitor',
    entries.monitor,
    [
      await writeConfig(mon.dir, {
        dataDir: 'data',
        listen,
        bootstrap: [seedAddr],
        network: local,
        watch: { query: { hardwareClass: hw, refreshMs: 5_000 } },
        probe: { intervalMs: 500 },
        window: { lengthMs: 2_000 },
      }),
    ],
    join(mon.dir, 'log.jsonl'),
  )
  const arbAddr = dialable(await arbiter.ready)
  await monitor.ready
  const providerDir = join(out, 'provider')
  await mkdir(providerDir, { recursive: true })
  const providerFile = await writeConfig(providerDir, {
    dataDir: 'data',
    listen: [`/ip4/127.0.0.1/tcp/${await freePort()}`],
    bootstrap: [seedAddr],
    network: local,
    provider: {
      offer: { jurisdiction: 'DE', pricePerEpoch: '100USD', epochMs: 5_000, monitors: [mon.peerId], arbiters: [arb.peerId] },
    },
    log: { pretty: true },
  })
  const w = (s: string) => process.stdout.write(`${s}\n`)
  w(`local network up (logs in ${out}):`)
  w(`  bootstrap ${seedAddr}`)
  w(`  arbiter   ${arb.peerId}`)
  w(`  monitor   ${mon.peerId} (watching ${hw} providers)`)
  w('')
  w('terminal 2, the provider:')
  w(`  pnpm start:provider ${providerFile}`)
  w('')
  w('terminal 3, the consumer (finds the provider, runs a 6-epoch deal, exports and verifies the record):')
  w(
    `  pnpm tally --data-dir ${join(out, 'consumer')} deal open --hardware ${hw} --epochs 6 --monitor ${mon.peerId} --arbiter ${arb.peerId} --bootstrap ${seedAddr} --peer ${arbAddr} --command "node ${resolve('scripts/workloads/hash-render.mjs')} 30000" --export-dir ${join(out, 'exports')}`,
  )
  w('')
  w('Ctrl-C here stops the bootstrap peer, arbiter and monitor.')
  await new Promise<void>((r) => process.once('SIGINT', r))
  await stopAll()
}

process.on('SIGTERM', () => {
  killAllSync()
  process.exit(143)
})
main().catch(async (err: unknown) => {
  process.stderr.write(`local-network failed: ${err instanceof Error ? err.message : String(err)}\n`)
  await stopAll()
  process.exit(1)
})

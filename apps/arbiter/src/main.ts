/**
 * `tally-arbiter <config.yaml>`: run an arbiter until SIGTERM or SIGINT.
 *
 * The config file holds node configuration (dataDir, listen, bootstrap,
 * network …) and the daemon's `arbiter`, `control` and `log` sections; see
 * apps/arbiter/README.md. When ready the process prints one JSON line
 * `{"event":"ready","peerId","multiaddrs","control"}` on stdout; logs go
 * to stderr as JSON lines.
 */
import '@tally/core'
import { ControlServer, createLog, Metrics, onShutdown } from '@tally/daemon'
import { createTallyNode } from '@tally/node'
import { Arbiter } from './arbiter.ts'
import { loadArbiterConfig } from './config.ts'
import { registerControlRoutes } from './control.ts'

async function main(): Promise<void> {
  const file = process.argv[2]
  if (file === undefined || file === '--help' || file === '-h') {
    process.stderr.write('usage: tally-arbiter <config.yaml>\n')
    process.exit(file === undefined ? 2 : 0)
  }
  const config = await loadArbiterConfig(file)
  const log = createLog('arbiter', config.log)
  const started = Date.now()

  const node = await createTallyNode(config.node)
  const metrics = new Metrics('arbiter', node.peerId)
  const arbiter = await Arbiter.open({ node, dataDir: config.dataDir, settings: config.settings, log, metrics })
  await arbiter.start()
  const control = new ControlServer({
    dataDir: config.dataDir,
    port: config.control.port,
    log: log.child('control'),
    metrics,
    info: { role: 'arbiter', peerId: node.peerId },
  })
  registerControlRoutes(control, arbiter, started)
  const url = await control.start()

  onShutdown(log, async () => {
    await control.stop()
    await arbiter.stop()
    await node.stop()
  })
  log.info('ready', { peerId: node.peerId, control: url, cases: arbiter.store.size })
  process.stdout.write(`${JSON.stringify({ event: 'ready', peerId: node.peerId, multiaddrs: node.multiaddrs(), control: url })}\n`)
}

main().catch((err: unknown) => {
  const e = err instanceof Error ? err : new Error(String(err))
  process.stderr.write(`tally-arbiter: ${e.name}: ${e.message}\n`)
  if (process.env['TALLY_VERBOSE'] === '1') process.stderr.write(`${e.stack ?? ''}\n`)
  process.exit(1)
})

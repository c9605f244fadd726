/**
 * `tally-monitor <config.yaml>`: run a monitor until SIGTERM or SIGINT.
 *
 * The file holds node configuration (dataDir, listen, bootstrap, network …)
 * and the monitor's settings (watch, probe, window, compute, credential);
 * see apps/monitor/README.md. When ready the process prints one JSON line
 * `{"peerId", "multiaddrs"}` on stdout; events go to stderr as JSON lines.
 */
import '@tally/core'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { decode, decodeCredential } from '@tally/core'
import { LevelStore } from '@tally/lineage'
import { createTallyNode } from '@tally/node'
import { parse as parseYaml } from 'yaml'
import { ControlServer, createLog, Metrics } from '@tally/daemon'
import { parseMonitorConfig } from './config.ts'
import { jsonLog } from './log.ts'
import { Monitor } from './monitor.ts'

/** Prometheus gauges over the monitor's counters, with their meaning. */
const COUNTER_HELP: Record<string, string> = {
  probes: 'Probes sent to providers',
  probeFailures: 'Probes that found the provider unreachable',
  identityFailures: 'Identity challenges that failed',
  computeChallenges: 'Compute challenges sent',
  computeFailures: 'Compute challenges answered wrongly or too slowly',
  observationsPublished: 'Signed observations published on gossip',
  publishFailures: 'Observations that could not be published',
  warrantsIssued: 'Warrants this monitor issued',
}

const log = jsonLog(process.stderr, process.env['TALLY_LOG_LEVEL'] === 'debug' ? 'debug' : 'info')

async function main(): Promise<void> {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write('usage: tally-monitor <config.yaml|config.json>\n')
    process.exit(2)
  }
  const path = resolve(file)
  const text = await readFile(path, 'utf8')
  const config = parseMonitorConfig(path.endsWith('.json') ? JSON.parse(text) : parseYaml(text), dirname(path))
  const credential = config.credentialFile === undefined ? undefined : decodeCredential(decode(await readFile(config.credentialFile)))

  const node = await createTallyNode(config.node)
  const store = await LevelStore.open(join(config.node.dataDir, 'store'))
  const monitor = await Monitor.create({ node, store, settings: config.settings, ...(credential === undefined ? {} : { credential }), log })

  let stopping = false
  let stopControl: () => Promise<void> = async () => {}
  const shutdown = (signal: string): void => {
    if (stopping) return
    stopping = true
    log('info', 'stopping', { signal })
    const hardStop = setTimeout(() => {
      log('error', 'stop-timeout', {})
      process.exit(1)
    }, 15_000)
    hardStop.unref()
    stopControl()
      .then(() => monitor.stop())
      .then(() => node.stop())
      .then(() => store.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log('error', 'stop-failed', { error: err })
          process.exit(1)
        },
      )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  await monitor.start()
  const metrics = new Metrics('monitor', node.peerId)
  for (const [name, help] of Object.entries(COUNTER_HELP)) {
    metrics.gauge(`monitor_${name}`, help, [], (g) => {
      g.set(Number((monitor.counters as unknown as Record<string, number>)[name] ?? 0))
    })
  }
  const control = new ControlServer({
    dataDir: config.node.dataDir,
    port: config.settings.control.port,
    log: createLog('monitor', { level: 'warn' }),
    metrics,
    info: { role: 'monitor', peerId: node.peerId },
  })
  control.route('GET', '/v1/status', () => ({ role: 'monitor', peerId: node.peerId, multiaddrs: node.multiaddrs(), counters: monitor.counters }))
  await control.start()
  stopControl = () => control.stop()
  process.stdout.write(`${JSON.stringify({ event: 'ready', peerId: node.peerId, multiaddrs: node.multiaddrs(), control: control.url })}\n`)
}

main().catch((err: unknown) => {
  log('error', 'fatal', { error: err })
  process.exit(1)
})

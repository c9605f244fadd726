import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { ControlClient, ControlServer, createLog, DaemonNotRunningError, Metrics, onShutdown, stopOnFault } from '@tally/daemon'
import { registerPeerMetrics, registerPeerRoutes } from '@tally/peer'
import { type NetworkFlags, startConsumerPeer } from '../consumer.ts'
import { resolveDataDir } from '../data-dir.ts'
import { CliError, EXIT, printJson } from '../output.ts'
import type { GlobalOptions } from '../program.ts'
import { withNetworkFlags, withRailFlags } from './network-flags.ts'

export function registerNode(program: Command, globals: () => GlobalOptions): void {
  withRailFlags(
    withNetworkFlags(
      program
        .command('node')
        .description(
          'run this consumer peer in the foreground: resumes its pair sessions and deals, serves the control API for deal list/show/watch and dispute open',
        )
        .option('--control-port <port>', 'control API port on 127.0.0.1 (0: any)', '0'),
    ),
  ).action(async (f: NetworkFlags & { controlPort: string }) => {
    const g = globals()
    const dataDir = resolveDataDir(g.dataDir)
    const log = createLog('tally', { level: g.verbose ? 'debug' : 'info', pretty: process.stderr.isTTY === true })
    const running: { peer?: { stop(): Promise<void> }; control?: ControlServer } = {}
    const stop = async () => {
      await running.control?.stop()
      await running.peer?.stop()
    }
    // A store that cannot write cannot store or acknowledge entries: stop (exit 74) rather than run on refusing them.
    const { peer } = await startConsumerPeer(dataDir, f, log, {
      onStoreFailure: (err) => stopOnFault(log, 'stopping: the store cannot write', { dataDir, code: err.code }, stop),
    })
    running.peer = peer
    const metrics = new Metrics('consumer', peer.peerId)
    registerPeerMetrics(metrics, peer)
    const control = new ControlServer({ dataDir, port: Number(f.controlPort), log, metrics, info: { role: 'consumer', peerId: peer.peerId } })
    running.control = control
    registerPeerRoutes(control, peer, () => ({ role: 'consumer' }))
    await control.start()
    onShutdown(log, stop)
    log.info('ready', { peerId: peer.peerId, control: control.url, pairs: peer.sessions.list().length })
    if (g.json) printJson({ event: 'ready', peerId: peer.peerId, multiaddrs: peer.node.multiaddrs(), control: control.url })
    await new Promise(() => {})
  })

  program
    .command('export')
    .description('write the pair logs held by the running local node to CAR files')
    .option('--pair <id...>', 'only these pairs (default: every pair)')
    .option('-o, --out <dir>', 'directory to write to', '.')
    .action(async (o: { pair?: string[]; out: string }) => {
      const g = globals()
      let client: ControlClient
      try {
        client = await ControlClient.connect(resolveDataDir(g.dataDir))
      } catch (err) {
        if (err instanceof DaemonNotRunningError) throw new CliError(err.message, EXIT.failed, 'start the node (`tally node`, or the provider daemon) first')
        throw err
      }
      const status = await client.get<{ pairs: { pairId: string }[] }>('/v1/status')
      const ids = o.pair ?? status.pairs.map((p) => p.pairId)
      const written = []
      for (const id of ids) {
        const bytes = await client.getBytes(`/v1/pairs/${encodeURIComponent(id)}/export`)
        const file = join(resolve(o.out), `${id}.car`)
        await writeFile(file, bytes)
        written.push({ pair: id, file, bytes: bytes.byteLength })
      }
      if (g.json) printJson({ exports: written })
      else for (const w of written) process.stdout.write(`wrote ${w.file} (${w.bytes} bytes); check it with: tally verify ${w.file}\n`)
    })
}

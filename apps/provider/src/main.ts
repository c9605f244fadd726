#!/usr/bin/env node
// tally-provider: the provider's peer daemon. Usage: tally-provider <config.yaml>
import '@tally/core'
import { createLog, EXIT_IO_ERROR, onShutdown, stopOnFault } from '@tally/daemon'
import { StoreWriteError } from '@tally/lineage'
import { loadProviderConfig } from './config.ts'
import { ProviderDaemon } from './provider.ts'

const file = process.argv[2]
if (file === undefined || file === '--help' || file === '-h') {
  process.stderr.write('usage: tally-provider <config.yaml>\nsee docs/OPERATIONS.md for the configuration reference\n')
  process.exit(file === undefined ? 2 : 0)
}
try {
  const config = await loadProviderConfig(file)
  const log = createLog('provider', { level: config.log.level, pretty: config.log.pretty })
  // A store that cannot write cannot store or acknowledge entries: stop, and let the supervisor restart once the disk is fixed.
  const daemon: ProviderDaemon = new ProviderDaemon(config, log, {
    onStoreFailure: (err) => stopOnFault(log, 'stopping: the store cannot write', { dataDir: config.dataDir, code: err.code }, () => daemon.stop()),
  })
  onShutdown(log, () => daemon.stop())
  await daemon.start()
  log.info('ready', { peerId: daemon.peer.peerId, control: daemon.control.url })
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', role: 'provider', peerId: daemon.peer.peerId, multiaddrs: daemon.peer.node.multiaddrs(), control: daemon.control.url })}\n`,
  )
} catch (err) {
  process.stderr.write(`tally-provider: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`)
  if (process.argv.includes('--verbose') && err instanceof Error) process.stderr.write(`${err.stack}\n`)
  process.exit(err instanceof StoreWriteError ? EXIT_IO_ERROR : 1)
}

#!/usr/bin/env node
// tally-provider: the provider's peer daemon. Usage: tally-provider <config.yaml>
import '@tally/core'
import { createLog, onShutdown } from '@tally/daemon'
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
  const daemon = new ProviderDaemon(config, log)
  onShutdown(log, () => daemon.stop())
  await daemon.start()
  log.info('ready', { peerId: daemon.peer.peerId, control: daemon.control.url })
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', role: 'provider', peerId: daemon.peer.peerId, multiaddrs: daemon.peer.node.multiaddrs(), control: daemon.control.url })}\n`,
  )
} catch (err) {
  process.stderr.write(`tally-provider: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`)
  if (process.argv.includes('--verbose') && err instanceof Error) process.stderr.write(`${err.stack}\n`)
  process.exit(1)
}

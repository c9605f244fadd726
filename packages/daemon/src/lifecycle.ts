import type { Log } from './log.ts'

/**
 * Graceful shutdown: the first SIGTERM/SIGINT runs `stop` (bounded by
 * `graceMs`), a second signal or the deadline exits at once.
 */
export function onShutdown(log: Log, stop: () => Promise<void>, graceMs = 15_000): void {
  let stopping = false
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('second signal, exiting now', { signal })
      process.exit(1)
    }
    stopping = true
    log.info('shutting down', { signal })
    const timer = setTimeout(() => {
      log.error('shutdown took too long, exiting', { graceMs })
      process.exit(1)
    }, graceMs)
    timer.unref()
    stop().then(
      () => {
        log.info('stopped')
        process.exit(0)
      },
      (err: unknown) => {
        log.error('error while stopping', { err })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
}

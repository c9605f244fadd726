import type { Log } from './log.ts'

/** Exit status of a daemon stopped because its data directory can no longer be written (EX_IOERR of sysexits.h). */
export const EXIT_IO_ERROR = 74

/** Set once the process is on its way out (a signal or a fault), so that a second cause exits at once. */
let stopping = false
/** The exit status a fault asked for, kept by a shutdown already under way. */
let faultCode: number | undefined

/**
 * Graceful shutdown: the first SIGTERM/SIGINT runs `stop` (bounded by
 * `graceMs`), a second signal or the deadline exits at once.
 */
export function onShutdown(log: Log, stop: () => Promise<void>, graceMs = 15_000): void {
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
        process.exit(faultCode ?? 0)
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

/**
 * Stop for good on a fault the process cannot repair in place, such as a
 * store that can no longer write: log `msg` as an error with `fields`, run
 * `stop` (bounded by `graceMs`; its own failures are logged, not fatal) and
 * exit with `code`, so a supervisor restarts the daemon once the cause is
 * fixed. Runs once; a signal while it runs exits at once.
 */
export function stopOnFault(log: Log, msg: string, fields: Record<string, unknown>, stop: () => Promise<void>, code = EXIT_IO_ERROR, graceMs = 5_000): void {
  log.error(msg, { ...fields, exitCode: code })
  faultCode ??= code
  if (stopping) return
  stopping = true
  const timer = setTimeout(() => {
    log.error('stop after the fault took too long, exiting', { graceMs, exitCode: code })
    process.exit(code)
  }, graceMs)
  timer.unref()
  stop()
    .catch((err: unknown) => log.warn('error while stopping after the fault', { err }))
    .finally(() => process.exit(code))
}

/**
 * @tally/daemon: what every Tally daemon shares. YAML config files,
 * structured JSON logs, Prometheus metrics, the control API on 127.0.0.1
 * guarded by a token file, and graceful shutdown.
 */
export * from './errors.ts'
export * from './log.ts'
export * from './config-file.ts'
export * from './control.ts'
export * from './control-client.ts'
export * from './metrics.ts'
export * from './lifecycle.ts'

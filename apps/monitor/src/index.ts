/**
 * @tally/monitor: the tally-monitor daemon. `Monitor` probes providers
 * (ping, signed identity challenge, compute challenge), publishes one
 * signed observation per provider per window on its shard topic, and
 * issues warrants against monitors that equivocate.
 */
export { Monitor, type MonitorOptions, type MonitorCounters, type Target } from './monitor.ts'
export {
  parseMonitorConfig,
  monitorSettingsSchema,
  MIN_COMPUTE_PERIOD_MS,
  type MonitorSettings,
  type MonitorFileConfig,
  type WatchedProvider,
} from './config.ts'
export { SeqAllocator, SEQ_META_KEY, SEQ_BLOCK } from './seq.ts'
export { WindowSamples, windowAt, percentile, type Window } from './window.ts'
export { jsonLog, silentLog, type EventLog, type Level } from './log.ts'

import { ConfigError, loadConfigFile, relativeTo } from '@tally/daemon'
import {
  ARBITRATE_CASE_RATE,
  ARBITRATE_MAX_CONCURRENT_CASES,
  ARBITRATE_MAX_RECORD_BYTES,
  ARBITRATE_UPLOAD_TIMEOUT_MS,
  type NodeConfig,
  parseNodeConfig,
} from '@tally/node'
import { z } from 'zod'

const ms = z
  .number()
  .int()
  .positive()
  .max(2 ** 31 - 1)

/** The arbiter's own settings (the `arbiter:` key of the config file). */
export const arbiterSettingsSchema = z.strictObject({
  /** Which cases to hear: first-instance disputes, appeals, or both (the contract still decides whom it names). Default both. */
  mode: z.enum(['first-instance', 'appeal', 'both']).default('both'),
  limits: z
    .strictObject({
      /** Largest record accepted, in bytes. Default 64 MiB. */
      maxRecordBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024 * 1024)
        .default(ARBITRATE_MAX_RECORD_BYTES),
      /** Cases received or decided at once; more are refused with `busy`. Default 4. */
      maxConcurrentCases: z.number().int().min(1).max(64).default(ARBITRATE_MAX_CONCURRENT_CASES),
      /** Sustained cases per second per peer, and the burst. Default 0.5/s, burst 10. */
      casesPerSecond: z.number().positive().max(1000).default(ARBITRATE_CASE_RATE.perSecond),
      caseBurst: z.number().int().min(1).max(10_000).default(ARBITRATE_CASE_RATE.burst),
      /** Bound on receiving one record. Default 120 s. */
      uploadTimeoutMs: ms.default(ARBITRATE_UPLOAD_TIMEOUT_MS),
    })
    .prefault({}),
})
export type ArbiterSettings = z.output<typeof arbiterSettingsSchema>

const fileSchema = z.looseObject({
  arbiter: arbiterSettingsSchema.prefault({}),
  control: z
    .strictObject({
      /** Port of the control API and /metrics on 127.0.0.1; 0 picks a free one (written to control.json). Default 0. */
      port: z.number().int().min(0).max(65535).default(0),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
      /** Short human lines instead of JSON (for a terminal). Default false. */
      pretty: z.boolean().default(false),
    })
    .prefault({}),
})

export interface ArbiterConfig {
  settings: ArbiterSettings
  /** Node configuration, validated; `dataDir` resolved against the config file's directory. */
  node: NodeConfig & { dataDir: string }
  dataDir: string
  control: { port: number }
  log: { level: 'debug' | 'info' | 'warn' | 'error'; pretty: boolean }
}

/**
 * Read a `tally-arbiter` config file (YAML or JSON): the keys `arbiter`,
 * `control` and `log` are the daemon's; every other key is node
 * configuration (dataDir, listen, bootstrap, network …) for @tally/node.
 * Throws `ConfigError` naming the file and the bad field.
 */
export async function loadArbiterConfig(file: string): Promise<ArbiterConfig> {
  const parsed = await loadConfigFile(file, fileSchema, 'arbiter')
  const { arbiter, control, log, ...nodeRaw } = parsed
  const dataDir = nodeRaw['dataDir']
  if (typeof dataDir !== 'string' || dataDir.length === 0) {
    throw new ConfigError(`invalid arbiter config ${file}: dataDir: required (identity key, cases)`, { file })
  }
  const node = { ...(nodeRaw as NodeConfig), dataDir: relativeTo(file, dataDir) }
  try {
    parseNodeConfig(node)
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (in ${file})`, { file })
  }
  return { settings: arbiter, node, dataDir: node.dataDir, control, log }
}

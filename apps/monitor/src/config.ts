import { isAbsolute, resolve } from 'node:path'
import { parseWith, SchemaError, schema, trustPolicySchema } from '@tally/core'
import { hardwareClass, type NodeConfig, PROBE_COMPUTE_RATE, PROBE_MAX_N } from '@tally/node'
import { z } from 'zod'

/** Providers answer PROBE_COMPUTE_RATE (one challenge per 10 s per monitor); a faster schedule would only collect refusals. */
export const MIN_COMPUTE_PERIOD_MS = Math.ceil(1000 / PROBE_COMPUTE_RATE.perSecond)

const ms = z
  .number()
  .int()
  .positive()
  .max(2 ** 31 - 1)

const providerSchema = z.strictObject({
  peer: schema.peerId,
  /** Where to dial it; empty: whatever the peer store learns (DHT, identify). */
  addrs: z.array(z.string().max(512)).max(16).default([]),
  /** The class it claims, for judging compute durations (e.g. gpu.h100). Unknown: only correctness is checked. */
  hardwareClass: hardwareClass.optional(),
})

/** The monitor's own settings; every other top-level key of the file is node configuration. */
export const monitorSettingsSchema = z.strictObject({
  watch: z
    .strictObject({
      /** Providers to watch, by peer id and addresses. */
      providers: z.array(providerSchema).max(1024).default([]),
      /** Or a capability query: providers announcing it in the DHT are found and watched, refreshed periodically. */
      query: z
        .strictObject({
          hardwareClass: hardwareClass.optional(),
          jurisdiction: schema.jurisdiction.optional(),
          /** Re-run the query this often. Default 5 min. */
          refreshMs: ms.default(5 * 60_000),
          /** At most this many providers from the query. Default 20. */
          limit: z.number().int().min(1).max(1024).default(20),
          /** Whose credentials in offers to accept. Default: any issuer. */
          trust: trustPolicySchema.optional(),
        })
        .refine((q) => q.hardwareClass !== undefined || q.jurisdiction !== undefined, { message: 'a query needs a hardwareClass, a jurisdiction or both' })
        .optional(),
    })
    .refine((w) => w.providers.length > 0 || w.query !== undefined, { message: 'watch needs providers, a query or both' }),
  probe: z
    .strictObject({
      /** One probe (dial, ping, identity challenge) per provider this often. Default 1 s. */
      intervalMs: ms.default(1_000),
      /** Bound on one probe. Default 2 s. */
      timeoutMs: ms.default(2_000),
      /** Send the signed identity challenge with each probe. Default true. */
      identity: z.boolean().default(true),
      /** Providers probed at once. Default 16. */
      concurrency: z.number().int().min(1).max(256).default(16),
    })
    .prefault({}),
  window: z
    .strictObject({
      /** One observation per provider per window; windows are aligned to multiples of this. Default 10 s. */
      lengthMs: ms.min(1_000).default(10_000),
    })
    .prefault({}),
  compute: z
    .strictObject({
      /** A compute challenge every this many windows; 0 never. Default 6. */
      everyWindows: z.number().int().min(0).max(100_000).default(6),
      /** Matrix size (8..512); use 512 for GPU classes. Default 128. */
      n: z.number().int().min(8).max(PROBE_MAX_N).default(128),
      /** Bound on one compute exchange. Default 30 s. */
      timeoutMs: ms.default(30_000),
    })
    .prefault({}),
  /** Control API, Prometheus /metrics on 127.0.0.1; port 0 picks one (written to <dataDir>/control.json). */
  control: z.strictObject({ port: z.number().int().min(0).max(65535).default(0) }).prefault({}),
  /** DAG-CBOR file of a credential presented by this monitor (its CID goes into each observation). */
  credential: z.string().min(1).optional(),
})
export type MonitorSettings = z.output<typeof monitorSettingsSchema>
export type WatchedProvider = z.output<typeof providerSchema>

const SETTINGS_KEYS = new Set(Object.keys(monitorSettingsSchema.shape))

export interface MonitorFileConfig {
  settings: MonitorSettings
  /** Node configuration (dataDir resolved against the file's directory). */
  node: NodeConfig & { dataDir: string }
  /** The credential path resolved against the file's directory. */
  credentialFile: string | undefined
}

/**
 * Split a parsed config file into monitor settings (validated) and node
 * configuration (validated by createTallyNode). Relative paths are taken
 * from `baseDir`, the config file's directory.
 */
export function parseMonitorConfig(raw: unknown, baseDir: string): MonitorFileConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SchemaError('invalid monitor config: expected a mapping')
  const settingsRaw: Record<string, unknown> = {}
  const nodeRaw: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(raw)) (SETTINGS_KEYS.has(k) ? settingsRaw : nodeRaw)[k] = v
  const settings = parseWith(monitorSettingsSchema, settingsRaw, 'monitor config')
  const period = settings.compute.everyWindows * settings.window.lengthMs
  if (settings.compute.everyWindows > 0 && period < MIN_COMPUTE_PERIOD_MS) {
    throw new SchemaError(
      `invalid monitor config: compute: everyWindows x window.lengthMs is ${period} ms; providers answer one challenge per ${MIN_COMPUTE_PERIOD_MS} ms per monitor`,
      { path: 'compute.everyWindows' },
    )
  }
  const dataDir = nodeRaw['dataDir']
  if (typeof dataDir !== 'string' || dataDir.length === 0)
    throw new SchemaError('invalid monitor config: dataDir: required (identity key, store)', { path: 'dataDir' })
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p))
  return {
    settings,
    node: { ...(nodeRaw as NodeConfig), dataDir: at(dataDir) },
    credentialFile: settings.credential === undefined ? undefined : at(settings.credential),
  }
}

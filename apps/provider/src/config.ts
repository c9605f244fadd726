import { schema } from '@tally/core'
import { ConfigError, loadConfigFile, relativeTo } from '@tally/daemon'
import { type NodeConfig, parseNodeConfig } from '@tally/node'
import { z } from 'zod'

const money = z.union([
  schema.money,
  z
    .string()
    .regex(/^\d{1,15}\s*[A-Z][A-Z0-9.-]{1,15}$/, 'expected minor units then an asset, e.g. 250USD')
    .transform((s) => {
      const m = /^(\d+)\s*(.+)$/.exec(s)!
      return { amount: Number(m[1]), asset: m[2]! }
    }),
])

/** The provider's own settings (the `provider:` key of the config file). */
export const providerSettingsSchema = z.strictObject({
  offer: z.strictObject({
    jurisdiction: schema.jurisdiction,
    /** `auto` derives the class from nvidia-smi or procfs. */
    hardware: z.strictObject({ class: z.string().default('auto'), count: z.number().int().min(1).default(1) }).prefault({}),
    pricePerEpoch: money,
    epochMs: z.number().int().min(100),
    sla: z
      .strictObject({ availabilityBp: z.number().int().min(0).max(10_000).default(9_500), latencyP95Us: z.number().int().min(0).default(250_000) })
      .prefault({}),
    /** Monitors this provider accepts in a contract. */
    monitors: z.array(schema.peerId).default([]),
    /** Arbiters this provider accepts in a contract. */
    arbiters: z.array(schema.peerId).min(1),
    rails: z.array(z.enum(['ledger', 'command', 'http'])).default(['ledger']),
    validForMs: z
      .number()
      .int()
      .min(60_000)
      .default(24 * 3600_000),
  }),
  /** Workload directories, relative to the data directory. */
  workDir: z.string().default('work'),
  /** Credential files presented in the offer (DAG-CBOR, from `tally credential issue`). */
  credentials: z.array(z.string()).default([]),
  /** Appeal first-instance rulings that pay nothing for epochs this provider's workload ran (when the contract names an appeal arbiter). */
  appealWhenWorkloadRan: z.boolean().default(false),
  /** Peers to remember at start (arbiters, monitors): multiaddrs ending in /p2p/<id>. */
  peers: z.array(z.string()).default([]),
})
export type ProviderSettings = z.output<typeof providerSettingsSchema>

const fileSchema = z.looseObject({
  provider: providerSettingsSchema,
  control: z.strictObject({ port: z.number().int().min(0).max(65535).default(0) }).prefault({}),
  log: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info'), pretty: z.boolean().default(false) }).prefault({}),
})

export interface ProviderConfig {
  settings: ProviderSettings
  node: NodeConfig & { dataDir: string }
  dataDir: string
  control: { port: number }
  log: { level: 'debug' | 'info' | 'warn' | 'error'; pretty: boolean }
  file: string
}

/**
 * Read a `tally-provider` config file: `provider`, `control` and `log` are
 * the daemon's keys; every other key is node configuration (dataDir,
 * listen, bootstrap, network …), as for the monitor and arbiter daemons.
 */
export async function loadProviderConfig(file: string): Promise<ProviderConfig> {
  const { provider, control, log, ...nodeRaw } = await loadConfigFile(file, fileSchema, 'provider')
  const dataDir = nodeRaw['dataDir']
  if (typeof dataDir !== 'string' || dataDir.length === 0) throw new ConfigError(`invalid provider config ${file}: dataDir: required`, { file })
  const node = { ...(nodeRaw as NodeConfig), dataDir: relativeTo(file, dataDir) }
  try {
    parseNodeConfig(node)
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (in ${file})`, { file })
  }
  for (const [i, c] of provider.credentials.entries()) provider.credentials[i] = relativeTo(file, c)
  return { settings: provider, node, dataDir: node.dataDir, control, log, file }
}

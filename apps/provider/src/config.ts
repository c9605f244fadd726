import { schema } from '@tally/core'
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

/** Network settings shared by every daemon's config file. */
export const networkSection = z.strictObject({
  listen: z.array(z.string()).min(1).default(['/ip4/0.0.0.0/tcp/4001']),
  announce: z.array(z.string()).optional(),
  bootstrap: z.array(z.string()).default([]),
  /** Loopback/LAN networks: keep private addresses, exempt them from rate limits and gossip's IP penalty. */
  local: z.boolean().default(false),
  mdns: z.boolean().default(false),
})

export const daemonSection = z.strictObject({
  /** Control API, metrics and explorer on 127.0.0.1; 0 picks a free port. */
  controlPort: z.number().int().min(0).max(65535).default(0),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  logPretty: z.boolean().default(false),
})

/** tally-provider's config file (YAML). Relative paths are relative to the file. */
export const providerConfigSchema = z.strictObject({
  dataDir: z.string().min(1),
  network: networkSection.prefault({}),
  daemon: daemonSection.prefault({}),
  offer: z.strictObject({
    jurisdiction: schema.jurisdiction,
    /** `auto` derives the class from nvidia-smi or procfs. */
    hardware: z.strictObject({ class: z.string().default('auto'), count: z.number().int().min(1).default(1) }).prefault({}),
    pricePerEpoch: money,
    epochMs: z.number().int().min(100),
    sla: z.strictObject({ availabilityBp: z.number().int().min(0).max(10_000).default(9_500), latencyP95Us: z.number().int().min(0).default(250_000) }).prefault({}),
    monitors: z.array(schema.peerId).default([]),
    arbiters: z.array(schema.peerId).min(1),
    rails: z.array(z.enum(['ledger', 'command', 'http'])).default(['ledger']),
    validForMs: z.number().int().min(60_000).default(24 * 3600_000),
  }),
  executor: z.strictObject({ workDir: z.string().default('work') }).prefault({}),
  /** Credential files to present in the offer (issued by others, or self-issued). */
  credentials: z.array(z.string()).default([]),
  /** Peers to remember at start (arbiters, monitors), multiaddrs ending in /p2p/<id>. */
  peers: z.array(z.string()).default([]),
})
export type ProviderConfig = z.infer<typeof providerConfigSchema>

import { z } from 'zod'
import { CommandRail } from './command.ts'
import { HttpRail } from './http.ts'
import { LedgerRail } from './ledger.ts'
import { parseWith } from '@tally/core'
import type { Rail } from './rail.ts'

/** A rail as written in a node's configuration file. */
export const railConfigSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('ledger') }),
  z.strictObject({
    kind: z.literal('command'),
    command: z.array(z.string().min(1)).min(1),
    timeoutMs: z.number().int().positive(),
    env: z.record(z.string(), z.string()).optional(),
    name: z.string().optional(),
  }),
  z.strictObject({
    kind: z.literal('http'),
    url: z.string(),
    timeoutMs: z.number().int().positive(),
    headers: z.record(z.string(), z.string()).optional(),
    retries: z.number().int().min(0).max(20).optional(),
    backoffMs: z.number().int().min(0).optional(),
    name: z.string().optional(),
  }),
])
export type RailConfig = z.infer<typeof railConfigSchema>

/** Build a rail from configuration; throws `SchemaError` or `RailConfigError`. */
export function railFromConfig(value: unknown): Rail {
  const cfg = parseWith(railConfigSchema, value, 'rail config')
  if (cfg.kind === 'ledger') return new LedgerRail()
  // Absent optionals are left out rather than set to undefined (exactOptionalPropertyTypes).
  const common = { timeoutMs: cfg.timeoutMs, ...(cfg.name !== undefined ? { name: cfg.name } : {}) }
  if (cfg.kind === 'command') return new CommandRail({ ...common, command: cfg.command, ...(cfg.env !== undefined ? { env: cfg.env } : {}) })
  return new HttpRail({
    ...common,
    url: cfg.url,
    ...(cfg.headers !== undefined ? { headers: cfg.headers } : {}),
    ...(cfg.retries !== undefined ? { retries: cfg.retries } : {}),
    ...(cfg.backoffMs !== undefined ? { backoffMs: cfg.backoffMs } : {}),
  })
}

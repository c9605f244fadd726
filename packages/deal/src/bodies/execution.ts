import { z } from 'zod'
import { schema } from '@tally/core'
import { bp } from '../money.ts'

/** Provider bonds collateral (adds to what it bonded before). */
export const collateralBodySchema = z.strictObject({ deal: schema.cid, amount: schema.money })

/** Provider's signed hardware attestation (see attestation.ts), before the first usage. */
export const attestationEntryBodySchema = z.strictObject({ deal: schema.cid, attestation: z.unknown() })

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/

function isContainedRelativePath(p: string): boolean {
  if (p === '' || p.length > 256 || p.startsWith('/') || p.includes('\0')) return false
  return p.split('/').every((seg) => seg !== '..')
}

/** The workload and its envelope, field for field @tally/executor's manifest. */
export const workloadSchema = z.strictObject({
  command: z.array(z.string().min(1).max(4096)).min(1).max(256),
  env: z
    .record(z.string().regex(ENV_NAME, 'expected an environment variable name'), z.string().max(32 * 1024))
    .refine((env) => Object.keys(env).length <= 256, 'at most 256 environment variables'),
  cwd: z.string().refine(isContainedRelativePath, 'expected a relative path inside the work directory').optional(),
  limits: z.strictObject({ wallMs: schema.uint.min(1), cpuMs: schema.uint.min(1).optional(), memoryBytes: schema.uint.min(1).optional() }),
  gpu: z
    .strictObject({
      count: schema.uint.min(1).max(64),
      model: z
        .string()
        .regex(/^[a-z0-9]{1,32}$/)
        .optional(),
    })
    .optional(),
  image: z.string().max(512).optional(),
})
export type Workload = z.infer<typeof workloadSchema>

/** Consumer's workload manifest, before the first usage. */
export const manifestBodySchema = z.strictObject({ deal: schema.cid, workload: workloadSchema })

/** Provider's metered usage for one epoch, from the executor that ran the workload. */
export const usageBodySchema = z.strictObject({
  deal: schema.cid,
  epoch: schema.uint,
  /** The availability the provider claims it delivered over the epoch. */
  claimBp: bp,
  metered: z.strictObject({
    wallMs: schema.uint,
    cpuMs: schema.uint,
    maxRssBytes: schema.uint,
    /** GPU busy time summed over assigned GPUs; null without GPU metering. */
    gpuMs: schema.uint.nullable(),
  }),
  /** How the workload ended, if it ended in this epoch. */
  exit: z
    .strictObject({
      code: z.number().int().min(-2147483648).max(2147483647).nullable(),
      signal: z.string().max(32).nullable(),
      reason: z.enum(['exit', 'wall', 'cpu', 'memory', 'stopped']),
    })
    .nullable(),
  /** Chained sha-256 of the workload's logs after this epoch (hex). */
  logsHash: z.string().regex(/^[0-9a-f]{64}$/),
})

/** A monitor's signed observation attached by either party. */
export const observationEntryBodySchema = z.strictObject({ deal: schema.cid, observation: z.unknown() })

export type CollateralBody = z.infer<typeof collateralBodySchema>
export type ManifestBody = z.infer<typeof manifestBodySchema>
export type UsageBody = z.infer<typeof usageBodySchema>

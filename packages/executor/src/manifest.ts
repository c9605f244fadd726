import { parseWith, schema } from '@tally/core'
import { z } from 'zod'

/** POSIX-ish environment variable names. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
/** Bounds that keep a manifest (an entry body) small. */
export const MANIFEST_LIMITS = { args: 256, argBytes: 4096, envVars: 256, envValueBytes: 32 * 1024 } as const

/** True for a relative path that stays inside the directory it is resolved against. */
export function isContainedRelativePath(p: string): boolean {
  if (p === '' || p.length > 256 || p.startsWith('/') || p.includes('\0')) return false
  return p.split('/').every((seg) => seg !== '..')
}

const limitsSchema = z.strictObject({
  /** Wall-clock limit; SIGTERM at the limit, SIGKILL after the grace period. */
  wallMs: schema.uint.min(1),
  /** CPU time limit summed over the whole process tree. */
  cpuMs: schema.uint.min(1).optional(),
  /** Resident memory limit summed over the whole process tree. */
  memoryBytes: schema.uint.min(1).optional(),
})

/**
 * The consumer's workload as recorded in the `manifest` entry: what runs
 * and its envelope. `image` is informational (this executor runs the
 * command directly on the host).
 */
export const manifestSchema = z.strictObject({
  command: z.array(z.string().min(1).max(MANIFEST_LIMITS.argBytes)).min(1).max(MANIFEST_LIMITS.args),
  env: z
    .record(z.string().regex(ENV_NAME, 'expected an environment variable name'), z.string().max(MANIFEST_LIMITS.envValueBytes))
    .refine((env) => Object.keys(env).length <= MANIFEST_LIMITS.envVars, `at most ${MANIFEST_LIMITS.envVars} environment variables`),
  cwd: z.string().refine(isContainedRelativePath, 'expected a relative path inside the work directory').optional(),
  limits: limitsSchema,
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

export type TallyManifest = z.infer<typeof manifestSchema>
export type ManifestLimits = z.infer<typeof limitsSchema>

/** Decode an untrusted manifest (from JSON, YAML or a log entry body); throws `SchemaError`. */
export function decodeManifest(value: unknown): TallyManifest {
  return parseWith(manifestSchema, value, 'manifest')
}

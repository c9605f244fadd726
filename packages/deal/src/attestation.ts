import { z } from 'zod'
import { type Identity, type SignedDocument, schema, signDocument, verifyDocument } from '@tally/core'

/** Document type of the provider's signed hardware attestation. */
export const ATTESTATION_TYPE = 'attestation'
/** `gpu.<model>` or `cpu.<arch>`, as @tally/executor derives it from real probes. */
export const HARDWARE_CLASS = /^(gpu|cpu)\.[a-z0-9_-]{1,32}$/
export const hardwareClass = z.string().regex(HARDWARE_CLASS, 'expected a hardware class such as gpu.h100 or cpu.x86_64')
/** Where each fact came from: a real probe, or only the operator's word. */
export const factSource = z.enum(['nvidia-smi', 'procfs', 'declared'])
export type FactSource = z.infer<typeof factSource>

const shortText = schema.shortText

/**
 * The attestation body. Field for field the shape @tally/executor's
 * `signAttestation` produces from `nvidia-smi` and procfs, so the reducer
 * can check it without depending on the executor's I/O code.
 */
export const attestationBodySchema = z.strictObject({
  v: z.literal(1),
  time: schema.timeMs,
  facts: z.strictObject({
    hardwareClass,
    classSource: factSource,
    gpus: z
      .array(
        z.strictObject({
          name: shortText,
          model: shortText,
          uuid: shortText,
          memoryBytes: schema.uint,
          driverVersion: shortText,
          pciBusId: shortText,
          source: factSource,
        }),
      )
      .max(64),
    cpu: z.strictObject({ model: shortText, logicalCores: schema.uint, arch: shortText, source: factSource }),
    memory: z.strictObject({ totalBytes: schema.uint, source: factSource }),
    kernel: z.strictObject({ version: shortText, source: factSource }),
    probedAt: schema.timeMs,
    notes: z.array(shortText).max(16),
  }),
})
export type AttestationBody = z.infer<typeof attestationBodySchema>
export type Attestation = SignedDocument<AttestationBody>

export function decodeAttestation(value: unknown): Attestation {
  return verifyDocument(value, ATTESTATION_TYPE, attestationBodySchema)
}

/** Sign an attestation body as the provider (tests and tools; the executor has its own from probes). */
export function signAttestationBody(provider: Identity, body: AttestationBody): Attestation {
  return signDocument(provider, ATTESTATION_TYPE, body)
}

/** The units of the attested class the contract counts: GPUs for gpu.*, logical cores for cpu.*. */
export function attestedUnits(body: AttestationBody): number {
  return body.facts.hardwareClass.startsWith('gpu.') ? body.facts.gpus.length : body.facts.cpu.logicalCores
}

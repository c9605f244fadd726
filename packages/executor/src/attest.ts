import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Identity, type SignedDocument, signDocument, verifyDocument } from '@tally/core'
import { ATTESTATION_TYPE, type AttestationBody, attestationBodySchema } from '@tally/deal'
import { AttestationError } from './errors.ts'
import {
  type CpuFact,
  type FactSource,
  type GpuFact,
  gpuModelSlug,
  type HardwareFacts,
  hardwareClassOf,
  NVIDIA_SMI_GPU_QUERY,
  parseCpuinfo,
  parseKernelVersion,
  parseMeminfoTotal,
  parseNvidiaSmiGpus,
} from './hardware.ts'

/** What the operator states where a probe is unavailable; every such fact is marked `declared`. */
export interface DeclaredHardware {
  gpus?: Array<{ name: string; memoryBytes?: number; uuid?: string; driverVersion?: string; pciBusId?: string }>
  cpu?: { model: string; logicalCores: number; arch: string }
  memoryBytes?: number
  kernel?: string
}

export interface AttestOptions {
  /** Command to run for GPU facts. Default `nvidia-smi`. */
  nvidiaSmi?: string
  /** Root of procfs. Default `/proc`. */
  procRoot?: string
  /** Bound on each probe. Default 10 s (nvidia-smi can take seconds on a cold driver). */
  timeoutMs?: number
  declared?: DeclaredHardware
  now?: () => number
}

/** Run a probe; resolves stdout, or null when the tool is absent, fails or times out. */
export function runProbe(command: string, args: readonly string[], timeoutMs: number): Promise<{ ok: true; stdout: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 1024 * 1024, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout) => {
      if (err) resolve({ ok: false, error: `${command}: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message.split('\n')[0] ?? ''}`.slice(0, 200) })
      else resolve({ ok: true, stdout: String(stdout) })
    })
  })
}

/** GPUs reported by a working nvidia-smi; [] where it is absent or broken. */
export async function probeNvidiaGpus(nvidiaSmi = 'nvidia-smi', timeoutMs = 10_000): Promise<{ gpus: GpuFact[]; error: string | null }> {
  const res = await runProbe(nvidiaSmi, NVIDIA_SMI_GPU_QUERY, timeoutMs)
  if (!res.ok) return { gpus: [], error: res.error }
  try {
    return { gpus: parseNvidiaSmiGpus(res.stdout), error: null }
  } catch (err) {
    return { gpus: [], error: (err as Error).message.slice(0, 200) }
  }
}

/** True where nvidia-smi exists, runs, and lists at least one GPU. */
export async function hasNvidiaGpu(nvidiaSmi = 'nvidia-smi'): Promise<boolean> {
  return (await probeNvidiaGpus(nvidiaSmi)).gpus.length > 0
}

async function readProc(procRoot: string, name: string): Promise<string | null> {
  try {
    return await readFile(join(procRoot, name), 'utf8')
  } catch {
    return null
  }
}

/**
 * Probe this machine: GPUs from nvidia-smi where it works, CPU, memory and
 * kernel from procfs. A fact that no probe could establish falls back to
 * the operator's declaration and is marked `declared`; with neither, it
 * throws `AttestationError`. Probe failures are kept in `notes`.
 */
export async function attestHardware(opts: AttestOptions = {}): Promise<HardwareFacts & { notes: string[] }> {
  const procRoot = opts.procRoot ?? '/proc'
  const timeoutMs = opts.timeoutMs ?? 10_000
  const declared = opts.declared ?? {}
  const notes: string[] = []
  const [gpuProbe, cpuinfo, meminfo, version] = await Promise.all([
    probeNvidiaGpus(opts.nvidiaSmi ?? 'nvidia-smi', timeoutMs),
    readProc(procRoot, 'cpuinfo'),
    readProc(procRoot, 'meminfo'),
    readProc(procRoot, 'version'),
  ])

  let gpus = gpuProbe.gpus
  if (gpuProbe.error !== null) notes.push(gpuProbe.error)
  if (gpus.length === 0 && declared.gpus !== undefined && declared.gpus.length > 0) {
    gpus = declared.gpus.map((g) => ({
      name: g.name,
      model: gpuModelSlug(g.name),
      uuid: g.uuid ?? '',
      memoryBytes: g.memoryBytes ?? 0,
      driverVersion: g.driverVersion ?? '',
      pciBusId: g.pciBusId ?? '',
      source: 'declared' as const,
    }))
  }

  let cpu: CpuFact | undefined
  if (cpuinfo !== null) {
    try {
      cpu = { ...parseCpuinfo(cpuinfo), source: 'procfs' }
    } catch (err) {
      notes.push(`cpuinfo: ${(err as Error).message}`)
    }
  } else notes.push(`cannot read ${procRoot}/cpuinfo`)
  if (cpu === undefined && declared.cpu !== undefined) cpu = { ...declared.cpu, source: 'declared' }
  if (cpu === undefined) throw new AttestationError('cannot establish CPU facts: procfs unreadable and none declared', { notes })

  const memory = probeOr(meminfo, parseMeminfoTotal, declared.memoryBytes, 'meminfo', notes)
  const kernel = probeOr(version, parseKernelVersion, declared.kernel, 'version', notes)
  const classSource: FactSource = gpus.length > 0 ? (gpus.every((g) => g.source === 'nvidia-smi') ? 'nvidia-smi' : 'declared') : cpu.source
  return {
    hardwareClass: hardwareClassOf(gpus, cpu),
    classSource,
    gpus,
    cpu,
    memory: { totalBytes: memory.value, source: memory.source },
    kernel: { version: kernel.value, source: kernel.source },
    probedAt: (opts.now ?? Date.now)(),
    notes,
  }
}

function probeOr<T>(text: string | null, parse: (t: string) => T, declared: T | undefined, what: string, notes: string[]): { value: T; source: FactSource } {
  if (text !== null) {
    try {
      return { value: parse(text), source: 'procfs' }
    } catch (err) {
      notes.push(`${what}: ${(err as Error).message}`)
    }
  } else notes.push(`cannot read ${what}`)
  if (declared !== undefined) return { value: declared, source: 'declared' }
  throw new AttestationError(`cannot establish ${what} facts: probe failed and none declared`, { notes })
}

// The attestation's schema is the deal package's, so what the executor signs is exactly what the reducer accepts.
export { attestationBodySchema, type AttestationBody }
export const ATTESTATION_DOCUMENT_TYPE = ATTESTATION_TYPE

/**
 * The attestation as a signed document by the provider. Probe notes are
 * cut to what the schema admits so a chatty driver cannot bloat the log.
 */
export function signAttestation(identity: Identity, facts: HardwareFacts & { notes?: string[] }, now: number): SignedDocument<AttestationBody> {
  const body: AttestationBody = {
    v: 1,
    time: now,
    facts: {
      hardwareClass: facts.hardwareClass,
      classSource: facts.classSource,
      gpus: facts.gpus.slice(0, 64).map((g) => ({ ...g })),
      cpu: { ...facts.cpu },
      memory: { ...facts.memory },
      kernel: { ...facts.kernel },
      probedAt: facts.probedAt,
      notes: (facts.notes ?? []).slice(0, 16).map((n) => n.slice(0, 256)),
    },
  }
  return signDocument(identity, ATTESTATION_DOCUMENT_TYPE, body)
}

/** Check an untrusted attestation document: shape, body schema and the provider's signature. */
export function verifyAttestation(value: unknown): SignedDocument<AttestationBody> {
  return verifyDocument(value, ATTESTATION_DOCUMENT_TYPE, attestationBodySchema)
}

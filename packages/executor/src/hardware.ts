import { ProbeParseError } from './errors.ts'

/**
 * Pure parsers for hardware probes: the text that `nvidia-smi` and procfs
 * print goes in, typed facts come out. No I/O here (see attest.ts), so each
 * parser is tested on recorded sample outputs.
 */

/** Where a fact came from: a real probe, or the operator's word alone. */
export type FactSource = 'nvidia-smi' | 'procfs' | 'declared'

export interface GpuFact {
  /** Marketing name as the driver reports it, e.g. `NVIDIA H100 80GB HBM3`. */
  name: string
  /** Normalised model slug, e.g. `h100`, `a100`, `rtx4090` (Akash SDL spelling). */
  model: string
  uuid: string
  memoryBytes: number
  driverVersion: string
  pciBusId: string
  source: FactSource
}

export interface CpuFact {
  model: string
  logicalCores: number
  arch: string
  source: FactSource
}

export interface HardwareFacts {
  /** `gpu.<model>` when GPUs are present, `cpu.<arch>` otherwise. */
  hardwareClass: string
  /** Source of the facts the class was derived from. */
  classSource: FactSource
  gpus: GpuFact[]
  cpu: CpuFact
  memory: { totalBytes: number; source: FactSource }
  kernel: { version: string; source: FactSource }
  /** When the probes ran (ms since the Unix epoch). */
  probedAt: number
}

/** The exact nvidia-smi query the attestation parses. */
export const NVIDIA_SMI_GPU_QUERY = ['--query-gpu=name,uuid,memory.total,driver_version,pci.bus_id', '--format=csv,noheader'] as const

const MEMORY_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, kB: 1024, KB: 1024 }

/** `81559 MiB` or `81559` (with `nounits`, which nvidia-smi reports in MiB). */
export function parseNvidiaMemory(text: string): number {
  const m = /^(\d+)(?:\s*(B|KiB|MiB|GiB))?$/.exec(text.trim())
  if (m === null) throw new ProbeParseError(`unparseable GPU memory ${JSON.stringify(text)}`)
  return Number(m[1]) * (MEMORY_UNITS[m[2] ?? 'MiB'] ?? 1)
}

const VENDOR_WORDS = new Set(['nvidia', 'geforce', 'tesla', 'quadro'])
const JOIN_NEXT = new Set(['rtx', 'gtx', 'titan'])

/**
 * Model slug from a GPU name, in the spelling Akash SDL uses for
 * `gpu.attributes.vendor.nvidia[].model`: `NVIDIA H100 80GB HBM3` → `h100`,
 * `NVIDIA A100-SXM4-80GB` → `a100`, `NVIDIA GeForce RTX 4090` → `rtx4090`,
 * `NVIDIA RTX A6000` → `rtxa6000`, `Tesla V100-SXM2-16GB` → `v100`.
 */
export function gpuModelSlug(name: string): string {
  const tokens = name
    .toLowerCase()
    .split(/[\s-]+/)
    .filter((t) => t !== '' && !VENDOR_WORDS.has(t))
  const first = tokens[0]
  if (first === undefined) return 'unknown'
  const second = tokens[1]
  const slug = JOIN_NEXT.has(first) && second !== undefined && !/^\d+gb$/.test(second) ? first + second : first
  const clean = slug.replace(/[^a-z0-9]/g, '')
  return clean === '' ? 'unknown' : clean
}

/**
 * Parse `nvidia-smi --query-gpu=name,uuid,memory.total,driver_version,pci.bus_id
 * --format=csv,noheader[,nounits]`. One GPU per non-empty line. Throws
 * `ProbeParseError` on anything else (e.g. the "NVIDIA-SMI has failed"
 * message), so a broken driver is never mistaken for zero GPUs.
 */
export function parseNvidiaSmiGpus(csv: string): GpuFact[] {
  const gpus: GpuFact[] = []
  for (const raw of csv.split('\n')) {
    const line = raw.trim()
    if (line === '') continue
    const cells = line.split(',').map((c) => c.trim())
    if (cells.length !== 5) throw new ProbeParseError(`expected 5 CSV fields from nvidia-smi, got ${cells.length}: ${JSON.stringify(line.slice(0, 120))}`)
    const [name, uuid, memory, driverVersion, pciBusId] = cells as [string, string, string, string, string]
    if (!/^GPU-[0-9a-fA-F-]{8,}$/.test(uuid)) throw new ProbeParseError(`unexpected GPU uuid ${JSON.stringify(uuid)}`)
    if (!/^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$/.test(pciBusId))
      throw new ProbeParseError(`unexpected PCI bus id ${JSON.stringify(pciBusId)}`)
    gpus.push({ name, model: gpuModelSlug(name), uuid, memoryBytes: parseNvidiaMemory(memory), driverVersion, pciBusId, source: 'nvidia-smi' })
  }
  return gpus
}

/** Per-GPU utilisation sample from `--query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits`. */
export interface GpuUtilisation {
  index: number
  utilPercent: number
  memoryUsedBytes: number
}

export const NVIDIA_SMI_UTIL_QUERY = ['--query-gpu=index,utilization.gpu,memory.used', '--format=csv,noheader,nounits'] as const

export function parseNvidiaSmiUtilisation(csv: string): GpuUtilisation[] {
  const out: GpuUtilisation[] = []
  for (const raw of csv.split('\n')) {
    const line = raw.trim()
    if (line === '') continue
    const cells = line.split(',').map((c) => c.trim())
    if (cells.length !== 3) throw new ProbeParseError(`expected 3 CSV fields from nvidia-smi, got ${cells.length}`)
    const [index, util, mem] = cells.map((c) => (/^\d+$/.test(c) ? Number(c) : Number.NaN)) as [number, number, number]
    if (Number.isNaN(index)) throw new ProbeParseError(`unexpected GPU index ${JSON.stringify(cells[0])}`)
    // `[N/A]` appears for utilisation on some virtualised GPUs; count it as idle rather than failing the run.
    out.push({ index, utilPercent: Number.isNaN(util) ? 0 : Math.min(util, 100), memoryUsedBytes: Number.isNaN(mem) ? 0 : mem * 1024 ** 2 })
  }
  return out
}

/** CPU facts from /proc/cpuinfo (x86 and aarch64 layouts). */
export function parseCpuinfo(text: string): Omit<CpuFact, 'source'> {
  let logicalCores = 0
  let model: string | undefined
  let implementer: string | undefined
  let part: string | undefined
  let flags: string[] = []
  let armArch: string | undefined
  for (const line of text.split('\n')) {
    const idx = line.indexOf(':')
    if (idx < 0) continue
    const key = line.slice(0, idx).trim()
    const value = line.slice(idx + 1).trim()
    if (key === 'processor' && /^\d+$/.test(value)) logicalCores++
    else if (key === 'model name' && model === undefined) model = value
    else if (key === 'flags' && flags.length === 0) flags = value.split(/\s+/)
    else if (key === 'CPU implementer' && implementer === undefined) implementer = value
    else if (key === 'CPU part' && part === undefined) part = value
    else if (key === 'CPU architecture' && armArch === undefined) armArch = value
  }
  if (logicalCores === 0) throw new ProbeParseError('no processor entries in /proc/cpuinfo')
  let arch = 'unknown'
  if (flags.length > 0) arch = flags.includes('lm') ? 'x86_64' : 'i686'
  else if (armArch !== undefined) arch = armArch === '8' || armArch === 'AArch64' ? 'aarch64' : `armv${armArch}`
  if (model === undefined) model = implementer !== undefined ? `ARM implementer ${implementer} part ${part ?? '?'}` : 'unknown'
  return { model, logicalCores, arch }
}

/** MemTotal from /proc/meminfo, in bytes. */
export function parseMeminfoTotal(text: string): number {
  const m = /^MemTotal:\s+(\d+)\s*kB\s*$/m.exec(text)
  if (m === null) throw new ProbeParseError('no MemTotal in /proc/meminfo')
  return Number(m[1]) * 1024
}

/** Kernel release from /proc/version (`Linux version 6.1.0-18-amd64 (…`). */
export function parseKernelVersion(text: string): string {
  const m = /^Linux version (\S+)/.exec(text.trim())
  if (m === null) throw new ProbeParseError('unexpected /proc/version')
  return m[1]!
}

/**
 * Hardware class from the facts: `gpu.<model>` of the most common GPU
 * model (ties broken by name order, so the result is deterministic),
 * `cpu.<arch>` when there is no GPU.
 */
export function hardwareClassOf(gpus: readonly Pick<GpuFact, 'model'>[], cpu: Pick<CpuFact, 'arch'>): string {
  if (gpus.length === 0) return `cpu.${cpu.arch}`
  const counts = new Map<string, number>()
  for (const g of gpus) counts.set(g.model, (counts.get(g.model) ?? 0) + 1)
  const [best] = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  return `gpu.${best![0]}`
}

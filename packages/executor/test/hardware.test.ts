import { readFileSync } from 'node:fs'
import { arch } from 'node:os'
import { join } from 'node:path'
import { Identity } from '@tally/core'
import { describe, expect, it } from 'vitest'
import {
  attestHardware,
  gpuModelSlug,
  hardwareClassOf,
  hasNvidiaGpu,
  parseCpuinfo,
  parseKernelVersion,
  parseMeminfoTotal,
  parseNvidiaMemory,
  parseNvidiaSmiGpus,
  parseNvidiaSmiUtilisation,
  signAttestation,
  verifyAttestation,
} from '../src/index.ts'

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')
const hasGpu = await hasNvidiaGpu()

describe('nvidia-smi parsing', () => {
  it('parses an 8× H100 node', () => {
    const gpus = parseNvidiaSmiGpus(fixture('nvidia-smi-h100x8.csv'))
    expect(gpus).toHaveLength(8)
    expect(gpus[0]).toEqual({
      name: 'NVIDIA H100 80GB HBM3',
      model: 'h100',
      uuid: 'GPU-6f3c2a1e-0b5d-4c9f-8e7a-1d2c3b4a5f60',
      memoryBytes: 81559 * 1024 ** 2,
      driverVersion: '535.129.03',
      pciBusId: '00000000:18:00.0',
      source: 'nvidia-smi',
    })
    expect(new Set(gpus.map((g) => g.uuid)).size).toBe(8)
    expect(hardwareClassOf(gpus, { arch: 'x86_64' })).toBe('gpu.h100')
  })

  it('parses A100 and RTX 4090 outputs, with and without units', () => {
    const a100 = parseNvidiaSmiGpus(fixture('nvidia-smi-a100x4.csv'))
    expect(a100.map((g) => g.model)).toEqual(['a100', 'a100', 'a100', 'a100'])
    expect(a100[2]?.pciBusId).toBe('00000000:47:00.0')
    expect(hardwareClassOf(a100, { arch: 'x86_64' })).toBe('gpu.a100')
    const rtx = parseNvidiaSmiGpus(fixture('nvidia-smi-rtx4090.csv'))
    expect(rtx).toHaveLength(1)
    expect(rtx[0]?.model).toBe('rtx4090')
    expect(rtx[0]?.memoryBytes).toBe(24564 * 1024 ** 2)
    expect(parseNvidiaSmiGpus(fixture('nvidia-smi-rtx4090-nounits.csv'))).toEqual(rtx)
  })

  it('refuses the driver-failure message instead of reporting zero GPUs', () => {
    expect(() => parseNvidiaSmiGpus(fixture('nvidia-smi-failed.txt'))).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
    expect(() => parseNvidiaSmiGpus('NVIDIA H100, not-a-uuid, 1 MiB, 1, 00000000:18:00.0')).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
    expect(() => parseNvidiaMemory('lots')).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
    expect(parseNvidiaSmiGpus('\n\n')).toEqual([])
  })

  it('parses utilisation samples, treating [N/A] as idle', () => {
    expect(parseNvidiaSmiUtilisation(fixture('nvidia-smi-util.csv'))).toEqual([
      { index: 0, utilPercent: 97, memoryUsedBytes: 71234 * 1024 ** 2 },
      { index: 1, utilPercent: 0, memoryUsedBytes: 4 * 1024 ** 2 },
      { index: 2, utilPercent: 0, memoryUsedBytes: 0 },
    ])
  })

  it('slugs GPU names the way Akash SDL spells models', () => {
    const cases: Array<[string, string]> = [
      ['NVIDIA H100 80GB HBM3', 'h100'],
      ['NVIDIA H100 PCIe', 'h100'],
      ['NVIDIA H200', 'h200'],
      ['NVIDIA A100-SXM4-80GB', 'a100'],
      ['NVIDIA A100-PCIE-40GB', 'a100'],
      ['NVIDIA GeForce RTX 4090', 'rtx4090'],
      ['NVIDIA GeForce RTX 3090 Ti', 'rtx3090'],
      ['NVIDIA RTX A6000', 'rtxa6000'],
      ['Tesla V100-SXM2-16GB', 'v100'],
      ['Tesla T4', 't4'],
      ['NVIDIA L40S', 'l40s'],
      ['NVIDIA A10G', 'a10g'],
      ['', 'unknown'],
    ]
    for (const [name, slug] of cases) expect(gpuModelSlug(name), name).toBe(slug)
  })

  it('picks the most common model on a mixed node, deterministically', () => {
    expect(hardwareClassOf([{ model: 'a100' }, { model: 'h100' }, { model: 'h100' }], { arch: 'x86_64' })).toBe('gpu.h100')
    expect(hardwareClassOf([{ model: 'h100' }, { model: 'a100' }], { arch: 'x86_64' })).toBe('gpu.a100')
    expect(hardwareClassOf([], { arch: 'aarch64' })).toBe('cpu.aarch64')
  })
})

describe('procfs parsing', () => {
  it('reads x86_64 and aarch64 cpuinfo', () => {
    expect(parseCpuinfo(fixture('cpuinfo-x86_64.txt'))).toEqual({ model: 'AMD EPYC 7763 64-Core Processor', logicalCores: 4, arch: 'x86_64' })
    expect(parseCpuinfo(fixture('cpuinfo-aarch64.txt'))).toEqual({ model: 'ARM implementer 0x41 part 0xd0c', logicalCores: 2, arch: 'aarch64' })
    expect(() => parseCpuinfo('')).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
  })

  it('reads meminfo and version', () => {
    expect(parseMeminfoTotal(fixture('meminfo.txt'))).toBe(24683108 * 1024)
    expect(parseKernelVersion(fixture('version.txt'))).toBe('6.1.0-18-amd64')
    expect(() => parseMeminfoTotal('MemFree: 1 kB')).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
    expect(() => parseKernelVersion('FreeBSD')).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
  })
})

describe('attestHardware on this machine', () => {
  it.skipIf(hasGpu)('returns procfs facts and a cpu class where there is no GPU', async () => {
    const facts = await attestHardware()
    expect(facts.gpus).toEqual([])
    expect(facts.cpu.source).toBe('procfs')
    expect(facts.cpu.logicalCores).toBeGreaterThan(0)
    expect(facts.memory.source).toBe('procfs')
    expect(facts.memory.totalBytes).toBeGreaterThan(64 * 1024 ** 2)
    expect(facts.kernel.source).toBe('procfs')
    expect(facts.kernel.version).toBe(readFileSync('/proc/version', 'utf8').split(' ')[2])
    const expectedArch = arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : facts.cpu.arch
    expect(facts.hardwareClass).toBe(`cpu.${expectedArch}`)
    expect(facts.classSource).toBe('procfs')
  })

  it.skipIf(!hasGpu)('returns nvidia-smi facts and a gpu class where a GPU exists', async () => {
    const facts = await attestHardware()
    expect(facts.gpus.length).toBeGreaterThan(0)
    for (const g of facts.gpus) {
      expect(g.source).toBe('nvidia-smi')
      expect(g.uuid).toMatch(/^GPU-/)
      expect(g.memoryBytes).toBeGreaterThan(0)
    }
    expect(facts.hardwareClass).toMatch(/^gpu\.[a-z0-9]+$/)
    expect(facts.classSource).toBe('nvidia-smi')
  })

  it('marks facts as declared when a probe is unavailable', async () => {
    const facts = await attestHardware({
      nvidiaSmi: '/nonexistent/nvidia-smi',
      procRoot: '/nonexistent-proc',
      declared: {
        gpus: [{ name: 'NVIDIA H100 80GB HBM3' }],
        cpu: { model: 'declared cpu', logicalCores: 8, arch: 'x86_64' },
        memoryBytes: 1024,
        kernel: '6.1.0',
      },
    })
    expect(facts.hardwareClass).toBe('gpu.h100')
    expect(facts.classSource).toBe('declared')
    expect(facts.gpus[0]?.source).toBe('declared')
    expect(facts.cpu.source).toBe('declared')
    expect(facts.memory).toEqual({ totalBytes: 1024, source: 'declared' })
    expect(facts.notes.length).toBeGreaterThan(0)
  })

  it('refuses to attest with neither probes nor declarations', async () => {
    await expect(attestHardware({ nvidiaSmi: '/nonexistent/nvidia-smi', procRoot: '/nonexistent-proc' })).rejects.toMatchObject({ name: 'AttestationError' })
  })
})

describe('signed attestation', () => {
  it('signs, verifies, and detects tampering', async () => {
    const provider = Identity.fromSeed(new Uint8Array(32).fill(7))
    const facts = await attestHardware()
    const doc = signAttestation(provider, facts, 1_700_000_000_000)
    expect(doc.type).toBe('attestation')
    expect(doc.by).toBe(provider.peerId)
    expect(verifyAttestation(doc).body.facts.hardwareClass).toBe(facts.hardwareClass)
    const forged = { ...doc, body: { ...doc.body, facts: { ...doc.body.facts, hardwareClass: 'gpu.h100' } } }
    expect(() => verifyAttestation(forged)).toThrow(expect.objectContaining({ name: 'SignatureError' }))
    expect(() => verifyAttestation({ ...doc, body: { ...doc.body, facts: { ...doc.body.facts, probedAt: -1 } } })).toThrow(
      expect.objectContaining({ name: 'SchemaError' }),
    )
  })
})

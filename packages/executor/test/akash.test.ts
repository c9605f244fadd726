import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { encode } from '@tally/core'
import { describe, expect, it } from 'vitest'
import { decodeManifest, manifestFromAkashSdl, parseByteQuantity, parseCpuMillicores, tallyManifestFromAkash } from '../src/index.ts'

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')
const errName = (name: string) => expect.objectContaining({ name })

const minimal = (resources: string, extra = ''): string => `version: "2.0"
services:
  web:
    image: nginx:1.27
${extra}profiles:
  compute:
    web:
      resources:
${resources}
deployment:
  web:
    any:
      profile: web
      count: 1
`

describe('Akash units', () => {
  it('parses byte quantities per the SDL suffix table', () => {
    expect(parseByteQuantity('512Mi')).toBe(512 * 2 ** 20)
    expect(parseByteQuantity('1.5Gi')).toBe(1.5 * 2 ** 30)
    expect(parseByteQuantity('16G')).toBe(16e9)
    expect(parseByteQuantity('100k')).toBe(100_000)
    expect(parseByteQuantity(4096)).toBe(4096)
    expect(parseByteQuantity('4096')).toBe(4096)
    for (const bad of ['12 MB', '-1Gi', 'Gi', '1.5.2Mi', '1Xi', 1.5, null, '']) expect(parseByteQuantity(bad), String(bad)).toBeNull()
  })

  it('parses CPU units to millicores', () => {
    expect(parseCpuMillicores(0.5)).toBe(500)
    expect(parseCpuMillicores('0.25')).toBe(250)
    expect(parseCpuMillicores('100m')).toBe(100)
    expect(parseCpuMillicores(16)).toBe(16_000)
    for (const bad of ['1 core', '-1', 'm', -2, Number.NaN]) expect(parseCpuMillicores(bad), String(bad)).toBeNull()
  })
})

describe('manifestFromAkashSdl', () => {
  it('reads an H100 inference service', () => {
    const p = manifestFromAkashSdl(fixture('akash-h100-inference.yaml'))
    expect(p).toEqual({
      version: '2.0',
      service: 'vllm',
      profile: 'vllm',
      placement: 'dcloud',
      count: 1,
      image: 'vllm/vllm-openai:v0.6.3',
      command: ['python3', '-m', 'vllm.entrypoints.openai.api_server'],
      args: ['--model', 'meta-llama/Meta-Llama-3.1-8B-Instruct', '--tensor-parallel-size', '2'],
      env: { HF_HOME: '/data/hf', VLLM_WORKER_MULTIPROC_METHOD: 'spawn', HUGGING_FACE_HUB_TOKEN: '' },
      cpuUnits: 16_000,
      memoryBytes: 128 * 2 ** 30,
      storageBytes: 520 * 2 ** 30,
      gpu: { count: 2, vendor: 'nvidia', models: ['h100'], requirements: [{ model: 'h100', ramBytes: 80 * 2 ** 30, interface: 'sxm' }] },
      pricing: { denom: 'uakt', amount: '100000' },
    })
    const manifest = tallyManifestFromAkash(p, { wallMs: 3_600_000 })
    expect(manifest).toEqual({
      command: ['python3', '-m', 'vllm.entrypoints.openai.api_server', '--model', 'meta-llama/Meta-Llama-3.1-8B-Instruct', '--tensor-parallel-size', '2'],
      env: { HF_HOME: '/data/hf', VLLM_WORKER_MULTIPROC_METHOD: 'spawn', HUGGING_FACE_HUB_TOKEN: '' },
      limits: { wallMs: 3_600_000, memoryBytes: 128 * 2 ** 30 },
      image: 'vllm/vllm-openai:v0.6.3',
      gpu: { count: 2, model: 'h100' },
    })
    // The derived manifest is a valid Tally manifest and encodes canonically.
    expect(decodeManifest(manifest)).toEqual(manifest)
    expect(encode(manifest).byteLength).toBeGreaterThan(0)
  })

  it('reads a CPU-only service among several, by name or by profile', () => {
    expect(() => manifestFromAkashSdl(fixture('akash-cpu-web.yaml'))).toThrow(errName('SdlServiceError'))
    const api = manifestFromAkashSdl(fixture('akash-cpu-web.yaml'), { service: 'api' })
    expect(api).toMatchObject({
      version: '2.1',
      service: 'api',
      profile: 'api-small',
      placement: 'westcoast',
      count: 2,
      cpuUnits: 500,
      memoryBytes: 512 * 2 ** 20,
      storageBytes: 2 ** 30,
      gpu: { count: 0, vendor: null, models: [], requirements: [] },
      env: { PORT: '3000', NODE_ENV: 'production' },
      command: ['node'],
      args: ['server.js'],
    })
    expect(api.pricing?.amount).toBe('250')
    expect(manifestFromAkashSdl(fixture('akash-cpu-web.yaml'), { profile: 'cache' })).toMatchObject({
      service: 'cache',
      cpuUnits: 250,
      memoryBytes: 256 * 2 ** 20,
    })
    expect(() => manifestFromAkashSdl(fixture('akash-cpu-web.yaml'), { service: 'db' })).toThrow(errName('SdlServiceError'))
    expect(() => manifestFromAkashSdl(fixture('akash-cpu-web.yaml'), { service: 'api', profile: 'nope' })).toThrow(errName('SdlServiceError'))
    // An image without a command has no host entrypoint to run.
    const cache = manifestFromAkashSdl(fixture('akash-cpu-web.yaml'), { service: 'cache' })
    expect(() => tallyManifestFromAkash(cache, { wallMs: 1000 })).toThrow(errName('SdlInvalidError'))
  })

  it('accepts any-model GPUs and falls back to the profile named like the service', () => {
    const text = `version: "2.0"
services:
  job:
    image: pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime
    command: ["python", "train.py"]
profiles:
  compute:
    job:
      resources:
        cpu: { units: 4 }
        memory: { size: 32Gi }
        storage: { size: 100Gi }
        gpu:
          units: 1
          attributes:
            vendor:
              nvidia:
`
    const p = manifestFromAkashSdl(text)
    expect(p.gpu).toEqual({ count: 1, vendor: 'nvidia', models: [], requirements: [] })
    expect(p.placement).toBeNull()
    expect(tallyManifestFromAkash(p, { wallMs: 1000 }).gpu).toEqual({ count: 1 })
  })

  it('raises typed errors for malformed SDL', () => {
    const cpu = '        cpu:\n          units: 1\n'
    const mem = '        memory:\n          size: 1Gi\n'
    expect(() => manifestFromAkashSdl('version: "2.0"\nservices: [unclosed')).toThrow(errName('SdlParseError'))
    expect(() => manifestFromAkashSdl('- just\n- a list\n')).toThrow(errName('SdlParseError'))
    expect(() => manifestFromAkashSdl('a: 1\na: 2\n')).toThrow(errName('SdlParseError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + mem).replace('"2.0"', '"3.0"'))).toThrow(errName('SdlVersionError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + mem).replace('version: "2.0"\n', ''))).toThrow(errName('SdlVersionError'))
    expect(manifestFromAkashSdl(minimal(cpu + mem).replace('"2.0"', '2.0')).version).toBe('2.0')
    expect(() => manifestFromAkashSdl(minimal(cpu))).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + '        memory:\n          size: 12 MB\n'))).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(minimal('        cpu:\n          units: lots\n' + mem))).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + mem + '        gpu:\n          units: 1\n'))).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + mem + '        gpu:\n          units: 1.5\n'))).toThrow(errName('SdlInvalidError'))
    expect(() =>
      manifestFromAkashSdl(minimal(cpu + mem + '        gpu:\n          units: 1\n          attributes:\n            vendor:\n              amd: []\n')),
    ).toThrow(errName('SdlInvalidError'))
    expect(() =>
      manifestFromAkashSdl(
        minimal(
          cpu +
            mem +
            '        gpu:\n          units: 1\n          attributes:\n            vendor:\n              nvidia:\n                - model: h100\n                  interface: nvlink\n',
        ),
      ),
    ).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + mem, '    env:\n      - "1BAD=x"\n'))).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + mem).replace('image: nginx:1.27', 'image: ""'))).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(minimal(cpu + mem).replace('count: 1', 'count: 0'))).toThrow(errName('SdlInvalidError'))
    expect(() => manifestFromAkashSdl(42 as unknown as string)).toThrow(errName('SdlParseError'))
    expect(() => manifestFromAkashSdl('x'.repeat(1024 * 1024 + 1))).toThrow(errName('SdlParseError'))
  })
})

describe('Tally manifest', () => {
  const good = { command: ['python3', 'train.py'], env: { EPOCHS: '3' }, limits: { wallMs: 60_000, cpuMs: 30_000, memoryBytes: 2 ** 30 } }

  it('decodes a valid manifest', () => {
    expect(decodeManifest(good)).toEqual(good)
    expect(decodeManifest({ ...good, cwd: 'work/dir', gpu: { count: 1, model: 'h100' }, image: 'ubuntu:24.04' })).toMatchObject({ cwd: 'work/dir' })
  })

  it('refuses bad manifests with SchemaError', () => {
    const bad: unknown[] = [
      null,
      { ...good, command: [] },
      { ...good, command: [''] },
      { ...good, env: { 'BAD-NAME': 'x' } },
      { ...good, cwd: '../escape' },
      { ...good, cwd: '/abs' },
      { ...good, limits: { wallMs: 0 } },
      { ...good, limits: { wallMs: 1.5 } },
      { ...good, gpu: { count: 0 } },
      { ...good, gpu: { count: 1, model: 'H100 80GB' } },
      { ...good, extra: true },
      { ...good, env: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`V${i}`, 'x'])) },
    ]
    for (const value of bad) expect(() => decodeManifest(value), JSON.stringify(value)?.slice(0, 80)).toThrow(errName('SchemaError'))
  })
})

import { parse as parseYaml } from 'yaml'
import { SdlInvalidError, SdlParseError, SdlServiceError, SdlVersionError } from './errors.ts'
import { ENV_NAME, type ManifestLimits, type TallyManifest } from './manifest.ts'
import { parseByteQuantity, parseCpuMillicores } from './units.ts'

/** SDL files larger than this are refused before parsing. */
export const MAX_SDL_BYTES = 1024 * 1024
export const SUPPORTED_SDL_VERSIONS = ['2.0', '2.1'] as const

export interface AkashGpuRequirement {
  model: string
  /** Per-GPU memory the SDL asks for, or null for any. */
  ramBytes: number | null
  interface: 'pcie' | 'sxm' | null
}

/** The compute profile of one service of an Akash SDL. */
export interface AkashComputeProfile {
  version: (typeof SUPPORTED_SDL_VERSIONS)[number]
  service: string
  /** Name of the compute profile under `profiles.compute`. */
  profile: string
  /** Placement the service is deployed to, when the SDL has a `deployment` section. */
  placement: string | null
  /** Replicas in the deployment (1 when not stated). */
  count: number
  image: string
  command: string[]
  args: string[]
  env: Record<string, string>
  /** CPU in millicores (Akash `cpu.units` × 1000). */
  cpuUnits: number
  memoryBytes: number
  /** Sum of all storage volumes. */
  storageBytes: number
  gpu: {
    count: number
    vendor: 'nvidia' | null
    /** Acceptable models; empty means any model of the vendor. */
    models: string[]
    requirements: AkashGpuRequirement[]
  }
  /** The placement's price for this profile, as written (`denom`, `amount`). */
  pricing: { denom: string; amount: string } | null
}

export interface AkashSdlOptions {
  service?: string
  /** Compute profile name; defaults to the one the deployment section names for the service. */
  profile?: string
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)

function invalid(path: string, what: string): never {
  throw new SdlInvalidError(`sdl: ${path}: ${what}`, { path })
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) invalid(path, 'expected a mapping')
  return v
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') invalid(path, 'expected a non-empty string')
  return v
}

function strList(v: unknown, path: string): string[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) invalid(path, 'expected a list of strings')
  return v.map((item, i) => {
    if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') invalid(`${path}[${i}]`, 'expected a string')
    return String(item)
  })
}

function versionOf(doc: Obj): AkashComputeProfile['version'] {
  const v = doc['version']
  const text = typeof v === 'number' ? (Number.isInteger(v) ? `${v}.0` : String(v)) : v
  if (typeof text !== 'string') throw new SdlVersionError('sdl: version: missing', { version: null })
  const found = SUPPORTED_SDL_VERSIONS.find((s) => s === text)
  if (found === undefined) throw new SdlVersionError(`sdl: version ${JSON.stringify(text)} is not supported (2.0, 2.1)`, { version: text })
  return found
}

function envOf(v: unknown, path: string): Record<string, string> {
  const env: Record<string, string> = {}
  strList(v, path).forEach((line, i) => {
    const eq = line.indexOf('=')
    const name = eq < 0 ? line : line.slice(0, eq)
    if (!ENV_NAME.test(name)) invalid(`${path}[${i}]`, 'expected NAME=value')
    env[name] = eq < 0 ? '' : line.slice(eq + 1)
  })
  return env
}

function storageBytesOf(v: unknown, path: string): number {
  if (v === undefined || v === null) return 0
  const volumes = Array.isArray(v) ? v : [v]
  let total = 0
  volumes.forEach((vol, i) => {
    const p = Array.isArray(v) ? `${path}[${i}]` : path
    const size = parseByteQuantity(obj(vol, p)['size'])
    if (size === null) invalid(`${p}.size`, 'expected a size such as 10Gi')
    total += size
  })
  return total
}

function gpuOf(v: unknown, path: string): AkashComputeProfile['gpu'] {
  if (v === undefined || v === null) return { count: 0, vendor: null, models: [], requirements: [] }
  const gpu = obj(v, path)
  const units = gpu['units']
  const count = typeof units === 'string' && /^\d+$/.test(units) ? Number(units) : units
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) invalid(`${path}.units`, 'expected a whole number of GPUs')
  if (count === 0) return { count: 0, vendor: null, models: [], requirements: [] }
  const attributes = gpu['attributes']
  if (!isObj(attributes)) invalid(`${path}.attributes`, 'GPU attributes must be present if units > 0')
  const vendor = obj(attributes['vendor'], `${path}.attributes.vendor`)
  if (!('nvidia' in vendor)) invalid(`${path}.attributes.vendor`, 'expected vendor nvidia')
  const list = vendor['nvidia'] ?? []
  if (!Array.isArray(list)) invalid(`${path}.attributes.vendor.nvidia`, 'expected a list of models')
  const requirements = list.map((item, i): AkashGpuRequirement => {
    const p = `${path}.attributes.vendor.nvidia[${i}]`
    const entry = obj(item, p)
    const model = str(entry['model'], `${p}.model`).toLowerCase()
    if (!/^[a-z0-9*]{1,32}$/.test(model)) invalid(`${p}.model`, 'expected a model name such as h100')
    const ram = entry['ram'] === undefined ? null : parseByteQuantity(entry['ram'])
    if (entry['ram'] !== undefined && ram === null) invalid(`${p}.ram`, 'expected a size such as 80Gi')
    const iface = entry['interface'] ?? null
    if (iface !== null && iface !== 'pcie' && iface !== 'sxm') invalid(`${p}.interface`, 'expected pcie or sxm')
    return { model, ramBytes: ram, interface: iface }
  })
  return { count, vendor: 'nvidia', models: [...new Set(requirements.map((r) => r.model))], requirements }
}

/** The placements that deploy `service`, with the profile and count each names. */
function deploymentsOf(doc: Obj, service: string): Array<{ placement: string; profile: string; count: number }> {
  const deployment = doc['deployment']
  if (deployment === undefined) return []
  const entry = obj(deployment, 'deployment')[service]
  if (entry === undefined) return []
  return Object.entries(obj(entry, `deployment.${service}`)).map(([placement, d]) => {
    const p = `deployment.${service}.${placement}`
    const dep = obj(d, p)
    const count = dep['count'] ?? 1
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) invalid(`${p}.count`, 'expected a positive whole number')
    return { placement, profile: str(dep['profile'], `${p}.profile`), count }
  })
}

/**
 * Read an Akash SDL (version 2.0 or 2.1) and return the compute profile of
 * one service, so a deal matched on Akash can settle on Tally. Throws
 * `SdlParseError`, `SdlVersionError`, `SdlInvalidError` or `SdlServiceError`.
 */
export function manifestFromAkashSdl(yamlText: string, opts: AkashSdlOptions = {}): AkashComputeProfile {
  if (typeof yamlText !== 'string') throw new SdlParseError('sdl: expected YAML text')
  if (Buffer.byteLength(yamlText) > MAX_SDL_BYTES) throw new SdlParseError(`sdl: file exceeds ${MAX_SDL_BYTES} bytes`)
  let doc: unknown
  try {
    doc = parseYaml(yamlText, { maxAliasCount: 100, uniqueKeys: true })
  } catch (err) {
    throw new SdlParseError(`sdl: not valid YAML: ${(err as Error).message.split('\n')[0]}`, {}, { cause: err })
  }
  if (!isObj(doc)) throw new SdlParseError('sdl: expected a YAML mapping at the top level')
  const version = versionOf(doc)
  const services = obj(doc['services'], 'services')
  const compute = obj(obj(doc['profiles'], 'profiles')['compute'], 'profiles.compute')

  let service = opts.service
  if (service === undefined) {
    const names = Object.keys(services)
    const candidates = opts.profile === undefined ? names : names.filter((s) => deploymentsOf(doc as Obj, s).some((d) => d.profile === opts.profile))
    if (candidates.length !== 1) {
      throw new SdlServiceError(`sdl: ${candidates.length === 0 ? 'no service' : 'several services'} to choose from (${names.join(', ')}); pass { service }`, {
        services: names,
      })
    }
    service = candidates[0]!
  }
  if (!Object.hasOwn(services, service)) throw new SdlServiceError(`sdl: no service named ${JSON.stringify(service)}`, { service })
  const svc = obj(services[service], `services.${service}`)

  const deployments = deploymentsOf(doc, service)
  const chosen = opts.profile === undefined ? deployments : deployments.filter((d) => d.profile === opts.profile)
  const distinct = [...new Set(chosen.map((d) => d.profile))]
  if (distinct.length > 1) throw new SdlServiceError(`sdl: service ${service} is deployed with profiles ${distinct.join(', ')}; pass { profile }`, { service })
  const profile = opts.profile ?? distinct[0] ?? service
  if (!Object.hasOwn(compute, profile)) throw new SdlServiceError(`sdl: no compute profile named ${JSON.stringify(profile)}`, { service, profile })
  const dep = chosen[0] ?? null

  const resPath = `profiles.compute.${profile}.resources`
  const resources = obj(obj(compute[profile], `profiles.compute.${profile}`)['resources'], resPath)
  const cpuUnits = parseCpuMillicores(obj(resources['cpu'], `${resPath}.cpu`)['units'])
  if (cpuUnits === null || cpuUnits === 0) invalid(`${resPath}.cpu.units`, 'expected CPU units such as 0.5 or 500m')
  const memoryBytes = parseByteQuantity(obj(resources['memory'], `${resPath}.memory`)['size'])
  if (memoryBytes === null || memoryBytes === 0) invalid(`${resPath}.memory.size`, 'expected a size such as 512Mi')

  let pricing: AkashComputeProfile['pricing'] = null
  if (dep !== null) {
    const placement = (doc['profiles'] as Obj)['placement']
    const price = isObj(placement) && isObj(placement[dep.placement]) ? (placement[dep.placement] as Obj)['pricing'] : undefined
    const entry = isObj(price) ? price[profile] : undefined
    if (isObj(entry)) {
      const amount = entry['amount']
      if (typeof amount !== 'number' && typeof amount !== 'string')
        invalid(`profiles.placement.${dep.placement}.pricing.${profile}.amount`, 'expected an amount')
      pricing = { denom: str(entry['denom'], `profiles.placement.${dep.placement}.pricing.${profile}.denom`), amount: String(amount) }
    }
  }

  return {
    version,
    service,
    profile,
    placement: dep?.placement ?? null,
    count: dep?.count ?? 1,
    image: str(svc['image'], `services.${service}.image`),
    command: strList(svc['command'], `services.${service}.command`),
    args: strList(svc['args'], `services.${service}.args`),
    env: envOf(svc['env'], `services.${service}.env`),
    cpuUnits,
    memoryBytes,
    storageBytes: storageBytesOf(resources['storage'], `${resPath}.storage`),
    gpu: gpuOf(resources['gpu'], `${resPath}.gpu`),
    pricing,
  }
}

/**
 * A Tally manifest for the service's command. Akash runs a container, so
 * an SDL without `command` (image entrypoint) cannot become a host
 * process: that raises `SdlInvalidError`. Memory defaults to the
 * profile's size; wall time must come from the contract.
 */
export function tallyManifestFromAkash(profile: AkashComputeProfile, limits: Pick<ManifestLimits, 'wallMs'> & Partial<ManifestLimits>): TallyManifest {
  const command = [...profile.command, ...profile.args]
  if (profile.command.length === 0) invalid(`services.${profile.service}.command`, 'needed to run on a Tally executor (the image entrypoint is not known)')
  const manifest: TallyManifest = {
    command,
    env: { ...profile.env },
    limits: { wallMs: limits.wallMs, memoryBytes: limits.memoryBytes ?? profile.memoryBytes, ...(limits.cpuMs !== undefined ? { cpuMs: limits.cpuMs } : {}) },
    image: profile.image,
  }
  if (profile.gpu.count > 0) {
    const model = profile.gpu.models.length === 1 && profile.gpu.models[0] !== '*' ? profile.gpu.models[0] : undefined
    manifest.gpu = model !== undefined ? { count: profile.gpu.count, model } : { count: profile.gpu.count }
  }
  return manifest
}

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Identity, OPEN_TRUST_POLICY } from '@tally/core'
import { createTallyNode, localNetwork, type TallyNode } from '../packages/node/src/index.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ENTRY = join(import.meta.dirname, '..', 'packages', 'node', 'src', 'bin', 'tally-node.ts')

interface Ready {
  peerId: string
  multiaddrs: string[]
  announced: string[]
}

const children: ChildProcess[] = []

/** Start the real entry point and wait for its ready line (bounded). */
function startNode(configFile: string): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not get ready in 30 s: ${stderr}`)), 30_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`node exited with ${code} before ready: ${stderr}`))
    })
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer)
      resolve({ child, ready: JSON.parse(line) as Ready })
    })
  })
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

describe('tally-node processes on loopback', () => {
  let dir: string
  let consumer: TallyNode | undefined
  let bootAddr: string
  let providerReady: Ready
  let providerConfig: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-node-'))
    const network = localNetwork()
    const bootConfig = join(dir, 'boot.json')
    await writeFile(bootConfig, JSON.stringify({ dataDir: 'boot', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], network }))
    const boot = await startNode(bootConfig)
    bootAddr = boot.ready.multiaddrs.find((a) => a.startsWith('/ip4/127.0.0.1/'))!

    providerConfig = join(dir, 'provider.yaml')
    await writeFile(
      providerConfig,
      [
        'dataDir: provider',
        'listen: [/ip4/127.0.0.1/tcp/0]',
        `bootstrap: [${bootAddr}]`,
        'network:',
        '  allowPrivateAddresses: true',
        '  allowList: [/ip4/127.0.0.0/ipcidr/8]',
        '  gossipIpColocationWhitelist: [127.0.0.0/8]',
        'offer:',
        '  hardware: { class: gpu.h100, count: 8, attestationSource: declared }',
        '  jurisdiction: DE',
        '  price: { perEpoch: { amount: 250, asset: USD }, epochMs: 60000 }',
        '  sla: { availabilityBp: 9950, latencyP95Us: 2000 }',
        '',
      ].join('\n'),
    )
    providerReady = (await startNode(providerConfig)).ready
  })

  afterAll(async () => {
    await consumer?.stop()
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await Promise.all(children.map(exited))
    await rm(dir, { recursive: true, force: true })
  })

  it('a consumer knowing only the bootstrap address finds the provider by capability', async () => {
    expect(providerReady.announced).toContain('tally/cap/v1/hw=gpu.h100/jur=DE')
    consumer = await createTallyNode({ identity: Identity.generate(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootAddr], network: localNetwork() })
    const found = []
    for await (const result of consumer.discovery.discover({ hardwareClass: 'gpu.h100', jurisdiction: 'DE' }, OPEN_TRUST_POLICY, { timeoutMs: 10_000 })) {
      found.push(result)
    }
    expect(found).toHaveLength(1)
    const [result] = found
    expect(result?.peer).toBe(providerReady.peerId)
    expect(result !== undefined && 'offer' in result && result.offer.body.price.perEpoch).toEqual({ amount: 250, asset: 'USD' })
  })

  it('keeps its identity key (mode 0600) across a restart; SIGTERM stops it cleanly', async () => {
    const mode = (await stat(join(dir, 'provider', 'identity.key'))).mode & 0o777
    expect(mode).toBe(0o600)
    const first = children[1]!
    first.kill('SIGTERM')
    expect(await exited(first)).toBe(0)
    const again = await startNode(providerConfig)
    expect(again.ready.peerId).toBe(providerReady.peerId)
    again.child.kill('SIGTERM')
    expect(await exited(again.child)).toBe(0)
  })
})

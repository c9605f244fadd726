import { type ChildProcess, spawn } from 'node:child_process'
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { decode, encode } from '@tally/core'
import { ControlClient } from '@tally/daemon'
import { createTallyNode, localNetwork, multiaddr, submitCase, type TallyNode } from '@tally/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { arbiter, consumer, divergenceCase, type Scenario } from './scenario.ts'

const ENTRY = join(import.meta.dirname, '..', 'src', 'main.ts')

interface Ready {
  event: string
  peerId: string
  multiaddrs: string[]
  control: string
}

interface Daemon {
  child: ChildProcess
  ready: Ready
  stderr: () => string
}

const children: ChildProcess[] = []

/** Start the real entry point; resolve on its ready line (bounded), reject if it exits first. */
function start(config: string): Promise<Daemon> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, config], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`arbiter not ready in 30 s: ${stderr}`)), 30_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`arbiter exited with ${code} before ready: ${stderr}`))
    })
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer)
      resolve({ child, ready: JSON.parse(line) as Ready, stderr: () => stderr })
    })
  })
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

describe('tally-arbiter as a process', () => {
  let dir: string
  let dataDir: string
  let config: string
  let party: TallyNode
  let scenario: Scenario | undefined

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-arbiter-daemon-'))
    dataDir = join(dir, 'arbiter')
    // The contract of the test record names this identity as its arbiter.
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    await writeFile(join(dataDir, 'identity.key'), arbiter.toProtobuf(), { mode: 0o600 })
    config = join(dir, 'arbiter.yaml')
    await writeFile(
      config,
      [
        'dataDir: arbiter',
        'listen: [/ip4/127.0.0.1/tcp/0]',
        'bootstrap: []',
        'network:',
        '  allowPrivateAddresses: true',
        '  allowList: [/ip4/127.0.0.0/ipcidr/8]',
        'arbiter:',
        '  mode: both',
        '  limits: { maxConcurrentCases: 2, maxRecordBytes: 16777216 }',
        'control: { port: 0 }',
        'log: { level: info }',
        '',
      ].join('\n'),
    )
    party = await createTallyNode({ identity: consumer, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], network: localNetwork(), bootTimeoutMs: 5_000 })
  })

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await Promise.all(children.map((c) => exited(c)))
    await party?.stop()
    await scenario?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('rules a case, stops cleanly on SIGTERM and keeps its cases across a restart', async () => {
    const first = await start(config)
    expect(first.ready).toMatchObject({ event: 'ready', peerId: arbiter.peerId })
    expect(first.ready.control).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const c = await divergenceCase()
    scenario = c.s
    const addr = multiaddr(first.ready.multiaddrs.find((a) => a.startsWith('/ip4/127.0.0.1/'))!)
    const out = await submitCase(party, addr, { pair: c.s.pair, deal: c.deal, dispute: c.dispute, appeal: false, record: await c.s.record() })
    if (out.type !== 'ruling') throw new Error(`expected a ruling, got ${out.type}`)
    expect(out.ruling.body.award.collateralToConsumer.amount).toBe(166)

    const control = await ControlClient.connect(dataDir)
    expect(await control.get('/v1/status')).toMatchObject({ role: 'arbiter', peerId: arbiter.peerId, mode: 'both', cases: { ruled: 1, total: 1 } })
    const listed = await control.get<{ cases: { id: string; status: string }[] }>('/v1/cases')
    expect(listed.cases).toEqual([expect.objectContaining({ id: out.caseId, status: 'ruled' })])
    const metrics = await (await fetch(`${first.ready.control}/metrics`)).text()
    expect(metrics).toMatch(/tally_arbiter_cases_ruled_total\{[^}]*\} 1/)

    first.child.kill('SIGTERM')
    expect(await exited(first.child)).toBe(0)
    const lines = first
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: string })
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['case received', 'ruled', 'shutting down', 'stopped']))
    await expect(access(join(dataDir, 'control.json'))).rejects.toMatchObject({ code: 'ENOENT' })

    const second = await start(config)
    const again = await ControlClient.connect(dataDir)
    const cases = await again.get<{ cases: { id: string; status: string; ruling: { cid: string } }[] }>('/v1/cases')
    expect(cases.cases).toEqual([expect.objectContaining({ id: out.caseId, status: 'ruled' })])
    const detail = await again.get<{ status: string; record: { bytes: number } }>(`/v1/cases/${out.caseId}`)
    expect(detail).toMatchObject({ status: 'ruled', record: { bytes: (await c.s.record()).byteLength } })
    const bytes = await again.getBytes(`/v1/cases/${out.caseId}/ruling`)
    expect(encode(decode(bytes))).toEqual(encode(out.ruling))
    await expect(again.get('/v1/cases/nope')).rejects.toMatchObject({ name: 'ControlApiError', status: 404 })

    second.child.kill('SIGTERM')
    expect(await exited(second.child)).toBe(0)
  })

  it('exits with one clear line on a bad config', async () => {
    const bad = join(dir, 'bad.yaml')
    await writeFile(bad, 'listen: [/ip4/127.0.0.1/tcp/0]\narbiter: { mode: sometimes }\n')
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, bad], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    expect(await exited(child)).toBe(1)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toMatch(/^tally-arbiter: ConfigError: .*arbiter\.mode/)
  })
})

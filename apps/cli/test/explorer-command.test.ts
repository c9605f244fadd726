import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildScenario, entryCounts, exportBytes } from '../../explorer/test/scenario.ts'

const runner = fileURLToPath(new URL('./explorer-runner.ts', import.meta.url))
const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url))

let dir: string
let car: string
let counts: { provider: number; consumer: number }
const children: ChildProcess[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tally-cli-explorer-'))
  const s = await buildScenario()
  counts = entryCounts(s)
  car = join(dir, 'pair.car')
  await writeFile(car, await exportBytes(s))
  await s.close()
})

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

function start(args: string[]): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const child = spawn(tsx, [runner, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  let err = ''
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()))
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, out: () => out, err: () => err, exit }
}

async function waitFor(what: () => RegExpExecArray | null, exit: Promise<unknown>, ms = 30_000): Promise<RegExpExecArray> {
  const until = Date.now() + ms
  let exited = false
  void exit.then(() => (exited = true))
  for (;;) {
    const m = what()
    if (m !== null) return m
    if (exited || Date.now() > until) throw new Error('explorer did not print its URL')
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('tally explorer', () => {
  it('serves an export, prints its URL, and stops on SIGINT', async () => {
    const run = start(['explorer', car, '--port', '0'])
    const m = await waitFor(() => /explorer: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.out()), run.exit)
    const url = m[1] as string
    expect(run.out()).toContain('1 pair from')
    const pairs = (await (await fetch(`${url}api/pairs`)).json()) as { pairs: { entries: unknown }[] }
    expect(pairs.pairs[0]?.entries).toEqual(counts)
    run.child.kill('SIGINT')
    expect(await run.exit).toBe(0)
    await expect(fetch(url)).rejects.toThrow()
  })

  it('--json prints the URL as JSON', async () => {
    const run = start(['--json', 'explorer', car])
    const m = await waitFor(() => /^(\{.*\})$/m.exec(run.out()), run.exit)
    const info = JSON.parse(m[1] as string) as { url: string; pairs: number }
    expect(info.pairs).toBe(1)
    expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    run.child.kill('SIGTERM')
    expect(await run.exit).toBe(0)
  })

  it('a missing or unreadable input is one clear line and exit 2', async () => {
    const missing = start(['explorer', join(dir, 'nope.car')])
    expect(await missing.exit).toBe(2)
    expect(missing.err()).toMatch(/^tally: cannot open .*nope\.car: ENOENT\n$/)
    const junk = join(dir, 'junk.car')
    await writeFile(junk, 'junk')
    const bad = start(['explorer', junk])
    expect(await bad.exit).toBe(2)
    expect(bad.err()).toContain('is not a CAR file')
    const port = start(['explorer', car, '--port', '99999'])
    expect(await port.exit).toBe(2)
    expect(port.err()).toContain('not a port number')
  })
})

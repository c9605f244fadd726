import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeManifest, hasNvidiaGpu, logsHashChain, parseProcStat, type RunSpec, reapStaleRun, runSpecFromManifest, startRun } from '../src/index.ts'

const base = mkdtempSync(join(tmpdir(), 'tally-exec-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))
const node = process.execPath
let counter = 0
const spec = (command: string[], extra: Partial<RunSpec> = {}): RunSpec => ({
  id: `run-${++counter}`,
  baseDir: base,
  command,
  limits: { wallMs: 20_000 },
  epochMs: 10_000,
  ...extra,
})
const hasGpu = await hasNvidiaGpu()

describe('workload runner', () => {
  it('runs a process to exit 0 and keeps its logs verifiable', async () => {
    const run = await startRun(spec([node, '-e', "process.stdout.write('hello\\n'); process.stderr.write('warn\\n')"]))
    const res = await run.done
    expect(res.exitStatus).toEqual({ code: 0, signal: null, reason: 'exit' })
    const out = readFileSync(res.stdoutPath)
    const err = readFileSync(res.stderrPath)
    expect(out.toString()).toBe('hello\n')
    expect(err.toString()).toBe('warn\n')
    const last = res.epochs.at(-1)!
    expect(last).toMatchObject({ epoch: 0, exited: true, exitStatus: res.exitStatus, stdoutBytes: 6, stderrBytes: 5, logsHash: res.logsHash })
    expect(logsHashChain(out, err, res.epochs)).toEqual(res.epochs.map((e) => e.logsHash))
    expect(res.maxRssBytes).toBeGreaterThan(1024 * 1024)
    expect(statSync(res.workdir).mode & 0o777).toBe(0o700)
  })

  it('reports a nonzero exit code as the workload ending by itself', async () => {
    const res = await (await startRun(spec([node, '-e', 'process.exit(3)']))).done
    expect(res.exitStatus).toEqual({ code: 3, signal: null, reason: 'exit' })
  })

  it('kills at the wall limit: SIGTERM, then SIGKILL after the grace period for a process that ignores it', async () => {
    const polite = await startRun(spec([node, '-e', 'setInterval(() => {}, 1000)'], { limits: { wallMs: 400 }, graceMs: 5000 }))
    expect((await polite.done).exitStatus).toEqual({ code: null, signal: 'SIGTERM', reason: 'wall' })
    const stubborn = await startRun(
      spec([node, '-e', "process.on('SIGTERM', () => console.log('ignored')); setInterval(() => {}, 1000); console.log('ready')"], {
        limits: { wallMs: 600 },
        graceMs: 300,
      }),
    )
    const res = await stubborn.done
    expect(res.exitStatus).toEqual({ code: null, signal: 'SIGKILL', reason: 'wall' })
    expect(readFileSync(res.stdoutPath, 'utf8')).toBe('ready\nignored\n')
  })

  it('kills a workload that exceeds its memory limit', async () => {
    const limit = 160 * 1024 * 1024
    // Grows by 8 MiB every 10 ms up to 1 GiB, so it ends by itself if the limit were not enforced.
    const script = 'const a=[];const t=setInterval(()=>{a.push(Buffer.alloc(8<<20,1));if(a.length>=128){clearInterval(t)}},10)'
    const res = await (await startRun(spec([node, '-e', script], { limits: { wallMs: 20_000, memoryBytes: limit } }))).done
    expect(res.exitStatus).toEqual({ code: null, signal: 'SIGKILL', reason: 'memory' })
    expect(res.maxRssBytes).toBeGreaterThan(limit)
    expect(res.epochs.at(-1)!.maxRssBytes).toBeGreaterThan(limit)
  })

  // The parent lingers after reaping the child: CPU of the root's last sampling interval is not
  // seen (documented), and this test is about the child's time surviving its exit.
  it('meters a CPU-burning child per epoch, and the CPU grows epoch by epoch', async () => {
    const child = 'for (;;) { for (let i = 0; i < 1e6; i++); if (process.cpuUsage().user >= 1.2e6) break }'
    const parent = `require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(child)}], { stdio: 'inherit' }).on('exit', (c) => setTimeout(() => process.exit(c ?? 1), 300))`
    const run = await startRun(spec([node, '-e', parent], { epochMs: 250 }))
    const seen: number[] = []
    run.onEpoch((u) => seen.push(u.epoch))
    const res = await run.done
    expect(res.exitStatus.reason).toBe('exit')
    expect(seen).toEqual(res.epochs.map((e) => e.epoch))
    expect(res.epochs.map((e) => e.epoch)).toEqual(res.epochs.map((_, i) => i))
    expect(res.totalCpuMs).toBeGreaterThanOrEqual(1200)
    const busy = res.epochs.filter((e) => e.cpuMs > 0)
    expect(busy.length).toBeGreaterThanOrEqual(3)
    for (let i = 1; i < res.epochs.length; i++) expect(res.epochs[i]!.totalCpuMs).toBeGreaterThanOrEqual(res.epochs[i - 1]!.totalCpuMs)
    expect(res.epochs.reduce((s, e) => s + e.cpuMs, 0)).toBe(res.totalCpuMs)
    expect(res.epochs.reduce((s, e) => s + e.wallMs, 0)).toBe(res.wallMs)
    for (const e of res.epochs.slice(0, -1)) expect(e.wallMs).toBe(250)
  })

  it('enforces a CPU limit (tree polling and RLIMIT_CPU)', async () => {
    for (const limitWrapper of ['prlimit', 'sh'] as const) {
      const res = await (await startRun(spec([node, '-e', 'for (;;) {}'], { limits: { wallMs: 20_000, cpuMs: 700 }, limitWrapper }))).done
      expect(res.exitStatus.reason, limitWrapper).toBe('cpu')
      expect(res.totalCpuMs).toBeGreaterThanOrEqual(700)
    }
  })

  it('applies RLIMIT_CPU and RLIMIT_AS through either wrapper', async () => {
    for (const limitWrapper of ['prlimit', 'sh'] as const) {
      const res = await (
        await startRun(
          spec([node, '-e', "process.stdout.write(require('fs').readFileSync('/proc/self/limits', 'utf8'))"], {
            limits: { wallMs: 20_000, cpuMs: 5000, addressSpaceBytes: 64 * 2 ** 30 },
            limitWrapper,
          }),
        )
      ).done
      const limits = readFileSync(res.stdoutPath, 'utf8')
      expect(limits, limitWrapper).toMatch(/Max cpu time\s+5\s+6\s+seconds/)
      expect(limits, limitWrapper).toMatch(new RegExp(`Max address space\\s+${64 * 2 ** 30}\\s`))
    }
  })

  it('hashes logs deterministically: same output, same hash; different output, different hash', async () => {
    const say = async (text: string): Promise<string> => (await (await startRun(spec([node, '-e', `console.log(${JSON.stringify(text)})`]))).done).logsHash
    const a = await say('same output')
    const b = await say('same output')
    const c = await say('other output')
    expect(a).toBe(b)
    expect(c).not.toBe(a)
  })

  it('changes the chained hash as output arrives epoch by epoch', async () => {
    const script = "let i=0; const t=setInterval(()=>{ console.log('tick '+i); if(++i===4) clearInterval(t) }, 150)"
    const res = await (await startRun(spec([node, '-e', script], { epochMs: 120 }))).done
    const hashes = res.epochs.map((e) => e.logsHash)
    expect(new Set(hashes).size).toBe(hashes.length)
    expect(logsHashChain(readFileSync(res.stdoutPath), readFileSync(res.stderrPath), res.epochs)).toEqual(hashes)
    // Continuing a chain from a previous run's value gives a different, checkable chain.
    const cont = await (await startRun(spec([node, '-e', 'console.log(1)'], { previousLogsHash: res.logsHash, firstEpoch: res.epochs.length }))).done
    expect(cont.epochs[0]!.epoch).toBe(res.epochs.length)
    expect(logsHashChain(readFileSync(cont.stdoutPath), readFileSync(cont.stderrPath), cont.epochs, res.logsHash)).toEqual([cont.logsHash])
  })

  it('does not leak the daemon environment', async () => {
    process.env['TALLY_TEST_DAEMON_SECRET'] = 'hunter2'
    try {
      const res = await (
        await startRun(spec([node, '-e', 'process.stdout.write(JSON.stringify(process.env))'], { env: { MODEL: 'llama' }, allowEnv: ['PATH'] }))
      ).done
      const env = JSON.parse(readFileSync(res.stdoutPath, 'utf8')) as Record<string, string>
      expect(env['TALLY_TEST_DAEMON_SECRET']).toBeUndefined()
      expect(env['MODEL']).toBe('llama')
      expect(env['PATH']).toBe(process.env['PATH'])
      expect(env['HOME']).toBe(res.workdir)
      expect(Object.keys(env).sort()).toEqual(['HOME', 'MODEL', 'PATH', 'TALLY_RUN_ID', 'TALLY_WORKDIR'])
    } finally {
      delete process.env['TALLY_TEST_DAEMON_SECRET']
    }
  })

  it('bounds log files with a truncation marker', async () => {
    const res = await (await startRun(spec([node, '-e', "process.stdout.write('x'.repeat(100000))"], { maxLogBytes: 1000 }))).done
    const out = readFileSync(res.stdoutPath, 'utf8')
    expect(out.startsWith('x'.repeat(1000))).toBe(true)
    expect(out.slice(1000)).toBe('\n[tally: log truncated at 1000 bytes]\n')
    expect(res.epochs.at(-1)!.stdoutBytes).toBe(Buffer.byteLength(out))
  })

  it('stops on request', async () => {
    const run = await startRun(spec([node, '-e', 'setInterval(() => {}, 1000)']))
    await new Promise((r) => setTimeout(r, 200))
    const res = await run.stop()
    expect(res.exitStatus).toEqual({ code: null, signal: 'SIGTERM', reason: 'stopped' })
    expect(run.epochs.at(-1)!.exited).toBe(true)
  })

  it('takes the whole process group down when the root exits', async () => {
    const script =
      "require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' }).unref(); setTimeout(() => process.exit(0), 300)"
    const run = await startRun(spec([node, '-e', script]))
    const res = await run.done
    expect(res.exitStatus.reason).toBe('exit')
    // Killed members may linger as zombies where PID 1 does not reap; none may still be running.
    const running = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((d) => {
        try {
          return parseProcStat(readFileSync(`/proc/${d}/stat`, 'utf8'))
        } catch {
          return null
        }
      })
      .filter((st) => st !== null && st.pgrp === run.pid && st.state !== 'Z')
    expect(running).toEqual([])
  })

  it('runs a shell only when asked, in the requested cwd', async () => {
    const res = await (await startRun(spec(['echo $((1 + 2)) "$PWD"'], { shell: true, cwd: 'sub/dir' }))).done
    expect(readFileSync(res.stdoutPath, 'utf8')).toBe(`3 ${join(res.workdir, 'sub/dir')}\n`)
    // Without shell, the same string is a program name that does not exist.
    await expect(startRun(spec(['echo $((1 + 2))']))).rejects.toMatchObject({ name: 'SpawnError' })
  })

  it('runs a decoded manifest', async () => {
    const manifest = decodeManifest({
      command: [node, '-e', 'console.log(process.env.GREETING)'],
      env: { GREETING: 'hi' },
      limits: { wallMs: 10_000, memoryBytes: 2 ** 30 },
    })
    const res = await (await startRun(runSpecFromManifest(manifest, { id: 'from-manifest', baseDir: base, epochMs: 1000 }))).done
    expect(readFileSync(res.stdoutPath, 'utf8')).toBe('hi\n')
  })

  it('refuses bad specs and unstartable programs with typed errors', async () => {
    await expect(startRun(spec([node], { id: '../escape' }))).rejects.toMatchObject({ name: 'RunSpecError' })
    await expect(startRun(spec([]))).rejects.toMatchObject({ name: 'RunSpecError' })
    await expect(startRun(spec([node], { cwd: '../../etc' }))).rejects.toMatchObject({ name: 'RunSpecError' })
    await expect(startRun(spec([node], { limits: { wallMs: 0 } }))).rejects.toMatchObject({ name: 'RunSpecError' })
    await expect(startRun(spec([node], { env: { 'NOT VALID': 'x' } }))).rejects.toMatchObject({ name: 'RunSpecError' })
    await expect(startRun(spec(['a', 'b'], { shell: true }))).rejects.toMatchObject({ name: 'RunSpecError' })
    await expect(startRun(spec(['/nonexistent/program']))).rejects.toMatchObject({ name: 'SpawnError' })
    const notExecutable = join(base, 'data.txt')
    writeFileSync(notExecutable, 'not a program', { mode: 0o644 })
    await expect(startRun(spec([notExecutable]))).rejects.toMatchObject({ name: 'SpawnError' })
  })

  it('reaps a workload left running by a daemon that was killed -9', async () => {
    const entry = join(import.meta.dirname, '../src/index.ts')
    const code = `import { startRun } from ${JSON.stringify(entry)}
const r = await startRun({ id: 'orphan', baseDir: ${JSON.stringify(base)}, command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], limits: { wallMs: 60000 }, epochMs: 1000 })
console.log(r.pid)`
    const daemon = spawn(node, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: join(import.meta.dirname, '../../..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const pid = await new Promise<number>((resolve, reject) => {
      daemon.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim())))
      daemon.once('exit', (c) => reject(new Error(`daemon exited ${c}`)))
    })
    daemon.kill('SIGKILL')
    await new Promise((r) => daemon.once('exit', r))
    const state = (): string | null => {
      try {
        return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).state
      } catch {
        return null
      }
    }
    expect(state()).not.toBeNull()
    expect(state()).not.toBe('Z')
    expect(reapStaleRun(join(base, 'orphan'))).toBe(true)
    for (let i = 0; i < 50 && state() !== null && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20))
    expect([null, 'Z']).toContain(state())
    // Nothing to reap the second time, and a missing record is not an error.
    expect(reapStaleRun(join(base, 'orphan'))).toBe(false)
    expect(reapStaleRun(join(base, 'never-ran'))).toBe(false)
  })

  it.skipIf(!hasGpu)('meters GPU busy time where an NVIDIA GPU exists', async () => {
    const res = await (await startRun(spec([node, '-e', 'setTimeout(() => {}, 2500)'], { epochMs: 1000, gpu: { indices: [0], sampleMs: 250 } }))).done
    for (const e of res.epochs) {
      expect(e.gpuMs).not.toBeNull()
      expect(e.gpuUtilPercent).not.toBeNull()
    }
  })
})

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { clockTicksPerSecond, ProcessTreeSampler, parseProcStat, parseProcStatusMemory } from '../src/index.ts'

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')

describe('procfs parsers', () => {
  it('parses stat with parentheses and spaces in the command name', () => {
    expect(parseProcStat(fixture('proc-stat.txt'))).toEqual({
      pid: 4242,
      state: 'S',
      ppid: 4200,
      pgrp: 4242,
      utime: 250,
      stime: 37,
      cutime: 12,
      cstime: 3,
      starttime: 987654,
      rssPages: 11520,
    })
    expect(() => parseProcStat('garbage')).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
    expect(() => parseProcStat('1 (x) S 1 2')).toThrow(expect.objectContaining({ name: 'ProbeParseError' }))
  })

  it('parses VmRSS and VmHWM', () => {
    expect(parseProcStatusMemory(fixture('proc-status.txt'))).toEqual({ rssBytes: 45080 * 1024, hwmBytes: 52344 * 1024 })
    expect(parseProcStatusMemory('Name: kworker')).toEqual({ rssBytes: 0, hwmBytes: 0 })
  })

  it('parses this process', () => {
    const st = parseProcStat(readFileSync('/proc/self/stat', 'utf8'))
    expect(st.pid).toBe(process.pid)
    expect(st.ppid).toBe(process.ppid)
  })
})

describe('ProcessTreeSampler', () => {
  it('sees a grandchild burn CPU and keeps its time after the grandchild is reaped', async () => {
    // Parent waits on a child that burns 600 ms of CPU, then idles so its cutime holds the child's time.
    const script = `const c=require('child_process').spawn(process.execPath,['-e','for(;;){for(let i=0;i<1e6;i++);if(process.cpuUsage().user>=6e5)break}'],{stdio:'inherit'});c.on('exit',()=>setTimeout(()=>{},5000))`
    const root = spawn(process.execPath, ['-e', script], { detached: true, stdio: 'ignore' })
    try {
      const sampler = new ProcessTreeSampler(root.pid!)
      let maxProcesses = 0
      let last = sampler.sample()
      const ticks: number[] = []
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50))
        last = sampler.sample()
        ticks.push(last.cpuTicks)
        maxProcesses = Math.max(maxProcesses, last.processes)
        if (last.processes === 1 && maxProcesses === 2 && last.cpuTicks * (1000 / clockTicksPerSecond()) >= 600) break
      }
      expect(maxProcesses).toBe(2)
      expect(last.processes).toBe(1)
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]!).toBeGreaterThanOrEqual(ticks[i - 1]!)
      expect((last.cpuTicks * 1000) / clockTicksPerSecond()).toBeGreaterThanOrEqual(600)
      expect(last.rssBytes).toBeGreaterThan(1024 * 1024)
      expect(last.hwmBytes).toBeGreaterThanOrEqual(last.rssBytes / 2)
    } finally {
      process.kill(-root.pid!, 'SIGKILL')
    }
  })
})

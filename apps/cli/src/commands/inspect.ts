import type { Command } from 'commander'
import { embeddedDocuments, type EntryBlock } from '@tally/core'
import { openExport } from '@tally/lineage'
import { CliError, EXIT, printJson } from '../output.ts'
import type { GlobalOptions } from '../program.ts'
import { readExportFile } from './verify.ts'

function summary(b: EntryBlock): string {
  const body = b.entry.body as Record<string, unknown> | null
  const docs = embeddedDocuments(body)
  const bits: string[] = []
  if (body !== null && typeof body === 'object') {
    for (const k of ['epoch', 'verdict', 'amount', 'reason', 'status', 'role']) {
      const v = body[k]
      if (typeof v === 'string' || typeof v === 'number') bits.push(`${k}=${v}`)
    }
    const epochs = body['epochs']
    if (Array.isArray(epochs)) bits.push(`epochs=${epochs.join(',')}`)
  }
  for (const d of docs) bits.push(`[${d.type} by …${d.by.slice(-6)}]`)
  return bits.join(' ')
}

export function registerInspect(program: Command, globals: () => GlobalOptions): void {
  program
    .command('inspect')
    .description('a readable timeline of both chains of an exported pair log')
    .argument('<file.car>', 'export to read')
    .option('--limit <n>', 'show at most this many entries (0: all)', '0')
    .action(async (file: string, o: { limit: string }) => {
      const g = globals()
      const opened = await openExport(await readExportFile(file))
      const pair = opened.pair
      if (pair === undefined) throw new CliError(`${file} is not a readable pair log: ${opened.report.firstProblem?.message ?? 'no manifest'}`, EXIT.failed)
      const rows = []
      const limit = Number(o.limit)
      for (const b of opened.timeline()) {
        const role = b.entry.author === pair.provider ? 'provider' : 'consumer'
        rows.push({ time: b.entry.time, role, seq: b.entry.seq, kind: b.entry.kind, cid: b.cid.toString(), summary: summary(b) })
        if (limit > 0 && rows.length >= limit) break
      }
      if (g.json) {
        printJson({ pair, valid: opened.report.ok, entries: rows })
        return
      }
      process.stdout.write(
        `pair ${opened.report.pairId ?? ''}\nprovider ${pair.provider}\nconsumer ${pair.consumer}\n${opened.report.ok ? 'valid' : `INVALID: ${opened.report.firstProblem?.message}`}\n\n`,
      )
      const t0 = rows[0]?.time ?? 0
      for (const r of rows) {
        const t = `+${((r.time - t0) / 1000).toFixed(3)}s`.padStart(10)
        const left = r.role === 'provider' ? `P#${r.seq} ${r.kind}` : ''
        const right = r.role === 'consumer' ? `C#${r.seq} ${r.kind}` : ''
        process.stdout.write(`${t}  ${left.padEnd(26)}${right.padEnd(26)}${r.summary}\n`)
      }
    })
}

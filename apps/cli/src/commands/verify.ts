import { readFile } from 'node:fs/promises'
import { verifyExport, type VerifyReport } from '@tally/lineage'
import { replay } from '@tally/deal'
import type { Command } from 'commander'
import { CliError, EXIT, Progress, printJson } from '../output.ts'
import type { GlobalOptions } from '../program.ts'

export async function readExportFile(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new CliError(`cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage)
  }
}

/** Verify an export offline: every link, head and checkpoint signature, embedded documents, and the deal state machine. */
export async function verifyFile(file: string, showProgress: boolean): Promise<VerifyReport> {
  const bytes = await readExportFile(file)
  const progress = new Progress(`verifying ${file}`, showProgress && process.stderr.isTTY === true)
  try {
    return await verifyExport(bytes, {
      onProgress: (done: number, total: number) => progress.update(done, total),
      replay: (timeline) => replay(timeline).problems,
    })
  } finally {
    progress.done()
  }
}

function printReport(file: string, r: VerifyReport): void {
  const out = process.stdout
  if (r.ok) {
    out.write(`valid pair log: ${file}\n`)
  } else {
    const p = r.firstProblem
    out.write(`INVALID pair log: ${file}\n`)
    if (p !== undefined) {
      const where = p.author !== undefined ? `entry ${p.author}#${p.seq ?? '?'}${p.cid !== undefined ? ` (${p.cid})` : ''}` : p.cid !== undefined ? `block ${p.cid}` : 'export'
      out.write(`first bad: ${where}\nreason:    ${p.code}: ${p.message}\n`)
    }
    if (r.problems.length > 1) out.write(`(${r.problems.length} problems in all; --json lists them)\n`)
  }
  if (r.pair !== undefined) {
    out.write(`pair:        ${r.pairId ?? ''}\n`)
    out.write(`provider:    ${r.pair.provider}  entries ${r.chains.provider.entries}\n`)
    out.write(`consumer:    ${r.pair.consumer}  entries ${r.chains.consumer.entries}\n`)
    out.write(`checkpoints: ${r.checkpoints}\n`)
  }
  if (r.balances !== undefined) {
    for (const [asset, b] of Object.entries(r.balances)) out.write(`balance ${asset}: ${JSON.stringify(b)}\n`)
  }
}

export function registerVerify(program: Command, globals: () => GlobalOptions): void {
  program
    .command('verify')
    .description('verify an exported pair log (CAR) offline; exit 0 valid, 1 invalid, 2 unreadable')
    .argument('<file.car>', 'export to verify')
    .action(async (file: string) => {
      const g = globals()
      const report = await verifyFile(file, !g.json)
      if (g.json) printJson({ file, ...report })
      else printReport(file, report)
      if (!report.ok) process.exitCode = EXIT.failed
    })
}

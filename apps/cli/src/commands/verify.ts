import { readFile } from 'node:fs/promises'
import { verifyExport, type VerifyReport } from '@tally/lineage'
import { type PairState, replay } from '@tally/deal'
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
export async function verifyFile(file: string, showProgress: boolean): Promise<{ report: VerifyReport; state: PairState | undefined }> {
  const bytes = await readExportFile(file)
  const progress = new Progress(`verifying ${file}`, showProgress && process.stderr.isTTY === true)
  let state: PairState | undefined
  try {
    const report = await verifyExport(bytes, {
      onProgress: (done: number, total: number) => progress.update(done, total),
      replay: (timeline) => {
        const r = replay(timeline)
        state = r.state
        return r.problems
      },
    })
    return { report, state }
  } finally {
    progress.done()
  }
}

/** The deal layer's view of a verified export: deals and balances per asset. */
export function settlementOf(state: PairState | undefined): { deals: number; balances: PairState['balances'] } | undefined {
  return state === undefined ? undefined : { deals: state.dealOrder.length, balances: state.balances }
}

function printReport(file: string, r: VerifyReport, state: PairState | undefined): void {
  const out = process.stdout
  if (r.ok) {
    out.write(`valid pair log: ${file}\n`)
  } else {
    const p = r.firstProblem
    out.write(`INVALID pair log: ${file}\n`)
    if (p !== undefined) {
      const where =
        p.author !== undefined
          ? `entry ${p.author}#${p.seq ?? '?'}${p.cid !== undefined ? ` (${p.cid})` : ''}`
          : p.cid !== undefined
            ? `block ${p.cid}`
            : 'export'
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
  out.write(`documents:   ${r.documents} third-party signatures checked\n`)
  if (state !== undefined) {
    out.write(`deals:       ${state.dealOrder.length}\n`)
    for (const [asset, b] of Object.entries(state.balances)) {
      out.write(
        `balance ${asset}: authorised ${b.authorised}, paid ${b.paid}, acknowledged ${b.acknowledged}, held ${b.held}, collateral awarded ${b.collateralAwarded}\n`,
      )
    }
  }
}

export function registerVerify(program: Command, globals: () => GlobalOptions): void {
  program
    .command('verify')
    .description('verify an exported pair log (CAR) offline; exit 0 valid, 1 invalid, 2 unreadable')
    .argument('<file.car>', 'export to verify')
    .action(async (file: string) => {
      const g = globals()
      const { report, state } = await verifyFile(file, !g.json)
      if (g.json) printJson({ file, ...report, settlement: settlementOf(state) })
      else printReport(file, report, state)
      if (!report.ok) process.exitCode = EXIT.failed
    })
}

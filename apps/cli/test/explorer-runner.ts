// Runs `tally explorer …` through the command module alone, whether or not program.ts wires it yet.
import '@tally/core'
import { Command } from 'commander'
import { registerExplorer } from '../src/commands/explorer.ts'
import { reportError } from '../src/output.ts'
import type { GlobalOptions } from '../src/program.ts'

const program = new Command('tally').option('--json', 'machine-readable output', false).option('-v, --verbose', 'stack traces', false).exitOverride()
registerExplorer(program, () => program.opts<GlobalOptions>())
try {
  await program.parseAsync(process.argv.slice(2), { from: 'user' })
} catch (err) {
  process.exitCode = reportError(err, false)
}

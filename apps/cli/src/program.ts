import { Command, CommanderError } from 'commander'
import { registerCredential } from './commands/credential.ts'
import { registerDeal } from './commands/deal.ts'
import { registerExplorer } from './commands/explorer.ts'
import { registerFind } from './commands/find.ts'
import { registerInit } from './commands/init.ts'
import { registerInspect } from './commands/inspect.ts'
import { registerNode } from './commands/node.ts'
import { registerVerify } from './commands/verify.ts'
import { CliError, EXIT, reportError } from './output.ts'

export interface GlobalOptions {
  dataDir?: string
  json: boolean
  verbose: boolean
}

/** Build the `tally` command tree. Commands register themselves from commands/. */
export function buildProgram(): Command {
  const program = new Command('tally')
    .description('Tally: settle compute deals between the two parties, with a record anyone can verify')
    .option('-d, --data-dir <dir>', 'node data directory (default $TALLY_DATA_DIR or ~/.tally)')
    .option('--json', 'machine-readable output', false)
    .option('-v, --verbose', 'stack traces and debug detail on errors', false)
    .showHelpAfterError('(run tally --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  const globals = () => program.opts<GlobalOptions>()
  registerInit(program, globals)
  registerCredential(program, globals)
  registerFind(program, globals)
  registerDeal(program, globals)
  registerVerify(program, globals)
  registerInspect(program, globals)
  registerExplorer(program, globals)
  registerNode(program, globals)
  for (const register of extraCommands) register(program, globals)
  return program
}

type Register = (program: Command, globals: () => GlobalOptions) => void
const extraCommands: Register[] = []

/** Lets command modules that need heavier imports (network, lineage) register lazily from main. */
export function addCommands(...registers: Register[]): void {
  extraCommands.push(...registers)
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv, { from: 'user' })
    return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok
      return EXIT.usage
    }
    const verbose = program.opts<GlobalOptions>().verbose === true || argv.includes('--verbose') || argv.includes('-v')
    return reportError(err, verbose)
  }
}

export { CliError }

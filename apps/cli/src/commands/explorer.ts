import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { carSource, createExplorerServer, type ExplorerSource, openDataDir } from '@tally/explorer'
import type { Command } from 'commander'
import { CliError, EXIT, printJson } from '../output.ts'
import type { GlobalOptions } from '../program.ts'

interface Opened {
  source: ExplorerSource
  what: string
  note?: string
}

async function kindOf(path: string): Promise<'dir' | 'file'> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'file'
  } catch (err) {
    throw new CliError(`cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage)
  }
}

/** One data directory, or any number of export files. */
async function openInputs(inputs: string[]): Promise<Opened> {
  const kinds = await Promise.all(inputs.map(kindOf))
  if (kinds.includes('dir')) {
    if (inputs.length !== 1) throw new CliError('give one data directory, or export files only', EXIT.usage)
    const dir = resolve(inputs[0] as string)
    try {
      const opened = await openDataDir(dir)
      const out: Opened = { source: opened.source, what: `store ${opened.storeDir}` }
      if (opened.snapshot) out.note = 'a running node holds this store: showing a copy taken now (its own explorer shows live data)'
      return out
    } catch (err) {
      if (err instanceof Error && err.name === 'DataDirError') throw new CliError(err.message, EXIT.usage)
      throw err
    }
  }
  const files = inputs.map((f) => resolve(f))
  const source = carSource(files)
  try {
    // Read every file now, so a bad one is reported before the server starts.
    await source.pairs()
  } catch (err) {
    if (err instanceof Error && err.name === 'ExportReadError') throw new CliError(err.message, EXIT.usage, 'pass CAR files written by `tally export`')
    throw err
  }
  return { source, what: files.length === 1 ? (files[0] as string) : `${files.length} export files` }
}

function parsePort(text: string): number {
  const port = Number(text)
  if (!/^\d{1,5}$/.test(text) || port > 65535) throw new CliError(`--port ${text} is not a port number (0-65535)`, EXIT.usage)
  return port
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<string> {
  return new Promise((done) => {
    const on = (signal: string) => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      done(signal)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}

export function registerExplorer(program: Command, globals: () => GlobalOptions): void {
  program
    .command('explorer')
    .description('serve the web explorer over a node data directory or exported pair logs (CAR); Ctrl-C stops it')
    .argument('<inputs...>', 'a data directory, or one or more export.car files')
    .option('-p, --port <n>', 'port to listen on (0: any free port)', '0')
    .option('--host <address>', 'address to bind; anything but loopback exposes every pair log shown', '127.0.0.1')
    .action(async (inputs: string[], opts: { port: string; host: string }) => {
      const g = globals()
      const port = parsePort(opts.port)
      const opened = await openInputs(inputs)
      let server: Awaited<ReturnType<typeof createExplorerServer>>
      try {
        server = await createExplorerServer({ source: opened.source, host: opts.host, port })
      } catch (err) {
        await opened.source.close?.()
        if (err instanceof Error && err.name === 'ServerStartError') throw new CliError(err.message, EXIT.usage, 'pick another --port')
        throw err
      }
      const pairs = (await opened.source.pairs()).length
      if (g.json) printJson({ url: server.url, source: opened.what, pairs, ...(opened.note !== undefined ? { note: opened.note } : {}) })
      else {
        process.stdout.write(`explorer: ${server.url}  (${pairs} pair${pairs === 1 ? '' : 's'} from ${opened.what}; Ctrl-C stops)\n`)
        if (opened.note !== undefined) process.stderr.write(`note: ${opened.note}\n`)
      }
      await untilSignal()
      await server.close()
    })
}

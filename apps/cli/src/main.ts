#!/usr/bin/env node
// The polyfills libp2p needs on Node 20 load before anything else.
import '@tally/core'
import { runCli } from './program.ts'

// A closed pipe (`tally … | head`) is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})

process.exitCode = await runCli(process.argv.slice(2))

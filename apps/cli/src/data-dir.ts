import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/** The data directory: --data-dir, else $TALLY_DATA_DIR, else ~/.tally. */
export function resolveDataDir(flag: string | undefined): string {
  return resolve(flag ?? process.env['TALLY_DATA_DIR'] ?? join(homedir(), '.tally'))
}

import { writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { encode, issueCredential, loadOrCreateIdentity, ROLES, type Role } from '@tally/core'
import type { Command } from 'commander'
import { resolveDataDir } from '../data-dir.ts'
import { CliError, EXIT, printJson } from '../output.ts'
import type { GlobalOptions } from '../program.ts'

const YEAR_MS = 365 * 86_400_000

export function registerInit(program: Command, globals: () => GlobalOptions): void {
  program
    .command('init')
    .description('create this node’s identity (0600 key) and a self-issued credential in the data directory')
    .option('--jurisdiction <code>', 'ISO 3166 code for the self-issued credential', 'US')
    .option('--role <role...>', 'roles for the self-issued credential', ['consumer'])
    .action(async (opts: { jurisdiction: string; role: string[] }) => {
      const g = globals()
      const dir = resolveDataDir(g.dataDir)
      for (const r of opts.role)
        if (!(ROLES as readonly string[]).includes(r)) throw new CliError(`unknown role ${r}`, EXIT.usage, `roles: ${ROLES.join(', ')}`)
      const { identity, created } = await loadOrCreateIdentity(dir)
      const now = Date.now()
      const credential = issueCredential(identity, {
        subject: identity.peerId,
        roles: opts.role as Role[],
        jurisdiction: opts.jurisdiction.toUpperCase(),
        scope: {},
        notBefore: now,
        notAfter: now + YEAR_MS,
      })
      await mkdir(join(dir, 'credentials'), { recursive: true })
      const file = join(dir, 'credentials', 'self.cred')
      await writeFile(file, encode(credential))
      if (g.json) printJson({ dataDir: dir, peerId: identity.peerId, created, credential: file })
      else {
        process.stdout.write(`${created ? 'created' : 'found'} identity ${identity.peerId}\n`)
        process.stdout.write(`data directory ${dir}\nself-issued credential ${file}\n`)
      }
    })
}

import { readFile, writeFile } from 'node:fs/promises'
import {
  admitCredential,
  decode,
  decodeCredential,
  encode,
  isPeerId,
  issueCredential,
  loadOrCreateIdentity,
  ROLES,
  type Credential,
  type Role,
  type TrustPolicy,
} from '@tally/core'
import type { Command } from 'commander'
import { resolveDataDir } from '../data-dir.ts'
import { CliError, EXIT, printJson } from '../output.ts'
import type { GlobalOptions } from '../program.ts'

const DAY_MS = 86_400_000

/** Parse "1000USD" or "1000 USD" (minor units) into Money. */
export function parseMoney(text: string): { amount: number; asset: string } {
  const m = /^(\d{1,15})\s*([A-Z][A-Z0-9.-]{1,15})$/.exec(text.trim())
  if (m === null) throw new CliError(`cannot read amount ${JSON.stringify(text)}`, EXIT.usage, 'write minor units then the asset, e.g. 250000USD')
  return { amount: Number(m[1]), asset: m[2]! }
}

function parseRoles(list: string[]): Role[] {
  for (const r of list) {
    if (!(ROLES as readonly string[]).includes(r)) throw new CliError(`unknown role ${r}`, EXIT.usage, `roles: ${ROLES.join(', ')}`)
  }
  return list as Role[]
}

export async function readCredentialFile(file: string): Promise<Credential> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new CliError(`cannot open ${file}: ${(err as Error).message}`, EXIT.usage)
  }
  return decodeCredential(decode(bytes))
}

export function describeCredential(c: Credential): Record<string, unknown> {
  return {
    issuer: c.by,
    subject: c.body.subject,
    selfIssued: c.by === c.body.subject,
    roles: c.body.roles,
    jurisdiction: c.body.jurisdiction,
    scope: c.body.scope,
    notBefore: new Date(c.body.notBefore).toISOString(),
    notAfter: new Date(c.body.notAfter).toISOString(),
    ...(c.body.label !== undefined ? { label: c.body.label } : {}),
  }
}

export function registerCredential(program: Command, globals: () => GlobalOptions): void {
  const cred = program.command('credential').description('issue and inspect credentials')

  cred
    .command('issue')
    .description('sign a credential for a peer with this node’s identity')
    .requiredOption('--subject <peerId>', 'the peer the credential is for (use "self" for this node)')
    .requiredOption('--role <role...>', `roles granted (${ROLES.join(', ')})`)
    .requiredOption('--jurisdiction <code>', 'ISO 3166 code, e.g. DE or US-CA')
    .option('--days <n>', 'validity in days from now', '365')
    .option('--max-deal-value <money>', 'scope: largest deal, e.g. 5000000USD (minor units)')
    .option('--hardware <class...>', 'scope: hardware classes, e.g. gpu.h100')
    .option('--label <text>', 'free text, e.g. a registration number')
    .requiredOption('-o, --out <file>', 'where to write the credential (DAG-CBOR)')
    .action(
      async (opts: {
        subject: string
        role: string[]
        jurisdiction: string
        days: string
        maxDealValue?: string
        hardware?: string[]
        label?: string
        out: string
      }) => {
        const g = globals()
        const { identity } = await loadOrCreateIdentity(resolveDataDir(g.dataDir))
        const subject = opts.subject === 'self' ? identity.peerId : opts.subject
        if (!isPeerId(subject)) throw new CliError(`--subject ${opts.subject} is not an Ed25519 peer id`, EXIT.usage)
        const days = Number(opts.days)
        if (!Number.isInteger(days) || days <= 0 || days > 36_500) throw new CliError('--days must be a whole number between 1 and 36500', EXIT.usage)
        const now = Date.now()
        const credential = issueCredential(identity, {
          subject,
          roles: parseRoles(opts.role),
          jurisdiction: opts.jurisdiction.toUpperCase(),
          scope: {
            ...(opts.maxDealValue !== undefined ? { maxDealValue: parseMoney(opts.maxDealValue) } : {}),
            ...(opts.hardware !== undefined ? { hardwareClasses: opts.hardware } : {}),
          },
          notBefore: now,
          notAfter: now + days * DAY_MS,
          ...(opts.label !== undefined ? { label: opts.label } : {}),
        })
        await writeFile(opts.out, encode(credential), { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
          throw new CliError(`cannot write ${opts.out}: ${err.code === 'EEXIST' ? 'file exists' : err.message}`, EXIT.usage)
        })
        if (g.json) printJson({ file: opts.out, ...describeCredential(credential) })
        else
          process.stdout.write(
            `wrote ${opts.out}: ${credential.body.roles.join(',')} in ${credential.body.jurisdiction} for ${subject}, issued by ${identity.peerId}\n`,
          )
      },
    )

  cred
    .command('show')
    .description('verify a credential’s signature and print it; --trust judges it under a policy')
    .argument('<file>', 'credential file')
    .option('--role <role>', 'check that it admits this role now')
    .option('--trust <issuer...>', 'issuers to trust for --role (peer ids, "self" or "any")')
    .action(async (file: string, opts: { role?: string; trust?: string[] }) => {
      const g = globals()
      const credential = await readCredentialFile(file)
      let admitted: string | undefined
      if (opts.role !== undefined) {
        const [role] = parseRoles([opts.role])
        const policy: TrustPolicy = { issuers: { [role!]: opts.trust ?? ['self'] } }
        admitCredential(policy, credential, { role: role!, at: Date.now() })
        admitted = role
      }
      const view = { valid: true, ...describeCredential(credential), ...(admitted !== undefined ? { admittedFor: admitted } : {}) }
      if (g.json) printJson(view)
      else for (const [k, v] of Object.entries(view)) process.stdout.write(`${k.padEnd(12)} ${typeof v === 'string' ? v : JSON.stringify(v)}\n`)
    })
}

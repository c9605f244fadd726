/**
 * `tally-node <config.json|config.yaml>`: run one Tally node until SIGTERM.
 *
 * The file holds a node config (see nodeConfigSchema; `dataDir` is resolved
 * against the file's directory) plus an optional `offer` to announce, which
 * is signed with the node's key together with a self-issued provider
 * credential. When ready the process prints one JSON line
 * `{"peerId", "multiaddrs", "announced"}` on stdout. The app daemons will
 * replace this entry point; it stays small.
 */
import '@tally/core'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { issueCredential, parseWith, schema } from '@tally/core'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { hardwareClass } from '../capability.ts'
import { createTallyNode } from '../node.ts'
import { signOffer } from '../offer.ts'

const offerDraftSchema = z.strictObject({
  hardware: z.strictObject({ class: hardwareClass, count: schema.uint.min(1), model: schema.shortText.optional(), attestationSource: z.string() }),
  jurisdiction: schema.jurisdiction,
  price: z.strictObject({ perEpoch: schema.money, epochMs: schema.uint.min(1) }),
  sla: z.strictObject({ availabilityBp: schema.uint.max(10_000), latencyP95Us: schema.uint }),
  monitors: z.array(schema.peerId).default([]),
  arbiters: z.array(schema.peerId).default([]),
  rails: z.array(z.string()).min(1).default(['ledger']),
  validForMs: schema.uint.min(1000).default(24 * 3_600_000),
})

async function main(): Promise<void> {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write('usage: tally-node <config.json|config.yaml>\n')
    process.exit(2)
  }
  const text = await readFile(file, 'utf8')
  const raw = (file.endsWith('.json') ? JSON.parse(text) : parseYaml(text)) as Record<string, unknown> | null
  if (raw === null || typeof raw !== 'object') throw new Error(`${file}: expected a mapping`)
  const { offer: offerDraft, ...nodeConfig } = raw
  if (typeof nodeConfig['dataDir'] === 'string') nodeConfig['dataDir'] = resolve(dirname(file), nodeConfig['dataDir'])
  const draft = offerDraft === undefined ? undefined : parseWith(offerDraftSchema, offerDraft, 'offer')

  const node = await createTallyNode(nodeConfig)
  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    node.log('received %s, stopping', signal)
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${(err as Error).message}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  let announced: string[] = []
  if (draft !== undefined) {
    const now = Date.now()
    const { validForMs, ...terms } = draft
    const credential = issueCredential(node.identity, {
      subject: node.peerId,
      roles: ['provider'],
      jurisdiction: terms.jurisdiction,
      scope: {},
      notBefore: now - 60_000,
      notAfter: now + validForMs,
    })
    const offer = signOffer(node.identity, {
      ...terms,
      provider: node.peerId,
      credentials: [credential],
      validUntil: now + validForMs,
      addresses: node.multiaddrs().slice(0, 16),
    })
    announced = (await node.discovery.announce(offer)).keys
  }
  process.stdout.write(`${JSON.stringify({ peerId: node.peerId, multiaddrs: node.multiaddrs(), announced })}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`tally-node: ${(err as Error).name}: ${(err as Error).message}\n`)
  process.exit(1)
})

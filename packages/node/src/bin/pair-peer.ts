/**
 * `pair-peer <config.json>`: a Tally node that keeps pair logs in step over
 * /tally/pair/1.0.0, for multi-process tests, benchmarks and manual runs.
 *
 * Config (JSON): the node config (`dataDir` relative to the file; the
 * LevelDB lives in `<dataDir>/db`) plus
 *   role: 'provider' | 'consumer'
 *   offer?: { hardwareClass, jurisdiction }   provider: announce an offer
 *   find?: { hardwareClass, jurisdiction }    consumer: find a provider by
 *                                             capability and open the pair
 *   limits?: partial PairLimits
 * Stored pairs are resumed on start (either role).
 *
 * Prints one JSON object per line on stdout: `ready` once serving, then one
 * answer per command read from stdin (one per line):
 *   append N            append N notes concurrently -> {type:'appended', head}
 *   append-acked N      append N notes one by one, each awaited until the
 *                       counterparty acknowledged it durable -> {type:'acked', cids}
 *   sync [ms]           wait until both sides hold the same heads -> {type:'synced', heads}
 *   status              -> {type:'status', pairs}
 *   cids                -> {type:'cids', provider: [...], consumer: [...]}
 * Errors answer {type:'error', code, message}. SIGTERM stops cleanly.
 */
import '@tally/core'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { issueCredential, OPEN_TRUST_POLICY, type PeerIdString } from '@tally/core'
import { LevelStore, type PairDescriptor, type PairHeads } from '@tally/lineage'
import { z } from 'zod'
import { hardwareClass } from '../capability.ts'
import { createTallyNode, type TallyNode } from '../node.ts'
import { signOffer } from '../offer.ts'
import { type PairLimits, PairSessions } from '../pair-sessions.ts'

const capabilitySchema = z.strictObject({ hardwareClass, jurisdiction: z.string() })
const peerConfigSchema = z.looseObject({
  role: z.enum(['provider', 'consumer']),
  offer: capabilitySchema.optional(),
  find: capabilitySchema.optional(),
  limits: z.record(z.string(), z.unknown()).optional(),
})

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

function headsJson(h: PairHeads) {
  const one = (x: PairHeads['provider']) => (x === null ? null : { seq: x.seq, cid: x.cid.toString() })
  return { provider: one(h.provider), consumer: one(h.consumer) }
}

async function announce(node: TallyNode, cap: z.infer<typeof capabilitySchema>): Promise<string[]> {
  const now = Date.now()
  const credential = issueCredential(node.identity, {
    subject: node.peerId,
    roles: ['provider'],
    jurisdiction: cap.jurisdiction,
    scope: {},
    notBefore: now - 60_000,
    notAfter: now + 24 * 3_600_000,
  })
  const offer = signOffer(node.identity, {
    provider: node.peerId,
    hardware: { class: cap.hardwareClass, count: 1, attestationSource: 'declared' },
    jurisdiction: cap.jurisdiction,
    price: { perEpoch: { amount: 100, asset: 'USD' }, epochMs: 60_000 },
    sla: { availabilityBp: 9_900, latencyP95Us: 5_000 },
    monitors: [],
    arbiters: [],
    rails: ['ledger'],
    credentials: [credential],
    validUntil: now + 24 * 3_600_000,
    addresses: node.multiaddrs().slice(0, 16),
  })
  return (await node.discovery.announce(offer)).keys
}

/** Find a provider by capability; returns its peer id and offered addresses (bounded retries: the DHT may still be filling). */
async function findProvider(node: TallyNode, cap: z.infer<typeof capabilitySchema>): Promise<{ peer: PeerIdString; addrs: string[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    for await (const r of node.discovery.discover(cap, OPEN_TRUST_POLICY, { timeoutMs: 5_000, limit: 1 })) {
      if ('offer' in r) return { peer: r.peer, addrs: r.offer.body.addresses }
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`no provider found for ${cap.hardwareClass} in ${cap.jurisdiction}`)
}

async function main(): Promise<void> {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write('usage: pair-peer <config.json>\n')
    process.exit(2)
  }
  const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
  const { role, offer, find, limits, ...nodeConfig } = peerConfigSchema.parse(raw)
  if (typeof nodeConfig['dataDir'] !== 'string') throw new Error('config needs a dataDir')
  const dataDir = resolve(dirname(file), nodeConfig['dataDir'])
  nodeConfig['dataDir'] = dataDir

  const store = await LevelStore.open(join(dataDir, 'db'))
  const node = await createTallyNode(nodeConfig)
  const sessions = new PairSessions({
    node,
    store,
    log: node.log.newScope('pair'),
    // A provider serves any consumer that opens a pair with it.
    accept: (pair) => role === 'provider' && pair.provider === node.peerId,
    ...(limits === undefined ? {} : { limits: limits as Partial<PairLimits> }),
  })
  await node.register(sessions)

  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    node.log('received %s, stopping', signal)
    node
      .stop()
      .then(() => store.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`stop failed: ${(err as Error).message}\n`)
          process.exit(1)
        },
      )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  const announced = role === 'provider' && offer !== undefined ? await announce(node, offer) : []
  if (role === 'consumer' && find !== undefined && sessions.list().length === 0) {
    const found = await findProvider(node, find)
    const pair: PairDescriptor = { provider: found.peer, consumer: node.peerId }
    await sessions.connect(pair, found.addrs, { timeoutMs: 10_000 })
  }
  const pairs = () => sessions.list().map((s) => s.pair)
  out({ type: 'ready', peerId: node.peerId, multiaddrs: node.multiaddrs(), announced, pairs: pairs() })

  const firstPair = (): PairDescriptor => {
    const p = pairs()[0]
    if (p === undefined) throw new Error('no pair yet')
    return p
  }
  const commands = createInterface({ input: process.stdin })
  let queue: Promise<void> = Promise.resolve()
  commands.on('line', (line) => {
    queue = queue.then(async () => {
      const [cmd, arg] = line.trim().split(/\s+/)
      try {
        const pair = firstPair()
        const log = sessions.logOf(pair)
        switch (cmd) {
          case 'append': {
            const n = Number(arg ?? 1)
            await Promise.all(Array.from({ length: n }, (_, i) => log.append('note', { by: node.peerId, i })))
            return out({ type: 'appended', head: headsJson(log.heads())[log.role] })
          }
          case 'append-acked': {
            const n = Number(arg ?? 1)
            const cids: string[] = []
            for (let i = 0; i < n; i++) {
              const b = await log.append('note', { by: node.peerId, acked: i })
              await sessions.awaitRemoteDurable(pair, b.cid, 30_000)
              cids.push(b.cid.toString())
            }
            return out({ type: 'acked', cids })
          }
          case 'sync':
            await sessions.waitForSync(pair, Number(arg ?? 30_000))
            return out({ type: 'synced', heads: headsJson(log.heads()) })
          case 'status':
            return out({ type: 'status', pairs: sessions.list() })
          case 'cids': {
            const list = async (r: 'provider' | 'consumer') => {
              const xs: string[] = []
              for await (const { cid } of log.cids(r)) xs.push(cid.toString())
              return xs
            }
            return out({ type: 'cids', provider: await list('provider'), consumer: await list('consumer') })
          }
          default:
            return out({ type: 'error', code: 'UnknownCommand', message: `unknown command ${cmd}` })
        }
      } catch (err) {
        out({ type: 'error', code: (err as Error).name, message: (err as Error).message })
      }
    })
  })
}

main().catch((err: unknown) => {
  process.stderr.write(`pair-peer: ${(err as Error).name}: ${(err as Error).message}\n`)
  process.exit(1)
})

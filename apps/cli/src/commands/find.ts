import type { Command } from 'commander'
import { createLog } from '@tally/daemon'
import type { DiscoveryQuery, Offer } from '@tally/node'
import { DEFAULT_TRUST, type NetworkFlags, startConsumerPeer } from '../consumer.ts'
import { resolveDataDir } from '../data-dir.ts'
import { CliError, EXIT, printJson, Progress } from '../output.ts'
import type { GlobalOptions } from '../program.ts'
import { parseMoney } from './credential.ts'
import { withNetworkFlags } from './network-flags.ts'

export interface FindFlags extends NetworkFlags {
  hardware?: string
  jurisdiction?: string
  maxPrice?: string
  epochMs?: string
  limit: string
  timeout: string
}

export interface Found {
  offers: Offer[]
  skipped: { peer: string; code: string; message: string }[]
}

/** Find providers by capability over the DHT and fetch and verify their offers. */
export async function findOffers(peer: Awaited<ReturnType<typeof startConsumerPeer>>['peer'], f: FindFlags, showProgress: boolean): Promise<Found> {
  if (f.hardware === undefined && f.jurisdiction === undefined) throw new CliError('give --hardware, --jurisdiction or both', EXIT.usage)
  const progress = new Progress('finding providers', showProgress)
  const found: Found = { offers: [], skipped: [] }
  const query: DiscoveryQuery = {
    ...(f.hardware !== undefined ? { hardwareClass: f.hardware } : {}),
    ...(f.jurisdiction !== undefined ? { jurisdiction: f.jurisdiction.toUpperCase() } : {}),
    // --max-price is per epoch of --epoch-ms (default one minute); offers are compared by rate.
    ...(f.maxPrice !== undefined ? { maxPrice: { perEpoch: parseMoney(f.maxPrice), epochMs: Number(f.epochMs ?? 60_000) } } : {}),
  }
  const limit = Number(f.limit)
  for await (const r of peer.node.discovery.discover(query, DEFAULT_TRUST, { limit, timeoutMs: Number(f.timeout) })) {
    if ('offer' in r) found.offers.push(r.offer)
    else found.skipped.push({ peer: r.peer, code: r.skipped.code, message: r.skipped.message })
    progress.update(found.offers.length + found.skipped.length)
  }
  progress.done()
  found.offers.sort((a, b) => a.body.price.perEpoch.amount - b.body.price.perEpoch.amount)
  return found
}

export function describeOffer(o: Offer): Record<string, unknown> {
  const b = o.body
  return {
    provider: o.by,
    hardware: `${b.hardware.count}x ${b.hardware.class} (${b.hardware.attestationSource})`,
    jurisdiction: b.jurisdiction,
    price: `${b.price.perEpoch.amount} ${b.price.perEpoch.asset} / ${b.price.epochMs} ms`,
    monitors: b.monitors.length,
    arbiters: b.arbiters.length,
    rails: b.rails.join(','),
  }
}

export function registerFind(program: Command, globals: () => GlobalOptions): void {
  withNetworkFlags(
    program
      .command('find')
      .description('find providers by hardware class, jurisdiction and price; prints verified offers and why others were skipped')
      .option('--hardware <class>', 'hardware class, e.g. gpu.h100 or cpu.x86_64')
      .option('--jurisdiction <code>', 'ISO 3166 code, e.g. DE')
      .option('--max-price <money>', 'highest price per --epoch-ms, e.g. 500USD (minor units)')
      .option('--epoch-ms <ms>', 'the period --max-price is for', '60000')
      .option('--limit <n>', 'stop after this many providers', '20')
      .option('--timeout <ms>', 'how long to search', '10000'),
  ).action(async (f: FindFlags) => {
    const g = globals()
    const { peer } = await startConsumerPeer(resolveDataDir(g.dataDir), f, createLog('tally', { level: g.verbose ? 'debug' : 'error', pretty: true }))
    try {
      const found = await findOffers(peer, f, !g.json)
      if (g.json) printJson({ offers: found.offers.map(describeOffer), skipped: found.skipped })
      else {
        if (found.offers.length === 0) process.stdout.write('no provider found\n')
        for (const o of found.offers) {
          const d = describeOffer(o)
          process.stdout.write(`${d.provider}  ${d.jurisdiction}  ${d.hardware}  ${d.price}\n`)
        }
        for (const s of found.skipped) process.stdout.write(`skipped ${s.peer}: ${s.code}: ${s.message}\n`)
      }
      if (found.offers.length === 0) process.exitCode = EXIT.failed
    } finally {
      await peer.stop()
    }
  })
}

import { randomBytes } from 'node:crypto'
import { type PeerIdString, OPEN_TRUST_POLICY, type TrustPolicy } from '@tally/core'
import { createLog, type Log } from '@tally/daemon'
import { buildProposal, type ContractTerms, type Workload } from '@tally/deal'
import type { PairDescriptor, StoreWriteError } from '@tally/lineage'
import { type DiscoveryQuery, localNetwork, type NodeConfig, type Offer } from '@tally/node'
import { ConsumerHooks, type DealEngine, TallyPeer } from '@tally/peer'
import { LedgerRail, type Rail, railFromConfig } from '@tally/rails'
import { CliError, EXIT } from './output.ts'

export interface NetworkFlags {
  listen?: string[]
  bootstrap?: string[]
  peer?: string[]
  local?: boolean
  railCommand?: string
  railUrl?: string
  railTimeoutMs?: string
}

/** The kind of rail the flags choose, as a contract names it. */
export function railKind(f: NetworkFlags): ContractTerms['rail'] {
  return f.railCommand !== undefined ? 'command' : f.railUrl !== undefined ? 'http' : 'ledger'
}

/** The rail this consumer pays through: the embedded ledger unless a program or URL of the user's payment system is given. */
export function railFrom(f: NetworkFlags): Rail {
  if (f.railCommand !== undefined && f.railUrl !== undefined) throw new CliError('give --rail-command or --rail-url, not both', EXIT.usage)
  const timeoutMs = Number(f.railTimeoutMs ?? 30_000)
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new CliError(`--rail-timeout-ms must be a positive integer, not ${f.railTimeoutMs}`, EXIT.usage)
  try {
    if (f.railCommand !== undefined) return railFromConfig({ kind: 'command', command: f.railCommand.split(' ').filter(Boolean), timeoutMs })
    if (f.railUrl !== undefined) return railFromConfig({ kind: 'http', url: f.railUrl, timeoutMs })
  } catch (err) {
    throw new CliError(`bad payment rail: ${(err as Error).message}`, EXIT.usage)
  }
  return new LedgerRail()
}

export function nodeConfigFrom(f: NetworkFlags): Omit<NodeConfig, 'dataDir' | 'identity'> {
  return {
    listen: f.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: f.bootstrap ?? [],
    ...(f.local !== false ? { network: localNetwork() } : {}),
  }
}

/** A consumer peer run by the CLI itself: its own node, store and deal engines. `onStoreFailure`: see PeerOptions. */
export async function startConsumerPeer(
  dataDir: string,
  flags: NetworkFlags,
  log: Log = createLog('tally', { level: 'warn', pretty: true }),
  opts: { onStoreFailure?: (err: StoreWriteError) => void } = {},
) {
  let hooks: ConsumerHooks | undefined
  let peer: TallyPeer
  const rail = railFrom(flags)
  try {
    peer = await TallyPeer.start({
      dataDir,
      node: nodeConfigFrom(flags),
      log,
      addressBook: flags.peer ?? [],
      ...(opts.onStoreFailure === undefined ? {} : { onStoreFailure: opts.onStoreFailure }),
      acceptPair: (pair) => pair.consumer === peer.peerId,
      hooks: (p) => {
        hooks ??= new ConsumerHooks({
          store: p.store,
          rail,
          observations: (deal, epoch) => p.observationsFor(deal, epoch),
          arbitrate: (deal, dispute, appeal) => p.arbitrate(deal, dispute, appeal),
          onActive: (deal) => p.watchDeal(deal),
        })
        return hooks
      },
      onEngineEvent: (_pair, e) => {
        if (e.type === 'duty-failed') log.warn('duty failed', { duty: e.duty.type, err: e.error })
        else if (e.type === 'error') log.warn('deal engine error', { what: e.what, err: e.error })
        else if (e.type === 'rejected') log.warn('entry refused by the deal reducer', { err: e.error })
      },
    })
  } catch (err) {
    // LevelDB allows one process per store.
    if (err instanceof Error && /LOCK/.test(err.message)) {
      throw new CliError(
        `another tally process holds ${dataDir}`,
        EXIT.failed,
        'a `tally node` or `tally deal open` runs there: use `tally deal list/show/watch` against it, or another --data-dir',
      )
    }
    throw err
  }
  const ensureHooks = (): ConsumerHooks => {
    if (hooks === undefined) throw new CliError('consumer hooks not ready', EXIT.failed)
    return hooks
  }
  return { peer, hooks: ensureHooks }
}

export interface DealWishes {
  epochs: number
  monitors: PeerIdString[]
  quorum?: number
  arbiter?: PeerIdString
  appealArbiter?: PeerIdString | null
  collateral?: { amount: number; asset: string }
  minAvailabilityBp: number
  missing: 'hold' | 'pay' | 'refund'
  answerMs: number
  evidenceGraceMs: number
  appealMs: number
  /** The rail the contract names. */
  rail?: ContractTerms['rail']
}

/** Contract terms from a provider's verified offer and the consumer's wishes. */
export function termsFor(offer: Offer, wishes: DealWishes, count = 1): ContractTerms {
  const o = offer.body
  const monitors = wishes.monitors.filter((m) => o.monitors.includes(m))
  if (monitors.length === 0) throw new CliError(`provider ${offer.by} accepts none of the monitors asked for`, EXIT.failed)
  const arbiter = wishes.arbiter ?? o.arbiters[0]
  if (arbiter === undefined || !o.arbiters.includes(arbiter))
    throw new CliError(`provider ${offer.by} does not accept arbiter ${arbiter ?? '(none)'}`, EXIT.failed)
  const appeal = wishes.appealArbiter ?? null
  const rail = wishes.rail ?? 'ledger'
  if (!o.rails.includes(rail)) throw new CliError(`provider ${offer.by} does not accept the ${rail} rail (it accepts ${o.rails.join(', ')})`, EXIT.failed)
  return {
    nonce: randomBytes(8).toString('hex'),
    resources: { class: o.hardware.class, count: Math.min(count, o.hardware.count) },
    jurisdiction: o.jurisdiction,
    price: o.price.perEpoch,
    epochMs: o.price.epochMs,
    epochs: wishes.epochs,
    maxEpochs: wishes.epochs,
    sla: { availabilityBp: o.sla.availabilityBp, latencyP95Us: o.sla.latencyP95Us },
    rule: {
      version: 1,
      monitors: monitors.map((peer) => ({ peer, weight: 1 })),
      quorum: wishes.quorum ?? Math.floor(monitors.length / 2) + 1,
      availability: { minBp: wishes.minAvailabilityBp },
      latency: null,
      challenges: { identity: 'ignore', compute: 'ignore' },
      usage: 'required',
      missing: wishes.missing,
      payment: 'full',
    },
    arbiter,
    appealArbiter: appeal !== null && o.arbiters.includes(appeal) ? appeal : null,
    insurer: null,
    collateral: wishes.collateral ?? { amount: 0, asset: o.price.perEpoch.asset },
    rail,
    timeouts: { answerMs: wishes.answerMs, evidenceGraceMs: wishes.evidenceGraceMs, appealMs: wishes.appealMs },
  }
}

/** Open the pair with the provider and propose the contract; returns the deal id. */
export async function proposeDeal(
  peer: TallyPeer,
  hooks: () => ConsumerHooks,
  offer: Offer,
  terms: ContractTerms,
  workload: Workload,
): Promise<{ pair: PairDescriptor; engine: DealEngine; deal: string }> {
  const pair = { provider: offer.by, consumer: peer.peerId }
  const addrs = offer.body.addresses
  const engine = await peer.openPair(pair, addrs)
  const deal = await engine.propose(buildProposal(terms))
  await hooks().setWorkload(deal.toString(), workload)
  engine.poke()
  return { pair, engine, deal: deal.toString() }
}

export const DEFAULT_TRUST: TrustPolicy = OPEN_TRUST_POLICY
export type { DiscoveryQuery }

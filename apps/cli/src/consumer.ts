import { randomBytes } from 'node:crypto'
import { type PeerIdString, OPEN_TRUST_POLICY, type TrustPolicy } from '@tally/core'
import { createLog, type Log } from '@tally/daemon'
import { buildProposal, type ContractTerms, type Workload } from '@tally/deal'
import type { PairDescriptor } from '@tally/lineage'
import { type DiscoveryQuery, localNetwork, type NodeConfig, type Offer } from '@tally/node'
import { ConsumerHooks, type DealEngine, TallyPeer } from '@tally/peer'
import { LedgerRail } from '@tally/rails'
import { CliError, EXIT } from './output.ts'

export interface NetworkFlags {
  listen?: string[]
  bootstrap?: string[]
  peer?: string[]
  local?: boolean
}

export function nodeConfigFrom(f: NetworkFlags): Omit<NodeConfig, 'dataDir' | 'identity'> {
  return {
    listen: f.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: f.bootstrap ?? [],
    ...(f.local !== false ? { network: localNetwork() } : {}),
  }
}

/** A consumer peer run by the CLI itself: its own node, store and deal engines. */
export async function startConsumerPeer(dataDir: string, flags: NetworkFlags, log: Log = createLog('tally', { level: 'warn', pretty: true })) {
  let hooks: ConsumerHooks | undefined
  let peer: TallyPeer
  try {
    peer = await TallyPeer.start({
      dataDir,
      node: nodeConfigFrom(flags),
      log,
      addressBook: flags.peer ?? [],
      acceptPair: (pair) => pair.consumer === peer.peerId,
      hooks: (p) => {
        hooks ??= new ConsumerHooks({
          store: p.store,
          rail: new LedgerRail(),
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
    rail: 'ledger',
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

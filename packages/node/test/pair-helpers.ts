import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from '@tally/core'
import { LevelStore, MemoryStore, type PairDescriptor, pairIdOf, type Store } from '@tally/lineage'
import { type PairLimits, type PairSessionEvent, PairSessions, type PairSessionsOptions, type TallyNode } from '../src/index.ts'
import { loopbackNode } from './helpers.ts'

export interface Peer {
  node: TallyNode
  store: Store
  sessions: PairSessions
  events: PairSessionEvent[]
  /** Start a fresh PairSessions on the same node and store (a restart of the service). */
  restart(opts?: Partial<PairSessionsOptions>): Promise<PairSessions>
}

/** Limits that make tests fast: short stalls and backoff. */
export const TEST_LIMITS: Partial<PairLimits> = {
  frameTimeoutMs: 400,
  helloTimeoutMs: 2_000,
  keepaliveMs: 2_000,
  idleTimeoutMs: 6_000,
  backoffInitialMs: 50,
  backoffMaxMs: 500,
}

export async function pairPeer(opts: { store?: Store; sessions?: Partial<PairSessionsOptions> } = {}): Promise<Peer> {
  const node = await loopbackNode()
  const store = opts.store ?? new MemoryStore()
  const events: PairSessionEvent[] = []
  const make = (extra: Partial<PairSessionsOptions> = {}) =>
    new PairSessions({
      node,
      store,
      onEvent: (e) => events.push(e),
      ...opts.sessions,
      ...extra,
      limits: { ...TEST_LIMITS, ...opts.sessions?.limits, ...extra.limits },
    })
  const peer: Peer = {
    node,
    store,
    events,
    sessions: make(),
    async restart(extra = {}) {
      await peer.sessions.stop()
      peer.sessions = make(extra)
      await peer.sessions.start()
      return peer.sessions
    },
  }
  await peer.sessions.start()
  return peer
}

export async function stopPeers(peers: readonly (Peer | undefined)[]): Promise<void> {
  for (const p of peers) await p?.sessions.stop().catch(() => undefined)
  await Promise.allSettled(peers.map((p) => p?.node.stop()))
  await Promise.allSettled(peers.map((p) => p?.store.close()))
}

export function pairOf(provider: Peer, consumer: Peer): PairDescriptor {
  return { provider: provider.node.peerId, consumer: consumer.node.peerId }
}

/** Everything a store holds about a pair (entries, heads, and all meta), as comparable strings. */
export async function pairSnapshot(store: Store, pair: PairDescriptor): Promise<string[]> {
  const id = CID.parse(pairIdOf(pair).toString())
  const out: string[] = []
  for (const author of [pair.provider, pair.consumer]) {
    const h = await store.getHead(id, author)
    out.push(`head ${author} ${h?.seq ?? 0} ${h?.cid.toString() ?? '-'}`)
    for await (const { seq, cid } of store.cids(id, author, 1, Number.MAX_SAFE_INTEGER)) {
      const bytes = await store.getBlock(cid)
      out.push(`entry ${author} ${seq} ${cid} ${Buffer.from(bytes ?? []).toString('hex')}`)
    }
  }
  for await (const { key, value } of store.metaEntries('')) out.push(`meta ${key} ${Buffer.from(value).toString('hex')}`)
  return out
}

/** CIDs of both chains of `pair` in `store`, in seq order. */
export async function chainCids(store: Store, pair: PairDescriptor): Promise<{ provider: string[]; consumer: string[] }> {
  const id = pairIdOf(pair)
  const list = async (author: string) => {
    const out: string[] = []
    for await (const { cid } of store.cids(id, author, 1, Number.MAX_SAFE_INTEGER)) out.push(cid.toString())
    return out
  }
  return { provider: await list(pair.provider), consumer: await list(pair.consumer) }
}

export async function tempLevelStore(): Promise<{ store: LevelStore; dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tally-pair-'))
  const store = await LevelStore.open(join(dir, 'db'))
  return { store, dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

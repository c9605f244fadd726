import { Identity, issueCredential, type Credential } from '@tally/core'
import { createTallyNode, localNetwork, signOffer, type NodeConfig, type Offer, type OfferBody, type TallyNode } from '../src/index.ts'

/** A node on loopback with a fresh identity. */
export async function loopbackNode(overrides: Partial<NodeConfig> = {}): Promise<TallyNode> {
  return createTallyNode({
    identity: Identity.generate(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    network: localNetwork(),
    bootTimeoutMs: 5_000,
    ...overrides,
  })
}

export function dialAddress(node: TallyNode): string {
  const addr = node.multiaddrs().find((a) => a.startsWith('/ip4/127.0.0.1/'))
  if (addr === undefined) throw new Error(`node ${node.peerId} has no loopback address`)
  return addr
}

/** A seed and `n` nodes bootstrapped from it, started in small batches (2 cores). */
export async function loopbackNetwork(n: number, overrides: Partial<NodeConfig> = {}): Promise<TallyNode[]> {
  const seed = await loopbackNode(overrides)
  const nodes = [seed]
  const bootstrap = [dialAddress(seed)]
  for (let i = 0; i < n; i += 4) {
    const batch = await Promise.all(Array.from({ length: Math.min(4, n - i) }, () => loopbackNode({ ...overrides, bootstrap })))
    nodes.push(...batch)
  }
  return nodes
}

export async function stopAll(nodes: readonly TallyNode[]): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n.stop()))
}

export function selfCredential(id: Identity, jurisdiction: string, opts: { issuer?: Identity; notAfter?: number } = {}): Credential {
  return issueCredential(opts.issuer ?? id, {
    subject: id.peerId,
    roles: ['provider'],
    jurisdiction,
    scope: {},
    notBefore: Date.now() - 60_000,
    notAfter: opts.notAfter ?? Date.now() + 3_600_000,
  })
}

export function offerBody(id: Identity, overrides: Partial<OfferBody> = {}): OfferBody {
  const jurisdiction = overrides.jurisdiction ?? 'DE'
  return {
    provider: id.peerId,
    hardware: { class: 'gpu.h100', count: 8, model: 'H100 SXM5 80GB', attestationSource: 'nvidia-smi' },
    jurisdiction,
    price: { perEpoch: { amount: 250, asset: 'USD' }, epochMs: 60_000 },
    sla: { availabilityBp: 9_950, latencyP95Us: 2_000 },
    monitors: [],
    arbiters: [],
    rails: ['ledger'],
    credentials: [selfCredential(id, jurisdiction)],
    validUntil: Date.now() + 3_600_000,
    addresses: [],
    ...overrides,
  }
}

export function makeOffer(id: Identity, overrides: Partial<OfferBody> = {}): Offer {
  return signOffer(id, offerBody(id, overrides))
}

/** Poll `check` until it holds or `ms` elapses (bounded loop; the test then asserts). */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000, stepMs = 50): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, stepMs))
  }
  return check()
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

import { multiaddr } from '@multiformats/multiaddr'
import { Identity } from '@tally/core'
import { z } from 'zod'
import {
  DEFAULT_BOOT_TIMEOUT_MS,
  DEFAULT_FIND_TIMEOUT_MS,
  DEFAULT_OBSERVATION_SHARDS,
  DEFAULT_PROVIDER_RECORD_VALIDITY_MS,
  DEFAULT_REPROVIDE_INTERVAL_MS,
  DEFAULT_REPROVIDE_JITTER,
  MAX_OBSERVATION_SHARDS,
  OFFER_FETCH_TIMEOUT_MS,
} from './constants.ts'
import { NodeConfigError } from './errors.ts'
import { isIpOrCidr } from './gossip-score.ts'

function parsesAsMultiaddr(s: string): boolean {
  try {
    multiaddr(s)
    return true
  } catch {
    return false
  }
}

const multiaddrText = z.string().max(512).refine(parsesAsMultiaddr, { message: 'expected a multiaddr such as /ip4/127.0.0.1/tcp/4001' })
/** A bootstrap entry must name the peer it expects (`.../p2p/<peer id>`), so the dial is authenticated. */
const peerMultiaddrText = multiaddrText.refine((s) => /\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/.test(s), { message: 'expected a multiaddr ending in /p2p/<peer id>' })
const ms = z
  .number()
  .int()
  .positive()
  .max(2 ** 31 - 1)

/**
 * Node configuration. Every field but `bootstrap` has a default; defaults
 * suit a public node. For loopback or a LAN use `localNetwork()` for
 * `network`, which keeps private addresses in the DHT, exempts the range
 * from the inbound connection rate limit and from gossipsub's IP
 * colocation penalty.
 */
export const nodeConfigSchema = z.strictObject({
  /** Holds `identity.key` (mode 0600); needed unless `identity` is given. */
  dataDir: z.string().min(1).optional(),
  /** An identity to use instead of the data directory's (several nodes in one process). */
  identity: z.custom<Identity>((v) => v instanceof Identity, { message: 'expected an Identity' }).optional(),
  /** Listen addresses. Default `/ip4/0.0.0.0/tcp/4001`; tests use `/ip4/127.0.0.1/tcp/0`. */
  listen: z.array(multiaddrText).min(1).max(16).default(['/ip4/0.0.0.0/tcp/4001']),
  /** Addresses to announce instead of the listen addresses (public IP behind NAT, DNS names). */
  announce: z.array(multiaddrText).max(16).optional(),
  /** Peers to join through, any Tally node. Empty: this node is a seed others bootstrap from. */
  bootstrap: z.array(peerMultiaddrText).max(64).default([]),
  network: z
    .strictObject({
      /** Keep loopback/private addresses in DHT records (loopback and LAN networks). Default false. */
      allowPrivateAddresses: z.boolean().default(false),
      /** Multiaddr ranges exempt from connection limits and inbound rate limits, e.g. `/ip4/127.0.0.0/ipcidr/8`. Default none. */
      allowList: z.array(multiaddrText).max(64).default([]),
      /** Find peers on the LAN by multicast DNS. Default false. */
      mdns: z.boolean().default(false),
      /** IPs or CIDR ranges exempt from gossipsub's IP colocation penalty (loopback, one NAT). Default none. */
      gossipIpColocationWhitelist: z
        .array(z.string().refine(isIpOrCidr, { message: 'expected an IP address or CIDR range' }))
        .max(64)
        .default([]),
      /**
       * How often each connection is pinged to find dead peers and measure RTT. Default 30 s, not libp2p's
       * 10 s: TCP NAT mappings outlive it, our protocols time out on their own first, and a node holding 50
       * connections then spends ~2 pings/s instead of ~10 (each is a new stream: ~1.5 ms CPU per side).
       */
      pingIntervalMs: ms.default(30_000),
      /** Connection cap. Default 300. */
      maxConnections: z.number().int().min(1).max(10_000).default(300),
    })
    .prefault({}),
  dht: z
    .strictObject({
      /** Kademlia k. Default 20. */
      kBucketSize: z.number().int().min(2).max(100).default(20),
      /** How often the node looks itself up to keep its routing table fresh. Default 5 min. */
      querySelfIntervalMs: ms.default(5 * 60_000),
      /** How long other peers keep our provider records. Default 30 min. */
      providerRecordValidityMs: ms.default(DEFAULT_PROVIDER_RECORD_VALIDITY_MS),
    })
    .prefault({}),
  discovery: z
    .strictObject({
      /** Re-provide announced keys this often. Default 10 min. */
      reprovideIntervalMs: ms.default(DEFAULT_REPROVIDE_INTERVAL_MS),
      /** Fractional jitter on that interval. Default 0.1. */
      reprovideJitter: z.number().min(0).max(0.5).default(DEFAULT_REPROVIDE_JITTER),
      /** findProviders timeout. Default 10 s. */
      findTimeoutMs: ms.default(DEFAULT_FIND_TIMEOUT_MS),
      /** Offer fetch timeout, dial included. Default 5 s. */
      offerTimeoutMs: ms.default(OFFER_FETCH_TIMEOUT_MS),
    })
    .prefault({}),
  gossip: z
    .strictObject({
      /** Observation topic shards; every node of a network must agree. Default 16. */
      observationShards: z.number().int().min(1).max(MAX_OBSERVATION_SHARDS).default(DEFAULT_OBSERVATION_SHARDS),
    })
    .prefault({}),
  /** Bound on dialing the bootstrap list and the first self-lookup at start. Default 10 s. */
  bootTimeoutMs: ms.default(DEFAULT_BOOT_TIMEOUT_MS),
})

/** Configuration as written by a user (defaults optional). */
export type NodeConfig = z.input<typeof nodeConfigSchema>
/** Configuration with every default filled in. */
export type ResolvedNodeConfig = z.output<typeof nodeConfigSchema>

/** Validate `value` as a node configuration, raising `NodeConfigError` naming the first bad field. */
export function parseNodeConfig(value: unknown): ResolvedNodeConfig {
  const result = nodeConfigSchema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    const path = issue?.path.length ? issue.path.join('.') : '(root)'
    throw new NodeConfigError(`invalid node config: ${path}: ${issue?.message ?? 'malformed'}`, { path })
  }
  if (result.data.identity === undefined && result.data.dataDir === undefined) {
    throw new NodeConfigError('invalid node config: needs a dataDir (for its identity key) or an identity')
  }
  return result.data
}

/** `network` settings for nodes on loopback (127.0.0.0/8): private addresses kept, no rate or colocation limits within the range. */
export function localNetwork(): NonNullable<NodeConfig['network']> {
  return {
    allowPrivateAddresses: true,
    allowList: ['/ip4/127.0.0.0/ipcidr/8'],
    mdns: false,
    gossipIpColocationWhitelist: ['127.0.0.0/8'],
  }
}

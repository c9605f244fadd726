import { BlockList, isIP } from 'node:net'
import type { PeerScoreParams, PeerScoreThresholds, TopicScoreParams } from '@libp2p/gossipsub/score'

/**
 * Per-topic score parameters for every Tally topic. Without an entry in
 * `scoreParams.topics` gossipsub counts no invalid message against anyone
 * (LIBP2P-NOTES pitfall 7), so each topic we use is listed.
 *
 * - P4 (invalid messages) carries the weight: counter squared x -20, decaying
 *   x0.9 per second. Two rejected messages (-80) reach the publish
 *   threshold, three (-180) the graylist: the peer's traffic is then
 *   dropped unread, and any negative score prunes it from our meshes at the
 *   next heartbeat. Validators return 'ignore', not 'reject', for anything
 *   an honest relay could disagree on (clock skew, replays), so only forged,
 *   malformed, oversized or flooding traffic costs standing.
 * - P1/P2 (time in mesh, first deliveries) give a small positive score, at
 *   most ~16 per topic and 20 overall, so good history never outweighs
 *   more than one invalid message.
 * - P3/P3b (mesh delivery deficit) are off: observations arrive ~1/s per
 *   shard, too sparse for a delivery quota to separate honest from idle peers.
 */
export const TOPIC_SCORE_PARAMS: TopicScoreParams = {
  topicWeight: 1,
  timeInMeshWeight: 0.02,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 300,
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 10,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 100,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -20,
  invalidMessageDeliveriesDecay: 0.9,
}

/**
 * Below gossipThreshold a peer gets no IHAVE gossip from us; below
 * publishThreshold we do not flood-publish to it; below graylistThreshold
 * its RPCs are ignored entirely. PX is effectively off (threshold 100 is
 * above any attainable score): peers come from the DHT, not from pruners.
 */
export const SCORE_THRESHOLDS: PeerScoreThresholds = {
  gossipThreshold: -40,
  publishThreshold: -80,
  graylistThreshold: -160,
  acceptPXThreshold: 100,
  opportunisticGraftThreshold: 5,
}

/**
 * A set of IP addresses and CIDR ranges whose `has(ip)` answers range
 * membership: gossipsub only ever calls `has` on its colocation whitelist,
 * so a whole loopback or NAT range can be exempted with one entry.
 */
export class IpRangeSet extends Set<string> {
  readonly #ranges = new BlockList()

  constructor(entries: Iterable<string> = []) {
    super()
    for (const entry of entries) this.add(entry)
  }

  override add(entry: string): this {
    super.add(entry)
    const slash = entry.indexOf('/')
    if (slash > 0) {
      const ip = entry.slice(0, slash)
      const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4'
      this.#ranges.addSubnet(ip, Number(entry.slice(slash + 1)), family)
    } else if (isIP(entry) !== 0) {
      this.#ranges.addAddress(entry, isIP(entry) === 6 ? 'ipv6' : 'ipv4')
    }
    return this
  }

  override has(ip: string): boolean {
    if (super.has(ip)) return true
    const family = isIP(ip)
    return family !== 0 && this.#ranges.check(ip, family === 6 ? 'ipv6' : 'ipv4')
  }
}

/** True when `entry` is an IP address or an IP/prefix CIDR range. */
export function isIpOrCidr(entry: string): boolean {
  const slash = entry.indexOf('/')
  if (slash < 0) return isIP(entry) !== 0
  const family = isIP(entry.slice(0, slash))
  const bits = entry.slice(slash + 1)
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false
  return Number(bits) <= (family === 6 ? 128 : 32)
}

/**
 * Peer-score parameters for `topics`. IP colocation (P6) keeps the
 * gossipsub default (-5 x surplus squared past 10 peers per IP) except for
 * `colocationWhitelist`: without it, more than ~10 peers on loopback or
 * behind one NAT are graylisted wholesale (pitfall 7).
 */
export function scoreParams(topics: readonly string[], colocationWhitelist: readonly string[]): Partial<PeerScoreParams> {
  return {
    topics: Object.fromEntries(topics.map((t) => [t, { ...TOPIC_SCORE_PARAMS }])),
    topicScoreCap: 20,
    appSpecificScore: () => 0,
    appSpecificWeight: 1,
    IPColocationFactorWeight: -5,
    IPColocationFactorThreshold: 10,
    IPColocationFactorWhitelist: new IpRangeSet(colocationWhitelist),
    behaviourPenaltyWeight: -10,
    behaviourPenaltyThreshold: 0,
    behaviourPenaltyDecay: 0.2,
    decayInterval: 1000,
    decayToZero: 0.01,
    // A peer that reconnects keeps its bad score for an hour.
    retainScore: 3600 * 1000,
  }
}

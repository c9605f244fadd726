import { sha256, type PeerIdString } from '@tally/core'
import { DEFAULT_OBSERVATION_SHARDS, MAX_OBSERVATION_SHARDS, OBSERVATION_TOPIC_PREFIX, WARRANT_TOPIC } from './constants.ts'

const encoder = new TextEncoder()

function checkShards(shards: number): void {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_OBSERVATION_SHARDS) {
    throw new RangeError(`observation shards must be an integer in 1..${MAX_OBSERVATION_SHARDS}, got ${shards}`)
  }
}

/**
 * Shard of a provider's observations: the first two bytes of
 * sha256(UTF-8 of the provider's peer id string), big-endian, mod `shards`.
 */
export function observationShard(provider: PeerIdString, shards = DEFAULT_OBSERVATION_SHARDS): number {
  checkShards(shards)
  const digest = sha256(encoder.encode(provider))
  return (((digest[0] ?? 0) << 8) | (digest[1] ?? 0)) % shards
}

/** `/tally/obs/1/<shard>`: the topic on which observations about `provider` travel. */
export function observationTopic(provider: PeerIdString, shards = DEFAULT_OBSERVATION_SHARDS): string {
  return `${OBSERVATION_TOPIC_PREFIX}${observationShard(provider, shards)}`
}

/** Every observation topic for a network with `shards` shards. */
export function observationTopics(shards = DEFAULT_OBSERVATION_SHARDS): string[] {
  checkShards(shards)
  return Array.from({ length: shards }, (_, i) => `${OBSERVATION_TOPIC_PREFIX}${i}`)
}

/** Every topic Tally nodes score and validate. */
export function tallyTopics(shards = DEFAULT_OBSERVATION_SHARDS): string[] {
  return [...observationTopics(shards), WARRANT_TOPIC]
}

import { type CID, type PeerIdString, parseWith, schema, toBlock } from '@tally/core'
import type { PairDescriptor, PartyRole } from './api.ts'
import { NotAPartyError } from './errors.ts'

export const PAIR_TYPE = 'tally-pair'

export const pairDescriptorSchema = schema.z.strictObject({ provider: schema.peerId, consumer: schema.peerId })
export const partyRoleSchema = schema.z.enum(['provider', 'consumer'])

/** Body of the 'open' entry that starts each chain. */
export const openBodySchema = schema.z.strictObject({ pair: pairDescriptorSchema, role: partyRoleSchema })
export type OpenBody = { pair: PairDescriptor; role: PartyRole }

/** Check an untrusted value as a pair descriptor; provider and consumer must differ. */
export function parsePairDescriptor(value: unknown): PairDescriptor {
  const pair = parseWith(pairDescriptorSchema, value, 'pair descriptor')
  if (pair.provider === pair.consumer) throw new NotAPartyError('provider and consumer of a pair must differ')
  return pair
}

const idCache = new Map<string, CID>()

/** The pair id: CID of dagcbor({consumer, provider, type: 'tally-pair'}). */
export function pairIdOf(pair: PairDescriptor): CID {
  const key = `${pair.provider}/${pair.consumer}`
  let id = idCache.get(key)
  if (id === undefined) {
    id = toBlock({ consumer: pair.consumer, provider: pair.provider, type: PAIR_TYPE }).cid
    if (idCache.size > 1024) idCache.clear()
    idCache.set(key, id)
  }
  return id
}

/** The role `peer` plays in `pair`; throws NotAPartyError for a third party. */
export function roleOf(pair: PairDescriptor, peer: PeerIdString): PartyRole {
  if (peer === pair.provider) return 'provider'
  if (peer === pair.consumer) return 'consumer'
  throw new NotAPartyError(`peer ${peer} is not a party of this pair`, { peer })
}

export function otherRole(role: PartyRole): PartyRole {
  return role === 'provider' ? 'consumer' : 'provider'
}

export function partyOf(pair: PairDescriptor, role: PartyRole): PeerIdString {
  return role === 'provider' ? pair.provider : pair.consumer
}

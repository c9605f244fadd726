/**
 * @tally/peer: the running peer. `TallyPeer` wires one identity, one
 * LevelDB and one libp2p node to a pair session and a `DealEngine` per
 * pair; the engine drives deals from the reducer's duties.
 */
import '@tally/core'

export * from './deal-engine.ts'
export * from './peer.ts'
export * from './provider-hooks.ts'
export * from './consumer-hooks.ts'
export * from './views.ts'
export * from './control-routes.ts'

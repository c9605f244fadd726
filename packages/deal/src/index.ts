/**
 * @tally/deal: the pure heart of Tally. Contract terms, the evidence rule
 * language (v1) and its deterministic evaluation, monitor observations,
 * the deal reducer over a pair log (state, entry) -> state or a typed
 * rejection, replay for verification, duties and body builders for the
 * daemons, payment-rail interface, and the fan-out report. No I/O, no
 * clock: time comes from entries or arguments.
 */
export * from './aggregate.ts'
export * from './attestation.ts'
export * from './bodies/index.ts'
export * from './builders.ts'
export * from './certificate.ts'
export * from './contract.ts'
export * from './duties.ts'
export * from './epochs.ts'
export * from './errors.ts'
export * from './evidence.ts'
export { dealBalances, recomputeBalances } from './ledger.ts'
export * from './money.ts'
export * from './observation.ts'
export { PMap } from './pmap.ts'
export * from './rail.ts'
export { chainStep, reduce } from './reducer.ts'
export { MAX_FOREIGN_OBSERVATIONS_PER_EPOCH, MAX_OBSERVATIONS_PER_EPOCH } from './transitions/execute.ts'
export * from './replay.ts'
export * from './rule.ts'
export * from './ruling.ts'
export * from './state.ts'
export * from './summary.ts'
export * from './verdict.ts'

/**
 * @tally/rails: payment rails. Settlement is the countersigned vouchers
 * in the pair log; a rail moves value for each release and reports an
 * outcome that is recorded as a `rail-result` entry. Ships the embedded
 * ledger rail, a command rail and an HTTP rail.
 */
export * from './errors.ts'
export * from './rail.ts'
export * from './ledger.ts'
export * from './command.ts'
export * from './http.ts'
export * from './config.ts'

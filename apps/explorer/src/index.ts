/**
 * @tally/explorer: a web page over pair logs. Serves, on 127.0.0.1 by
 * default, the pairs of exported CAR files (`carSource`) or of a node's
 * store (`storeSource`, `openDataDir`): both chains' timeline, deals with
 * their epochs, verdicts, vouchers, disputes and rulings, balances, each
 * monitor's availability and latency over time, and what verification and
 * the deal reducer's replay found wrong.
 */
export { createExplorerServer, createExplorerHandler, type ExplorerServer, type ExplorerServerOptions, type ExplorerHandlerOptions } from './server.ts'
export { type ExplorerSource, DetailCache } from './source.ts'
export { carSource, loadExport } from './car-source.ts'
export { storeSource, readPair, type StoreSourceOptions } from './store-source.ts'
export { openDataDir, findStoreDir, STORE_SUBDIR, type OpenedDataDir } from './data-dir.ts'
export { buildDetail, summaryOf } from './detail.ts'
export { type PairRecord, mergeChains, checkChains, recordOf } from './record.ts'
export { summarizeEntry } from './entry-summary.ts'
export { monitorSeries } from './monitors.ts'
export * from './errors.ts'
export type * from './view.ts'

/**
 * @tally/lineage: the pair log. Two single-writer hash chains per
 * (provider, consumer) pair with cross-links, stored in LevelDB or memory
 * with group-committed durable writes; ingest with gap, fork and signature
 * checks; equivocation proofs; countersigned checkpoints with RFC 6962
 * inclusion proofs; CAR export, import and offline verification.
 */
export * from './api.ts'
export * from './errors.ts'
export { pairIdOf, roleOf, otherRole, partyOf, parsePairDescriptor, PAIR_TYPE, openBodySchema, pairDescriptorSchema, type OpenBody } from './pair.ts'
export type { Store, StoreBatch, StoredHead, EntryWrite, HeadWrite, ChainEntry } from './store.ts'
export { MemoryStore } from './store-memory.ts'
export { LevelStore, type LevelStoreOptions } from './store-level.ts'
export { storeWriteError, storeOpenFault, storeRefusal } from './store-faults.ts'
export { GroupCommitter, MAX_GROUP_BATCHES, MAX_GROUP_BYTES } from './group-commit.ts'
export { PairLog, DEFAULT_MAX_CLOCK_SKEW_MS, checkpointMetaPrefix, type PairLogOptions } from './pair-log.ts'
export { signEntryFast, decodeEntryFast, scanEnvelope, type EnvelopeScan } from './entry-codec.ts'
export { pickNext, mergeOrder, type MergeNode, type MergeChoice } from './timeline.ts'
export * from './merkle.ts'
export {
  type EquivocationProof,
  type Equivocation,
  makeEquivocationProof,
  verifyEquivocationProof,
  encodeEquivocationProof,
  decodeEquivocationProof,
  EQUIVOCATION_PROOF_TYPE,
} from './equivocation.ts'
export * from './checkpoint-statement.ts'
export { type CheckpointState, type SeqPair, type CoverageReader, newLeaves, coverage } from './coverage.ts'
export { proposeCheckpoint, cosignCheckpoint, checkStatement, type ProposeOptions, type CosignOptions, type CheckpointContext } from './checkpoint.ts'
export {
  exportPairLog,
  exportPairLogBytes,
  writePairLogExport,
  parseManifest,
  manifestSchema,
  carHeader,
  EXPORT_TYPE,
  EXPORT_VERSION,
  type ExportManifest,
  type ExportOptions,
} from './car.ts'
export { scanCar, CarScanner, type ScannedBlock, type ScanProblem } from './car-scan.ts'
export { verifyExport, analyzeExport, MAX_PROBLEMS, type ExportAnalysis } from './verify.ts'
export { importCar, openExport, type ImportResult, type OpenedExport } from './import.ts'
export {
  inclusionProof,
  verifyInclusion,
  encodeInclusionProof,
  decodeInclusionProof,
  checkpointLeaves,
  signedCheckpoint,
  checkpointConsistency,
  witnessCosign,
  verifyWitness,
  INCLUSION_PROOF_TYPE,
  WITNESS_DOC_TYPE,
  type InclusionProof,
  type SignedCheckpoint,
  type WitnessBody,
  type WitnessOptions,
} from './inclusion.ts'
export { measureSyncPutRate, measureHashDecodeRate } from './limits.ts'

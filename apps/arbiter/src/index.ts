/**
 * @tally/arbiter: the tally-arbiter daemon. `Arbiter` serves
 * /tally/arbitrate/1.0.0 and keeps its cases on disk; `decideCase` and
 * `judgeDispute` are the pure decision (arbitration policy v1).
 */
export { Arbiter, type ArbiterOptions, type ArbiterStatus } from './arbiter.ts'
export { CaseStore, type CaseRecord, type CaseStatus, type CaseFile } from './case-store.ts'
export { arbiterSettingsSchema, loadArbiterConfig, type ArbiterConfig, type ArbiterSettings } from './config.ts'
export { registerControlRoutes } from './control.ts'
export {
  ARBITRATION_POLICY_VERSION,
  decideCase,
  judgeDispute,
  type Decision,
  type DecisionRefusal,
  type DisputeCase,
  type EpochFinding,
  type Judgement,
  type JudgeContext,
} from './decide.ts'
export { CaseStoreError } from './errors.ts'
export { examineRecord, type ExaminedRecord } from './record.ts'

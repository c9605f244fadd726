import { TallyError } from '@tally/core'

/** An Akash SDL file is not YAML, or not a YAML mapping. */
export class SdlParseError extends TallyError {}
/** An Akash SDL declares a version this reader does not support. */
export class SdlVersionError extends TallyError {}
/** An Akash SDL is YAML but a field is missing, mistyped or has a bad unit. */
export class SdlInvalidError extends TallyError {}
/** The requested service or compute profile is absent or ambiguous in the SDL. */
export class SdlServiceError extends TallyError {}
/** A run specification is unusable (empty command, bad deal id, bad cwd, bad limits). */
export class RunSpecError extends TallyError {}
/** The workload process could not be started at all. */
export class SpawnError extends TallyError {}
/** Challenge parameters are out of range or an answer is malformed. */
export class ChallengeParamsError extends TallyError {}
/** The GPU challenge solver (python + torch on CUDA) is unavailable or failed. */
export class GpuSolverError extends TallyError {}
/** Hardware could not be probed and nothing was declared in its place. */
export class AttestationError extends TallyError {}
/** A probe's output (nvidia-smi, procfs) is not in the expected format. */
export class ProbeParseError extends TallyError {}

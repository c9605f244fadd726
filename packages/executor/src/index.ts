/**
 * @tally/executor: runs the consumer's workload on the provider for real
 * (argv, allow-listed env, per-deal work directory, wall/CPU/memory
 * limits), meters it per epoch (CPU, peak RSS, GPU busy time, chained log
 * hash), attests the hardware from nvidia-smi or procfs, reads Akash SDL
 * compute profiles, and solves/checks the monitors' compute challenge.
 */
export * from './errors.ts'
export * from './hardware.ts'
export * from './attest.ts'
export * from './manifest.ts'
export * from './units.ts'
export * from './akash.ts'
export * from './procfs.ts'
export * from './logs.ts'
export * from './gpu.ts'
export * from './run.ts'
export * from './challenge.ts'
export * from './challenge-gpu.ts'

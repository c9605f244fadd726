import { runProbe } from './attest.ts'
import { NVIDIA_SMI_UTIL_QUERY, parseNvidiaSmiUtilisation } from './hardware.ts'

/**
 * Device-level GPU metering for a run: samples utilisation of the GPUs
 * assigned to it (CUDA_VISIBLE_DEVICES) and integrates busy time. The
 * driver reports utilisation per device, not per process, so a GPU must
 * be dedicated to one run for the figure to be that run's.
 */
export class GpuMeter {
  readonly #indices: ReadonlySet<number>
  readonly #nvidiaSmi: string
  #last: number | null = null
  #inFlight = false
  busyMs = 0
  utilSum = 0
  utilSamples = 0
  maxMemoryBytes = 0
  failures = 0

  constructor(indices: readonly number[], nvidiaSmi = 'nvidia-smi') {
    this.#indices = new Set(indices)
    this.#nvidiaSmi = nvidiaSmi
  }

  /** Take one sample; overlapping calls are skipped because nvidia-smi can be slow. */
  async sample(nowMs: number): Promise<void> {
    if (this.#inFlight) return
    this.#inFlight = true
    try {
      const res = await runProbe(this.#nvidiaSmi, NVIDIA_SMI_UTIL_QUERY, 5000)
      if (!res.ok) {
        this.failures++
        return
      }
      const rows = parseNvidiaSmiUtilisation(res.stdout).filter((r) => this.#indices.has(r.index))
      const dt = this.#last === null ? 0 : nowMs - this.#last
      this.#last = nowMs
      for (const r of rows) {
        this.busyMs += (r.utilPercent / 100) * dt
        this.utilSum += r.utilPercent
        this.utilSamples++
        this.maxMemoryBytes = Math.max(this.maxMemoryBytes, r.memoryUsedBytes)
      }
    } catch {
      this.failures++
    } finally {
      this.#inFlight = false
    }
  }
}

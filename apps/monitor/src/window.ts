/**
 * One provider's samples over one window, folded into the body of an
 * observation. Pure: the caller supplies times and the seq.
 */
import type { CID, PeerIdString } from '@tally/core'
import { BP_ONE, type ObservationBody } from '@tally/deal'
import type { ComputeResult, ProbeSample } from '@tally/node'

export interface Window {
  start: number
  end: number
}

/** The window holding `t`, aligned to multiples of `lengthMs` (windows of different monitors line up). */
export function windowAt(t: number, lengthMs: number): Window {
  const start = Math.floor(t / lengthMs) * lengthMs
  return { start, end: start + lengthMs }
}

/** Nearest-rank percentile of ascending `sorted` (non-empty). */
export function percentile(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length))
  return sorted[Math.min(rank, sorted.length) - 1]!
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return percentile(sorted, 0.5)
}

export class WindowSamples {
  readonly subject: PeerIdString
  readonly window: Window
  sent = 0
  ok = 0
  readonly #rttUs: number[] = []
  readonly #identityMs: number[] = []
  #identityAsked = 0
  #identityPassed = 0
  #identityFailure: string | undefined
  #compute: ComputeResult | undefined

  constructor(subject: PeerIdString, window: Window) {
    this.subject = subject
    this.window = window
  }

  /** A sample counts as up when the provider answered the ping and, if asked, proved its identity. */
  add(sample: ProbeSample): boolean {
    this.sent++
    if (sample.identity !== null) {
      this.#identityAsked++
      this.#identityMs.push(sample.identity.durationMs)
      if (sample.identity.ok) this.#identityPassed++
      else this.#identityFailure ??= sample.identity.error
    }
    const up = sample.reachable && sample.rttUs !== null && (sample.identity === null || sample.identity.ok)
    if (up) {
      this.ok++
      this.#rttUs.push(sample.rttUs!)
    }
    return up
  }

  setCompute(result: ComputeResult): void {
    this.#compute = result
  }

  /** The observation body for this window, or null when no sample was taken. */
  body(seq: number, issuedAt: number, credential: CID | null): ObservationBody | null {
    if (this.sent === 0) return null
    const sorted = [...this.#rttUs].sort((a, b) => a - b)
    const challenges: ObservationBody['challenges'] = []
    if (this.#identityAsked > 0) {
      const detail = `${this.#identityPassed}/${this.#identityAsked} verified${this.#identityFailure === undefined ? '' : `; ${this.#identityFailure}`}`
      challenges.push({
        kind: 'identity',
        ok: this.#identityPassed === this.#identityAsked,
        durationMs: median(this.#identityMs),
        detail: detail.slice(0, 256),
      })
    }
    const c = this.#compute
    if (c !== undefined) {
      const detail = `n=${c.n} solver=${c.solver ?? '?'} reported=${c.reportedMs ?? '?'}ms${c.judgement?.maxMs == null ? '' : ` max=${c.judgement.maxMs}ms`}${c.error === undefined ? '' : `; ${c.error}`}`
      challenges.push({ kind: 'compute', ok: c.ok, durationMs: c.measuredMs, detail: detail.slice(0, 256) })
    }
    return {
      subject: this.subject,
      seq,
      window: { start: this.window.start, end: this.window.end },
      samples: { sent: this.sent, ok: this.ok },
      availabilityBp: Math.floor((this.ok * BP_ONE) / this.sent),
      latencyUs: sorted.length === 0 ? null : { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) },
      challenges,
      credential,
      issuedAt: Math.max(issuedAt, this.window.end),
    }
  }
}

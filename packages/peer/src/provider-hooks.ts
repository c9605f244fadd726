import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { decode, encode, type Identity } from '@tally/core'
import type { Log } from '@tally/daemon'
import { type Attestation, type ContractTerms, type DealState, type DisputeState, epochLimit } from '@tally/deal'
import { attestHardware, decodeManifest, type EpochUsage, reapStaleRun, type Run, runSpecFromManifest, signAttestation, startRun } from '@tally/executor'
import type { Store } from '@tally/lineage'
import type { OfferBody } from '@tally/node'
import type { EngineHooks, UsageFigures } from './deal-engine.ts'

/** What a provider meters per deal epoch, persisted as it accrues so a restart keeps it. */
interface EpochMeter {
  wallMs: number
  cpuMs: number
  maxRssBytes: number
  gpuMs: number | null
  logsHash: string
  exit: UsageFigures['exit']
  /** The workload was seen running in this epoch. */
  ran: boolean
}

const EMPTY_LOGS_HASH = createHash('sha256').update('').digest('hex')
const METER_PREFIX = 'tally/provider/meter/'

export interface ProviderHooksOptions {
  identity: Identity
  store: Store
  /** Executor work directories live under this. */
  workDir: string
  offer: () => OfferBody | undefined
  log: Log
  /** Observations for the deal's epochs (the peer's intake). */
  observations: EngineHooks['observations']
  /** Appeal first-instance rulings that pay nothing for epochs the workload ran (needs an appeal arbiter in the contract). */
  appealWhenWorkloadRan?: boolean
  /** Called once per deal when it becomes active (e.g. to watch its monitors). */
  onActive?: (deal: DealState) => Promise<void>
}

/** Whether the consumer's proposed terms fit what the provider offers. */
export function termsFitOffer(terms: ContractTerms, offer: OfferBody | undefined): string | null {
  if (offer === undefined) return 'this provider has no current offer'
  if (terms.resources.class !== offer.hardware.class) return `hardware class ${terms.resources.class} is not offered (${offer.hardware.class})`
  if (terms.resources.count > offer.hardware.count) return `${terms.resources.count} units asked, ${offer.hardware.count} offered`
  if (terms.price.asset !== offer.price.perEpoch.asset) return `price asset ${terms.price.asset} is not ${offer.price.perEpoch.asset}`
  if (terms.epochMs !== offer.price.epochMs) return `epoch length ${terms.epochMs} ms differs from the offer's ${offer.price.epochMs} ms`
  if (terms.price.amount < offer.price.perEpoch.amount) return `price ${terms.price.amount} is below the offer's ${offer.price.perEpoch.amount}`
  if (terms.jurisdiction !== offer.jurisdiction) return `jurisdiction ${terms.jurisdiction} is not ${offer.jurisdiction}`
  if (!offer.arbiters.includes(terms.arbiter)) return `arbiter ${terms.arbiter} is not accepted`
  if (terms.appealArbiter !== null && !offer.arbiters.includes(terms.appealArbiter)) return `appeal arbiter ${terms.appealArbiter} is not accepted`
  for (const m of terms.rule.monitors) if (!offer.monitors.includes(m.peer)) return `monitor ${m.peer} is not accepted`
  if (!offer.rails.includes(terms.rail)) return `payment rail ${terms.rail} is not accepted`
  return null
}

/**
 * The provider's side of a deal: answers offers against its own offer,
 * attests the hardware from real probes, runs the consumer's workload with
 * the executor, and reports metered usage per epoch.
 *
 * Usage claim: the provider claims full availability for an epoch in which
 * its workload was running (or had finished cleanly), and none after the
 * workload failed. A workload that outlived a crash of the daemon counts as
 * running through the outage: the provider's claim then rests on its own
 * process, the monitors' on reachability, and the evidence rule decides.
 */
export class ProviderHooks implements EngineHooks {
  readonly #opts: ProviderHooksOptions
  #attestation: Promise<Attestation> | undefined
  readonly #runs = new Map<string, Run>()
  readonly #meters = new Map<string, Map<number, EpochMeter>>()
  /** Deals whose workload survived a daemon crash (found alive at restart). */
  readonly #survived = new Set<string>()
  readonly #failed = new Map<string, number>()

  constructor(opts: ProviderHooksOptions) {
    this.#opts = opts
  }

  answerOffer(terms: ContractTerms): { accept: true } | { accept: false; reason: string } {
    const problem = termsFitOffer(terms, this.#opts.offer())
    return problem === null ? { accept: true } : { accept: false, reason: problem }
  }

  attestation(): Promise<Attestation> {
    this.#attestation ??= attestHardware().then((facts) => signAttestation(this.#opts.identity, facts, Date.now()) as Attestation)
    return this.#attestation
  }

  observations(deal: DealState, epoch: number) {
    return this.#opts.observations?.(deal, epoch) ?? Promise.resolve([])
  }

  async startWorkload(deal: DealState): Promise<void> {
    const t = deal.terms
    if (t === null || deal.manifest === null || deal.start === null || this.#runs.has(deal.key)) return
    await this.#opts.onActive?.(deal)
    await this.#loadMeters(deal)
    const dealEnd = deal.start + epochLimit(deal) * t.epochMs
    const workdir = join(this.#opts.workDir, deal.key)
    if (reapStaleRun(workdir)) {
      this.#survived.add(deal.key)
      this.#opts.log.warn('workload survived a daemon restart; relaunching it', { deal: deal.key })
    }
    const now = Date.now()
    if (now >= dealEnd) return
    const manifest = decodeManifest(deal.manifest.workload)
    const wallMs = Math.max(1, Math.min(manifest.limits.wallMs, dealEnd - now))
    const sample = Math.max(100, Math.min(1000, Math.floor(t.epochMs / 4)))
    const run = await startRun(
      runSpecFromManifest(
        { ...manifest, limits: { ...manifest.limits, wallMs } },
        { id: deal.key, baseDir: this.#opts.workDir, epochMs: sample, graceMs: 1000 },
      ),
    )
    this.#runs.set(deal.key, run)
    this.#opts.log.info('workload started', { deal: deal.key, pid: run.pid, command: manifest.command.join(' ') })
    run.onEpoch((u) => void this.#record(deal, u))
    void run.done.then((r) => {
      this.#opts.log.info('workload ended', { deal: deal.key, reason: r.exitStatus.reason, code: r.exitStatus.code })
      if (r.exitStatus.reason !== 'exit' || r.exitStatus.code !== 0) {
        if (!(r.exitStatus.reason === 'wall' && Date.now() >= dealEnd - sample)) this.#failed.set(deal.key, Date.now())
      }
    })
  }

  /**
   * Appeal a ruling that pays nothing for epochs in which the provider's
   * own workload ran (metered, or outlived a daemon crash): the monitors
   * measured reachability, the executor measured work.
   */
  appeal(deal: DealState, dispute: DisputeState): string | undefined {
    if (!this.#opts.appealWhenWorkloadRan) return undefined
    const ruling = dispute.rulings[0]
    const t = deal.terms
    if (ruling === undefined || t === null) return undefined
    const meters = this.#meters.get(deal.key)
    const ran = dispute.epochs.filter((e) => meters?.get(e)?.ran === true || this.#survived.has(deal.key))
    if (ran.length === 0 || ruling.toProvider >= ran.length * t.price.amount) return undefined
    return `the workload ran in epoch(s) ${ran.join(', ')} (executor-metered, or it outlived a restart of the provider's daemon); reachability alone does not show the work was not done`
  }

  async stopWorkload(deal: DealState): Promise<void> {
    const run = this.#runs.get(deal.key)
    if (run !== undefined) await run.stop()
  }

  async usage(deal: DealState, epoch: number): Promise<UsageFigures | undefined> {
    const t = deal.terms
    if (t === null || deal.start === null) return undefined
    const end = deal.start + (epoch + 1) * t.epochMs
    const run = this.#runs.get(deal.key)
    // Wait for the sample that closes the epoch while the workload runs, however late the clock says it is: after a
    // stall of this daemon (SIGSTOP, swapping, CPU starvation) the executor's samples catch up a moment after the duty
    // loop wakes, and an epoch reported before they do would claim no service for time the workload ran.
    if (run !== undefined && !(await isDone(run))) {
      const last = run.epochs.at(-1)
      if (last === undefined || last.endMs < end) return undefined
    }
    const m = this.#meters.get(deal.key)?.get(epoch)
    const failedAt = this.#failed.get(deal.key)
    const failedBefore = failedAt !== undefined && failedAt < end - t.epochMs
    const ran = m?.ran === true || (this.#survived.has(deal.key) && !failedBefore)
    return {
      claimBp: ran && !failedBefore ? 10_000 : 0,
      metered: { wallMs: m?.wallMs ?? 0, cpuMs: m?.cpuMs ?? 0, maxRssBytes: m?.maxRssBytes ?? 0, gpuMs: m?.gpuMs ?? null },
      exit: m?.exit ?? null,
      logsHash: m?.logsHash ?? this.#lastHash(deal.key, epoch),
    }
  }

  #lastHash(deal: string, epoch: number): string {
    const meters = this.#meters.get(deal)
    for (let e = epoch - 1; e >= 0; e--) {
      const h = meters?.get(e)?.logsHash
      if (h !== undefined) return h
    }
    return EMPTY_LOGS_HASH
  }

  async #record(deal: DealState, u: EpochUsage): Promise<void> {
    const t = deal.terms
    if (t === null || deal.start === null) return
    const epoch = Math.floor((u.endMs - 1 - deal.start) / t.epochMs)
    if (epoch < 0) return
    let meters = this.#meters.get(deal.key)
    if (meters === undefined) this.#meters.set(deal.key, (meters = new Map()))
    const m = meters.get(epoch) ?? { wallMs: 0, cpuMs: 0, maxRssBytes: 0, gpuMs: null, logsHash: this.#lastHash(deal.key, epoch), exit: null, ran: false }
    m.wallMs += u.wallMs
    m.cpuMs += u.cpuMs
    m.maxRssBytes = Math.max(m.maxRssBytes, u.maxRssBytes)
    if (u.gpuMs !== null) m.gpuMs = (m.gpuMs ?? 0) + u.gpuMs
    m.logsHash = u.logsHash
    m.ran = m.ran || u.wallMs > 0
    if (u.exitStatus !== null) m.exit = { code: u.exitStatus.code, signal: u.exitStatus.signal, reason: u.exitStatus.reason }
    meters.set(epoch, m)
    await this.#opts.store.write({ meta: [{ key: `${METER_PREFIX}${deal.key}/${String(epoch).padStart(10, '0')}`, value: encode(m) }] })
  }

  async #loadMeters(deal: DealState): Promise<void> {
    const meters = new Map<number, EpochMeter>()
    for await (const { key, value } of this.#opts.store.metaEntries(`${METER_PREFIX}${deal.key}/`)) {
      meters.set(Number(key.slice(key.lastIndexOf('/') + 1)), decode(value) as EpochMeter)
    }
    this.#meters.set(deal.key, meters)
  }
}

async function isDone(run: Run): Promise<boolean> {
  return Promise.race([run.done.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))])
}

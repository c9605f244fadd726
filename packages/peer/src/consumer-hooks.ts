import { decode, encode, parseWith, TallyError } from '@tally/core'
import { type DealState, type Workload, workloadSchema } from '@tally/deal'
import type { Store } from '@tally/lineage'
import type { Rail } from '@tally/rails'
import type { EngineHooks } from './deal-engine.ts'

/** A deal's contract names a payment rail other than the one this node was started with. */
export class RailMismatchError extends TallyError {}

const WORKLOAD_PREFIX = 'tally/consumer/workload/'

/**
 * The consumer's side of a deal: the workload it asked for (kept in the
 * store so a restart can still send the manifest), monitor evidence from
 * the intake, its payment rail, and arbitration through the peer.
 */
export class ConsumerHooks implements EngineHooks {
  readonly #store: Store
  readonly #workloads = new Map<string, Workload>()
  readonly #rail: Rail
  readonly observations: NonNullable<EngineHooks['observations']>
  readonly arbitrate: NonNullable<EngineHooks['arbitrate']>
  readonly #onActive: ((deal: DealState) => Promise<void>) | undefined
  readonly #active = new Set<string>()
  /** Workloads of deals proposed by an earlier process (`tally deal open --no-wait`, a restart) come from the store. */
  #loaded = false
  #loadError: unknown

  constructor(opts: {
    store: Store
    rail: Rail
    observations: NonNullable<EngineHooks['observations']>
    arbitrate: NonNullable<EngineHooks['arbitrate']>
    onActive?: (deal: DealState) => Promise<void>
  }) {
    this.#store = opts.store
    this.#rail = opts.rail
    this.observations = opts.observations
    this.arbitrate = opts.arbitrate
    this.#onActive = opts.onActive
    // Until the stored workloads are read, the manifest duty waits (it retries); a store that cannot be read fails the duty visibly.
    this.load().then(
      () => {
        this.#loaded = true
      },
      (err: unknown) => {
        this.#loadError = err
      },
    )
  }

  /** Remember the workload for the deal a proposal just opened. */
  async setWorkload(deal: string, workload: Workload): Promise<void> {
    this.#workloads.set(deal, workload)
    await this.#store.write({ meta: [{ key: WORKLOAD_PREFIX + deal, value: encode(workload) }] })
  }

  async load(): Promise<void> {
    for await (const { key, value } of this.#store.metaEntries(WORKLOAD_PREFIX)) {
      this.#workloads.set(key.slice(WORKLOAD_PREFIX.length), parseWith(workloadSchema, decode(value), 'stored workload'))
    }
  }

  workload(deal: DealState): Workload | undefined {
    if (this.#loadError !== undefined) throw this.#loadError
    if (!this.#loaded) return undefined
    if (!this.#active.has(deal.key) && this.#onActive !== undefined) {
      this.#active.add(deal.key)
      void this.#onActive(deal)
    }
    return this.#workloads.get(deal.key)
  }

  /** The rail for a deal: the one its contract names, or a clear error that names the flag to start with. */
  rail(deal: DealState): Rail {
    const want = deal.terms?.rail ?? 'ledger'
    if (want !== this.#rail.name)
      throw new RailMismatchError(`deal ${deal.key} pays through the ${want} rail; this node runs the ${this.#rail.name} rail`, {
        deal: deal.key,
        want,
        have: this.#rail.name,
      })
    return this.#rail
  }
}

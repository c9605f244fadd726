import { decode, encode, parseWith } from '@tally/core'
import { type DealState, type Workload, workloadSchema } from '@tally/deal'
import type { Store } from '@tally/lineage'
import type { Rail } from '@tally/rails'
import type { EngineHooks } from './deal-engine.ts'

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
    if (!this.#active.has(deal.key) && this.#onActive !== undefined) {
      this.#active.add(deal.key)
      void this.#onActive(deal)
    }
    return this.#workloads.get(deal.key)
  }

  rail(): Rail {
    return this.#rail
  }
}

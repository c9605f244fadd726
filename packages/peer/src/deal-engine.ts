import type { CID, EntryBlock, EntryKind } from '@tally/core'
import {
  type Attestation,
  buildAcceptance,
  buildAck,
  buildAppeal,
  buildCertificate,
  buildClose,
  buildDispute,
  buildCollateral,
  buildEvaluation,
  buildEvidenceAnswer,
  buildRailResult,
  buildReject,
  buildRuling,
  buildTimeout,
  buildUsage,
  buildVoucher,
  type ContractTerms,
  type DealState,
  type DisputeState,
  type Duty,
  duties,
  epochLimit,
  epochOf,
  type EvidenceRequest,
  type Observation,
  type PairState,
  type PartyRole,
  railRelease,
  recordRefused,
  reduce,
  replay,
  type Ruling,
  type UsageBody,
  type Workload,
} from '@tally/deal'
import type { PairLog } from '@tally/lineage'
import type { Rail } from '@tally/rails'

/** Usage figures a provider reports for one epoch (the body minus deal and epoch). */
export type UsageFigures = Omit<UsageBody, 'deal' | 'epoch'>

/** What arbitration returned for a submitted dispute. */
export type ArbitrationAnswer = { ruling: Ruling } | { evidenceRequest: EvidenceRequest } | { refused: string }

/**
 * The I/O a deal needs, supplied by the daemon that runs the engine. A
 * hook a role never uses may be left out (a consumer has no `usage`).
 */
export interface EngineHooks {
  /** Provider: accept the latest offer's terms, or say why not. */
  answerOffer?(terms: ContractTerms, deal: DealState): { accept: true } | { accept: false; reason: string }
  /** Provider: its signed hardware attestation. */
  attestation?(deal: DealState): Promise<Attestation>
  /** Consumer: the workload manifest for a deal it proposed. */
  workload?(deal: DealState): Workload | undefined
  /** Provider: start (or resume) the workload once attestation and manifest are in. */
  startWorkload?(deal: DealState): Promise<void>
  /** Provider: metered figures for an epoch that has ended; undefined while not yet known. */
  usage?(deal: DealState, epoch: number): Promise<UsageFigures | undefined>
  /** Observations by the deal's named monitors for an epoch, as this node received them. */
  observations?(deal: DealState, epoch: number): Promise<Observation[]>
  /** Consumer: the payment rail to hand each release to. */
  rail?(deal: DealState): Rail
  /** Submit an open dispute (with the record) to the contract's arbiter. */
  arbitrate?(deal: DealState, dispute: CID, appeal: boolean): Promise<ArbitrationAnswer>
  /** A party's answer to an arbiter's evidence request relayed into the log. */
  evidenceAnswer?(deal: DealState, request: CID): { answer: string; refs: CID[] }
  /** A party's choice to appeal a first-instance ruling: the reason, or undefined to accept it. */
  appeal?(deal: DealState, dispute: DisputeState): string | undefined
  /** Stop the workload of a deal that has ended. */
  stopWorkload?(deal: DealState): Promise<void>
}

export type EngineEvent =
  | { type: 'entry'; block: EntryBlock; origin: 'local' | 'remote' }
  | { type: 'duty-failed'; duty: Duty; error: unknown }
  | { type: 'error'; what: string; error: unknown }
  | { type: 'rejected'; block: EntryBlock; error: unknown }

export interface DealEngineOptions {
  log: PairLog
  hooks: EngineHooks
  /** How often duties are re-read without a new entry. */
  tickMs?: number
  now?: () => number
  onEvent?: (event: EngineEvent) => void
  /** Sign certificates (the party's identity). */
  certify: Parameters<typeof buildCertificate>[0]
}

function key(cid: CID): string {
  return cid.toString()
}

/**
 * Drives every deal of one pair log for the holder's role, in the protofsm
 * style: the reducer keeps the state, `duties(state, role, now)` says what
 * is owed, the engine builds the body and appends it. The same reducer
 * vets the counterparty's entries before the session stores them.
 */
export class DealEngine {
  readonly log: PairLog
  readonly role: PartyRole
  #state: PairState
  readonly #hooks: EngineHooks
  readonly #opts: DealEngineOptions
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #unsubscribe: (() => void) | undefined
  #appendQueue: Promise<unknown> = Promise.resolve()
  #running = false
  #again = false
  #stopped = false
  /** Async duties under way (arbitration, rail releases), by a key per duty. */
  readonly #inFlight = new Set<string>()
  /** Duties that failed recently, and when they may be retried. */
  readonly #backoff = new Map<string, number>()
  readonly #started = new Set<string>()
  readonly #attached = new Set<string>()
  /** Disputes whose first ruling this party has decided on (appealed or accepted). */
  readonly #appealDecided = new Set<string>()
  /** Stored entries not yet reduced because a causal predecessor has not been reported yet. */
  readonly #waiting: EntryBlock[] = []

  private constructor(opts: DealEngineOptions, state: PairState) {
    this.log = opts.log
    this.role = opts.log.role
    this.#hooks = opts.hooks
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    this.#state = state
  }

  /** Replay the stored log, then follow it. */
  static async start(opts: DealEngineOptions): Promise<DealEngine> {
    // Subscribe before reading, so an entry stored during the replay is not missed.
    let engine: DealEngine | undefined
    const early: { block: EntryBlock; origin: 'local' | 'remote' }[] = []
    const unsubscribe = opts.log.subscribe((event) => (engine === undefined ? early.push(event) : engine.#onEntry(event.block, event.origin)))
    const blocks: EntryBlock[] = []
    for await (const b of opts.log.timeline()) blocks.push(b)
    const { state, problems } = replay(blocks, opts.log.pair)
    engine = new DealEngine(opts, state)
    for (const p of problems)
      opts.onEvent?.({ type: 'rejected', block: blocks.find((b) => b.cid.toString() === p.cid)!, error: new Error(`${p.code}: ${p.message}`) })
    engine.#unsubscribe = unsubscribe
    for (const e of early) engine.#onEntry(e.block, e.origin)
    engine.#timer = setInterval(() => engine.poke(), opts.tickMs ?? 250)
    engine.#timer.unref()
    engine.poke()
    return engine
  }

  get state(): PairState {
    return this.#state
  }

  /**
   * The check the pair session runs before storing the counterparty's
   * entries: they must be legal transitions from the current state.
   */
  validate(added: readonly EntryBlock[]): void {
    // Entries of ours still waiting for their causal predecessor count as held.
    let s = this.#drain(this.#state, false)
    for (const b of added) {
      if (s.entries.has(key(b.cid))) continue
      s = reduce(s, b)
    }
  }

  /**
   * Every entry this party writes goes through here: one at a time, each
   * checked by the reducer against the state it will follow (the `seen` it
   * names) before it is written, so a transition the party's own reducer
   * would refuse is never stored.
   */
  #append(kind: EntryKind, body: unknown): Promise<EntryBlock> {
    const run = () => this.log.append(kind, body, { validate: (blocks) => this.validate(blocks) })
    const next = this.#appendQueue.then(run, run)
    this.#appendQueue = next.catch(() => undefined)
    return next
  }

  /** Propose a contract as the consumer; resolves with the deal id (the proposal's CID). */
  async propose(body: unknown): Promise<CID> {
    const block = await this.#append('proposal', body)
    return block.cid
  }

  /** Append an arbitrary deal entry (a party's explicit request: dispute, appeal, close). */
  async append(kind: EntryKind, body: unknown): Promise<EntryBlock> {
    const block = await this.#append(kind, body)
    this.poke()
    return block
  }

  poke(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    void this.#work()
      .catch((error: unknown) => this.#opts.onEvent?.({ type: 'error', what: 'deal engine pass', error }))
      .finally(() => {
        this.#running = false
        if (this.#again) {
          this.#again = false
          setImmediate(() => this.poke())
        }
      })
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#unsubscribe?.()
    while (this.#running) await new Promise((r) => setTimeout(r, 10))
  }

  /**
   * Reduce stored entries in causal order. The log may report an entry
   * before the counterparty entry its `seen` names (both were in one group
   * commit); such an entry waits here until its predecessor is reduced.
   */
  #onEntry(block: EntryBlock, origin: 'local' | 'remote'): void {
    this.#waiting.push(block)
    this.#state = this.#drain(this.#state, true)
    this.#opts.onEvent?.({ type: 'entry', block, origin })
    this.poke()
  }

  #drain(from: PairState, commit: boolean): PairState {
    let s = from
    for (let progressed = true; progressed && this.#waiting.length > 0; ) {
      progressed = false
      for (const b of [...this.#waiting]) {
        const done = () => {
          if (commit) this.#waiting.splice(this.#waiting.indexOf(b), 1)
          progressed = true
        }
        if (s.entries.has(key(b.cid))) {
          done()
          continue
        }
        try {
          s = reduce(s, b)
          done()
        } catch (error) {
          if ((error as Error).name === 'OutOfOrderError') continue
          // Only possible for our own entries (remote ones were vetted before storing), written by a
          // version without the check before writing: keep the chain moving as replay does.
          if (commit) this.#opts.onEvent?.({ type: 'rejected', block: b, error })
          s = recordRefused(s, b)
          done()
        }
      }
      if (!commit) break
    }
    return s
  }

  async #work(): Promise<void> {
    // Each appended entry changes the duties, so re-read after every one (bounded per pass).
    for (let step = 0; step < 64 && !this.#stopped; step++) {
      await this.#attachEvidence()
      await this.#appeals()
      const now = this.#now()
      const todo = duties(this.#state, this.role, now).filter((d) => !this.#inFlight.has(dutyKey(d)) && (this.#backoff.get(dutyKey(d)) ?? 0) <= now)
      await this.#startWorkloads()
      const next = todo[0]
      if (next === undefined) return
      const k = dutyKey(next)
      try {
        const progressed = await this.#perform(next)
        if (!progressed) this.#backoff.set(k, now + 500)
      } catch (error) {
        this.#backoff.set(k, now + 2_000)
        this.#opts.onEvent?.({ type: 'duty-failed', duty: next, error })
      }
    }
  }

  /** Attach named monitors' observations for epochs that have ended and are not settled. */
  async #attachEvidence(): Promise<void> {
    if (this.#hooks.observations === undefined) return
    const now = this.#now()
    for (const id of this.#state.dealOrder) {
      const deal = this.#state.deals.get(key(id))
      // Closed deals too: the last epoch's observations arrive after the term ends, and held epochs reopen on new evidence.
      if (deal === undefined || deal.terms === null || deal.start === null || (deal.status !== 'active' && deal.status !== 'closed')) continue
      const last = Math.min(epochLimit(deal), Math.floor((now - deal.start) / deal.terms.epochMs))
      const open: number[] = [...deal.heldEpochs]
      for (let e = deal.nextUnsettled; e < last; e++) if (epochOf(deal, e).evaluation === null) open.push(e)
      for (const e of open) {
        const ep = epochOf(deal, e)
        const have = new Set((ep?.observations ?? []).map((o) => o.sig.toString()))
        for (const obs of await this.#hooks.observations(deal, e)) {
          const k = `${key(id)}/${Buffer.from(obs.sig).toString('base64')}`
          if (have.has(obs.sig.toString()) || this.#attached.has(k)) continue
          this.#attached.add(k)
          try {
            await this.#append('observation', { deal: id, observation: obs })
          } catch (error) {
            this.#opts.onEvent?.({ type: 'duty-failed', duty: { type: 'evaluate', deal: id, epoch: e }, error })
          }
        }
      }
    }
  }

  /** Offer each fresh first-instance ruling to the party's appeal policy, once. */
  async #appeals(): Promise<void> {
    if (this.#hooks.appeal === undefined) return
    for (const id of this.#state.dealOrder) {
      const deal = this.#state.deals.get(key(id))
      if (deal === undefined || deal.terms?.appealArbiter == null) continue
      for (const dk of deal.disputeOrder) {
        const dispute = deal.disputes.get(dk)
        const ruling = dispute?.rulings[0]
        if (dispute === undefined || ruling === undefined || dispute.status !== 'ruled' || dispute.appeal !== null || this.#appealDecided.has(dk)) continue
        this.#appealDecided.add(dk)
        const reason = this.#hooks.appeal(deal, dispute)
        if (reason === undefined) continue
        try {
          await this.#append('appeal', buildAppeal(deal.id, ruling.cid, reason))
        } catch (error) {
          this.#opts.onEvent?.({ type: 'error', what: `appeal of ${dk}`, error })
        }
      }
    }
  }

  async #startWorkloads(): Promise<void> {
    if (this.#hooks.startWorkload === undefined || this.role !== 'provider') return
    for (const id of this.#state.dealOrder) {
      const deal = this.#state.deals.get(key(id))
      if (deal === undefined || this.#started.has(key(id))) continue
      // A closed deal still gets the call once: a restarted provider must learn whether its workload outlived it.
      if ((deal.status === 'active' || deal.status === 'closed') && deal.attestation !== null && deal.manifest !== null) {
        this.#started.add(key(id))
        await this.#hooks.startWorkload(deal)
      }
    }
  }

  /** Perform one duty; false when it cannot progress yet (waiting on evidence or I/O). */
  async #perform(d: Duty): Promise<boolean> {
    const s = this.#state
    const deal = s.deals.get(key(d.deal))
    if (deal === undefined) return false
    const h = this.#hooks
    const now = this.#now()
    switch (d.type) {
      case 'answer-offer': {
        const terms = deal.offers[deal.offers.length - 1]?.terms
        if (terms === undefined) return false
        const answer = h.answerOffer?.(terms, deal) ?? { accept: true as const }
        if (answer.accept) await this.#append('acceptance', buildAcceptance(s, d.deal))
        else await this.#append('reject', buildReject(s, d.deal, answer.reason))
        return true
      }
      case 'collateral':
        await this.#append('collateral', buildCollateral(s, d.deal))
        return true
      case 'attestation': {
        if (h.attestation === undefined) return false
        await this.#append('attestation', { deal: d.deal, attestation: await h.attestation(deal) })
        return true
      }
      case 'manifest': {
        const workload = h.workload?.(deal)
        if (workload === undefined) return false
        await this.#append('manifest', { deal: d.deal, workload })
        return true
      }
      case 'usage': {
        const figures = await h.usage?.(deal, d.epoch)
        if (figures === undefined) return false
        await this.#append('usage', buildUsage(d.deal, d.epoch, figures))
        return true
      }
      case 'evaluate':
        await this.#append('evaluation', buildEvaluation(s, d.deal, d.epoch))
        return true
      case 'voucher':
        await this.#append('voucher', buildVoucher(s, d.deal))
        return true
      case 'ack':
        await this.#append('ack', buildAck(s, d.deal, d.voucher))
        return true
      case 'rail':
        return this.#background(dutyKey(d), async () => {
          const rail = h.rail?.(deal)
          if (rail === undefined) return
          const block = await this.log.get(d.voucher)
          if (block === undefined) return
          const outcome = await rail.release(railRelease(this.#state, d.deal, d.voucher, block.bytes))
          await this.#append('rail-result', buildRailResult(d.deal, d.voucher, outcome))
        })
      case 'dispute': {
        if (h.arbitrate === undefined) return false
        const dispute = deal.disputes.get(key(d.dispute))
        if (dispute === undefined) return false
        const appeal = dispute.status === 'appealed'
        return this.#background(dutyKey(d), async () => {
          const answer = await h.arbitrate!(deal, d.dispute, appeal)
          if ('ruling' in answer) await this.#append('ruling', buildRuling(d.deal, answer.ruling))
          else if ('evidenceRequest' in answer) await this.#append('evidence-request', { deal: d.deal, request: answer.evidenceRequest })
          else throw new Error(`arbiter refused the case: ${answer.refused}`)
        })
      }
      case 'open-dispute':
        await this.#append('dispute', buildDispute(d.deal, d.epochs, d.reason))
        return true
      case 'evidence-answer': {
        const a = h.evidenceAnswer?.(deal, d.request) ?? { answer: 'no further evidence beyond the record', refs: [] }
        await this.#append('evidence-answer', buildEvidenceAnswer(d.deal, d.request, a.answer, a.refs))
        return true
      }
      case 'close':
        await this.#append('close', buildClose(d.deal, d.reason))
        await h.stopWorkload?.(deal)
        return true
      case 'certificate':
        await this.#append('certificate', buildCertificate(this.#opts.certify, s, d.deal, now))
        return true
      case 'claim-timeout':
        await this.#append('timeout', buildTimeout(d.deal, d.duty, d.ref, d.epoch))
        return true
    }
  }

  /** Run slow I/O off the duty loop; the duty stays claimed until it finishes. */
  #background(k: string, fn: () => Promise<void>): boolean {
    if (this.#inFlight.has(k)) return false
    this.#inFlight.add(k)
    void fn()
      .catch((error: unknown) => {
        this.#backoff.set(k, this.#now() + 2_000)
        this.#opts.onEvent?.({ type: 'error', what: k, error })
      })
      .finally(() => {
        this.#inFlight.delete(k)
        this.poke()
      })
    return true
  }
}

function dutyKey(d: Duty): string {
  switch (d.type) {
    case 'usage':
    case 'evaluate':
      return `${d.type}/${d.deal}/${d.epoch}`
    case 'ack':
    case 'rail':
      return `${d.type}/${d.deal}/${d.voucher}`
    case 'dispute':
      return `${d.type}/${d.deal}/${d.dispute}`
    case 'open-dispute':
      return `${d.type}/${d.deal}/${d.epochs.join(',')}`
    case 'evidence-answer':
      return `${d.type}/${d.deal}/${d.request}`
    default:
      return `${d.type}/${d.deal}`
  }
}

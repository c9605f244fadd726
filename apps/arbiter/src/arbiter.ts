import { join } from 'node:path'
import { decode, type SignedDocument, toBlock } from '@tally/core'
import type { Log, Metrics } from '@tally/daemon'
import type { EvidenceRequest, Ruling } from '@tally/deal'
import { type ArbitrationCase, ArbitrationServer, type ArbitrationStats, type CaseAnswer, errorAnswer, isPartyOf, type TallyNode } from '@tally/node'
import { type CaseRecord, CaseStore, sha256Hex } from './case-store.ts'
import type { ArbiterSettings } from './config.ts'
import { type Decision, decideCase } from './decide.ts'

/** Refusals a record gives once the case's ruling is in it: the stored ruling is the answer. */
const AFTER_RULING: ReadonlySet<string> = new Set(['already-ruled', 'final'])

export interface ArbiterOptions {
  /** A started (or soon started) node: its identity signs rulings, its libp2p serves the protocol. */
  node: TallyNode
  /** Cases live under `<dataDir>/cases`. */
  dataDir: string
  settings: ArbiterSettings
  log: Log
  metrics?: Metrics
  /** The arbiter's clock (dates evidence requests). Default Date.now. */
  now?: () => number
}

export interface ArbiterStatus {
  peerId: string
  mode: ArbiterSettings['mode']
  cases: ReturnType<CaseStore['counts']> & { total: number }
  active: number
  protocol: ArbitrationStats
}

/**
 * The arbiter: serves /tally/arbitrate/1.0.0, decides each case with
 * `decideCase` (pure, in decide.ts) and keeps every case on disk before
 * answering, so a restart loses nothing. One case at a time per dispute
 * stage; a dispute stage gets one ruling, returned again on resubmission.
 */
export class Arbiter {
  readonly node: TallyNode
  readonly store: CaseStore
  readonly settings: ArbiterSettings
  readonly server: ArbitrationServer
  readonly #log: Log
  readonly #now: () => number
  readonly #queues = new Map<string, Promise<unknown>>()
  readonly #m: ReturnType<typeof arbiterMetrics> | undefined

  private constructor(opts: ArbiterOptions, store: CaseStore) {
    this.node = opts.node
    this.store = store
    this.settings = opts.settings
    this.#log = opts.log
    this.#now = opts.now ?? Date.now
    const limits = opts.settings.limits
    this.server = new ArbitrationServer(opts.node.libp2p, {
      handler: (c) => this.submit(c),
      log: opts.node.log.newScope('arbitrate'),
      maxRecordBytes: limits.maxRecordBytes,
      maxConcurrentCases: limits.maxConcurrentCases,
      caseRate: { perSecond: limits.casesPerSecond, burst: limits.caseBurst },
      uploadTimeoutMs: limits.uploadTimeoutMs,
      now: this.#now,
    })
    this.#m = opts.metrics === undefined ? undefined : arbiterMetrics(opts.metrics, this)
  }

  static async open(opts: ArbiterOptions): Promise<Arbiter> {
    const store = await CaseStore.open(join(opts.dataDir, 'cases'))
    return new Arbiter(opts, store)
  }

  get peerId(): string {
    return this.node.peerId
  }

  async start(): Promise<void> {
    await this.server.start()
    this.#log.info('serving arbitration', { peerId: this.peerId, mode: this.settings.mode, cases: this.store.size })
  }

  /** Stop taking cases; waits for cases in flight to be answered or cut off. */
  async stop(): Promise<void> {
    await this.server.stop()
    await Promise.allSettled(this.#queues.values())
  }

  status(): ArbiterStatus {
    const counts = this.store.counts()
    return {
      peerId: this.peerId,
      mode: this.settings.mode,
      cases: { ...counts, total: this.store.size },
      active: this.server.active,
      protocol: this.server.stats,
    }
  }

  /**
   * Decide one case (what the protocol server calls; tests call it in
   * process). Submissions of the same case run one after another.
   */
  submit(c: ArbitrationCase): Promise<CaseAnswer> {
    const prev = this.#queues.get(c.id) ?? Promise.resolve()
    const next = prev.then(
      () => this.#submit(c),
      () => this.#submit(c),
    )
    this.#queues.set(c.id, next)
    void next.finally(() => {
      if (this.#queues.get(c.id) === next) this.#queues.delete(c.id)
    })
    return next
  }

  async #submit(c: ArbitrationCase): Promise<CaseAnswer> {
    const req = c.request
    this.#m?.received.inc()
    const log = { case: c.id, from: c.remotePeer, deal: req.deal.toString(), dispute: req.dispute.toString(), appeal: req.appeal }
    if (!isPartyOf(req.pair, c.remotePeer)) return this.#refused(errorAnswer('not-a-party', `${c.remotePeer} is not a party of the pair`, c.id), log)
    if (req.appeal ? this.settings.mode === 'first-instance' : this.settings.mode === 'appeal') {
      const what = req.appeal ? 'appeals' : 'first-instance cases'
      return this.#refused(errorAnswer('not-arbiter', `this arbiter does not hear ${what}`, c.id), log)
    }

    const existing = this.store.get(c.id)
    const now = c.receivedAt
    const rec: CaseRecord = existing ?? {
      id: c.id,
      pair: { provider: req.pair.provider, consumer: req.pair.consumer },
      deal: req.deal.toString(),
      dispute: req.dispute.toString(),
      appeal: req.appeal,
      status: 'received',
      submissions: 0,
      submittedBy: [],
      receivedAt: now,
      updatedAt: now,
      record: null,
      ruling: null,
      evidenceRequest: null,
      refusal: null,
      decisionMs: null,
    }
    rec.submissions++
    if (!rec.submittedBy.includes(c.remotePeer)) rec.submittedBy.push(c.remotePeer)
    rec.updatedAt = now
    if (rec.status !== 'ruled') {
      // Persist what arrived before deciding: the record is what a ruling rests on. A ruled case keeps the record of its ruling.
      rec.record = { bytes: req.record.byteLength, sha256: sha256Hex(req.record) }
      await this.store.save(rec, { 'record.car': req.record })
    }
    this.#log.info('case received', { ...log, bytes: req.record.byteLength, submission: rec.submissions })

    const t0 = performance.now()
    const decision = await decideCase(req.record, req, { arbiter: this.peerId, identity: this.node.identity, now })
    const ms = performance.now() - t0
    this.#m?.duration.observe(ms / 1000)
    rec.decisionMs = Math.round(ms)
    if (existing?.status === 'ruled' && (decision.type !== 'refusal' || AFTER_RULING.has(decision.code))) {
      // One ruling per dispute stage: a valid resubmission gets the same signed ruling back.
      const bytes = await this.store.readFile(c.id, 'ruling.cbor')
      if (bytes !== undefined) {
        await this.store.save(rec)
        this.#log.info('case already ruled; returning the ruling', log)
        return { type: 'ruling', caseId: c.id, ruling: decode(bytes) as SignedDocument }
      }
    }
    return this.#conclude(rec, decision, log)
  }

  async #conclude(rec: CaseRecord, decision: Decision, log: Record<string, unknown>): Promise<CaseAnswer> {
    if (decision.type === 'ruling') {
      const r: Ruling = decision.ruling
      const block = toBlock(r)
      rec.status = 'ruled'
      rec.refusal = null
      rec.ruling = {
        cid: block.cid.toString(),
        epochs: [...r.body.epochs],
        toProvider: r.body.award.toProvider,
        collateralToConsumer: r.body.award.collateralToConsumer,
        performed: decision.findings.filter((f) => f.performed).map((f) => f.epoch),
        issuedAt: r.body.issuedAt,
        appealOf: r.body.appealOf?.toString() ?? null,
      }
      await this.store.save(rec, { 'ruling.cbor': block.bytes })
      this.#m?.ruled.inc({ stage: rec.appeal ? 'appeal' : 'first-instance' })
      this.#log.info('ruled', {
        ...log,
        ruling: rec.ruling.cid,
        toProvider: r.body.award.toProvider.amount,
        collateral: r.body.award.collateralToConsumer.amount,
      })
      return { type: 'ruling', caseId: rec.id, ruling: r as SignedDocument }
    }
    if (decision.type === 'evidence-request') {
      // Ask once: while an earlier request is still unanswered in time, hand out the same one.
      const stored = rec.evidenceRequest
      if (stored !== null && stored.deadline > rec.updatedAt) {
        const bytes = await this.store.readFile(rec.id, 'evidence-request.cbor')
        if (bytes !== undefined) {
          rec.status = 'evidence-requested'
          await this.store.save(rec)
          return { type: 'evidence-request', caseId: rec.id, request: decode(bytes) as SignedDocument }
        }
      }
      const q: EvidenceRequest = decision.request
      const block = toBlock(q)
      rec.status = 'evidence-requested'
      rec.refusal = null
      rec.evidenceRequest = { cid: block.cid.toString(), party: q.body.party, issuedAt: q.body.issuedAt, deadline: q.body.deadline }
      await this.store.save(rec, { 'evidence-request.cbor': block.bytes })
      this.#m?.requests.inc()
      this.#log.info('evidence requested', { ...log, party: q.body.party, deadline: q.body.deadline })
      return { type: 'evidence-request', caseId: rec.id, request: q as SignedDocument }
    }
    // Waiting for an answer is not a refusal of the case, and a bad resubmission does not undo a ruling.
    if (rec.status !== 'ruled') rec.status = decision.code === 'evidence-pending' ? 'evidence-requested' : 'refused'
    rec.refusal = { code: decision.code, message: decision.message }
    await this.store.save(rec)
    return this.#refused(errorAnswer(decision.code, decision.message, rec.id), log)
  }

  #refused(answer: CaseAnswer, log: Record<string, unknown>): CaseAnswer {
    if (answer.type === 'error') {
      this.#m?.refused.inc({ code: answer.code })
      this.#log.warn('case refused', { ...log, code: answer.code, reason: answer.message })
    }
    return answer
  }

  /** A case with its ruling and evidence request documents, for the control API. */
  async caseDetail(id: string): Promise<(CaseRecord & { rulingDocument: unknown; evidenceRequestDocument: unknown }) | undefined> {
    const rec = this.store.get(id)
    if (rec === undefined) return undefined
    const ruling = await this.store.readFile(id, 'ruling.cbor')
    const request = await this.store.readFile(id, 'evidence-request.cbor')
    return {
      ...rec,
      rulingDocument: ruling === undefined ? null : decode(ruling),
      evidenceRequestDocument: request === undefined ? null : decode(request),
    }
  }
}

function arbiterMetrics(metrics: Metrics, arbiter: Arbiter) {
  metrics.gauge('arbiter_cases', 'Cases kept, by status', ['status'], (g) => {
    for (const [status, n] of Object.entries(arbiter.store.counts())) g.set({ status }, n)
  })
  metrics.gauge('arbiter_cases_active', 'Cases being received or decided now', [], (g) => {
    g.set(arbiter.server.active)
  })
  metrics.gauge('arbiter_streams_cut_off', 'Arbitration streams cut off since start, by error', ['error'], (g) => {
    for (const [error, n] of Object.entries(arbiter.server.stats.cutOff)) g.set({ error }, n)
  })
  metrics.gauge('arbiter_answers', 'Answers sent since start, by ruling, evidence-request or refusal code (protocol refusals included)', ['answer'], (g) => {
    for (const [answer, n] of Object.entries(arbiter.server.stats.answered)) g.set({ answer }, n)
  })
  return {
    received: metrics.counter('arbiter_cases_received_total', 'Case submissions received (complete records)'),
    ruled: metrics.counter('arbiter_cases_ruled_total', 'Rulings issued, by stage', ['stage']),
    refused: metrics.counter('arbiter_cases_refused_total', 'Case submissions refused, by code', ['code']),
    requests: metrics.counter('arbiter_evidence_requests_total', 'Evidence requests issued'),
    duration: metrics.histogram('arbiter_decision_seconds', 'Time to verify, replay and judge one record', [0.005, 0.02, 0.1, 0.5, 2, 10, 60]),
  }
}

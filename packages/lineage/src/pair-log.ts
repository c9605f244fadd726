import {
  type CID,
  DecodeError,
  type EntryBlock,
  type EntryKind,
  type Identity,
  type PeerIdString,
  SignatureError,
  bytesEqual,
  documentSignatureValid,
  embeddedDocuments,
  encode,
  entrySignatureValid,
  parseWith,
} from '@tally/core'
import type { AppendOptions, ChainHead, IngestOptions, IngestResult, MetaWrite, PairDescriptor, PairHeads, PairLogApi, PairLogEvent, PartyRole } from './api.ts'
import { type CheckpointContext, checkCheckpointBody, checkProposalBody } from './checkpoint.ts'
import { type CheckpointStatement, signStatement } from './checkpoint-statement.ts'
import { type CheckpointState, decodeCheckpointState, encodeCheckpointState } from './coverage.ts'
import { CidMap } from './cid-map.ts'
import { decodeCanonicalEntry, decodeEntryFast, signEntryFast } from './entry-codec.ts'
import { makeEquivocationProof, verifyEquivocationProof } from './equivocation.ts'
import {
  BrokenLinkError,
  ClockSkewError,
  ClosedError,
  DuplicateEntryError,
  EmbeddedDocumentError,
  EquivocationError,
  ForeignPairError,
  GapError,
  OpenEntryError,
  OutOfOrderError,
  SeenLinkError,
  StoreError,
  StoreWriteError,
  WrongAuthorError,
} from './errors.ts'
import { openBodySchema, otherRole, pairIdOf, parsePairDescriptor, roleOf } from './pair.ts'
import type { Store, StoreBatch } from './store.ts'
import { storeRefusal } from './store-faults.ts'
import { timelineOf } from './timeline-reader.ts'

/** Entries dated further than this into the future of the local clock are refused (clocks of honest parties agree to minutes). */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 10 * 60 * 1000
const OWN_CID_CACHE = 65_536
const RECENT_OWN = 64

export interface PairLogOptions {
  /** Default DEFAULT_MAX_CLOCK_SKEW_MS. */
  maxClockSkewMs?: number
  /** The local clock (tests). */
  now?: () => number
  /** Verify the signature of every ingested entry, not only the last new one of each batch. */
  verifyAll?: boolean
  /** Told about exceptions thrown by subscribers (which never affect the log). */
  onListenerError?: (err: unknown) => void
}

interface Head {
  seq: number
  cid: CID
}

/** Meta key prefix under which a pair log keeps its countersigned checkpoints. */
export function checkpointMetaPrefix(pairId: CID): string {
  return `tally/ckpt/${pairId.toString()}/`
}

/**
 * The pair log as one party holds it: its own chain (appended here, signed
 * with its identity) and the counterparty's (ingested). See api.ts for the
 * contract. One instance per (store, pair) at a time.
 *
 * The first entry of each chain is an 'open' entry with body {pair, role};
 * the log writes it itself, in the same durable batch as the first append
 * (or on `ensureOpen()`). `append('open')` is refused.
 *
 * Ingest rules beyond api.ts: entries must be canonical DAG-CBOR; a `seen`
 * must name an entry of the holder's own chain that the holder holds, and
 * never go backwards along the counterparty's chain; seq 1 must be the
 * counterparty's 'open' entry and no later entry may be one; every embedded
 * third-party document must verify; 'checkpoint' entries are checked
 * against the holder's copy (checkpoint.ts).
 *
 * If a durable write fails, the log instance refuses further writes
 * (StoreError; a StoreWriteError subclass for disk faults): entries signed
 * after the failed one may chain on it. `heads()` stays at what was durable
 * before; the failed entries may or may not be on disk. Reopen the store and
 * the log: the next append continues from the head found on disk.
 */
export class PairLog implements PairLogApi, CheckpointContext {
  readonly pair: PairDescriptor
  readonly id: CID
  readonly role: PartyRole
  readonly me: PeerIdString
  readonly counterparty: PeerIdString
  readonly #other: PartyRole
  readonly #store: Store
  readonly #identity: Identity
  readonly #skew: number
  readonly #now: () => number
  readonly #verifyAll: boolean
  readonly #onListenerError: ((err: unknown) => void) | undefined
  readonly #heads: Record<PartyRole, Head | null>
  readonly #pending: Record<PartyRole, Head | null>
  readonly #pendingBySeq: Record<PartyRole, Map<number, EntryBlock>> = { provider: new Map(), consumer: new Map() }
  /** The holder's latest entries, newest last: where counterparty `seen` links almost always point. */
  readonly #recentOwn: EntryBlock[] = []
  readonly #ownSeqs = new CidMap<number>()
  #otherSeenSeq: number
  readonly #states = new Map<string, CheckpointState>()
  #latest: CheckpointState | null = null
  readonly #listeners = new Set<(event: PairLogEvent) => void>()
  #ingestTail: Promise<unknown> = Promise.resolve()
  #inflight = 0
  #idle: (() => void) | undefined
  #failure: unknown
  #closed = false

  private constructor(
    store: Store,
    pair: PairDescriptor,
    identity: Identity,
    heads: Record<PartyRole, Head | null>,
    otherSeenSeq: number,
    opts: PairLogOptions,
  ) {
    this.#store = store
    this.pair = pair
    this.id = pairIdOf(pair)
    this.#identity = identity
    this.me = identity.peerId
    this.role = roleOf(pair, this.me)
    this.#other = otherRole(this.role)
    this.counterparty = this.role === 'provider' ? pair.consumer : pair.provider
    this.#heads = { ...heads }
    this.#pending = { ...heads }
    this.#otherSeenSeq = otherSeenSeq
    this.#skew = opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS
    this.#now = opts.now ?? Date.now
    this.#verifyAll = opts.verifyAll ?? false
    this.#onListenerError = opts.onListenerError
  }

  /** Open the pair log of `pair` in `store` as `identity` (which must be one of the pair). */
  static async open(store: Store, pair: PairDescriptor, identity: Identity, opts: PairLogOptions = {}): Promise<PairLog> {
    const p = parsePairDescriptor(pair)
    const role = roleOf(p, identity.peerId)
    const id = pairIdOf(p)
    const heads: Record<PartyRole, Head | null> = {
      provider: (await store.getHead(id, p.provider)) ?? null,
      consumer: (await store.getHead(id, p.consumer)) ?? null,
    }
    const log = new PairLog(store, p, identity, heads, 0, opts)
    const otherHead = heads[otherRole(role)]
    if (otherHead !== null) {
      const head = await log.entryByCid(otherHead.cid)
      if (head === undefined) throw new StoreError(`store lacks the ${otherRole(role)} head entry ${otherHead.cid}`)
      log.#otherSeenSeq = head.entry.seen === null ? 0 : ((await log.#ownSeqOf(head.entry.seen)) ?? 0)
    }
    for await (const { value } of store.metaEntries(checkpointMetaPrefix(id))) log.#addState(decodeCheckpointState(value))
    return log
  }

  // -------------------------------------------------------------------------
  // Reads

  heads(): PairHeads {
    const h = (role: PartyRole): ChainHead | null => {
      const x = this.#heads[role]
      return x === null ? null : { author: role === 'provider' ? this.pair.provider : this.pair.consumer, seq: x.seq, cid: x.cid }
    }
    return { provider: h('provider'), consumer: h('consumer') }
  }

  /** Heads including entries accepted but not yet durable (what the next append builds on). */
  pendingHeads(): { provider: Head | null; consumer: Head | null } {
    return { provider: this.#pending.provider, consumer: this.#pending.consumer }
  }

  async *range(author: PeerIdString, fromSeq: number, toSeq?: number): AsyncIterable<EntryBlock> {
    const role = roleOf(this.pair, author)
    const head = this.#heads[role]
    if (head === null) return
    const to = Math.min(toSeq ?? head.seq, head.seq)
    for await (const { bytes } of this.#store.chainEntries(this.id, author, Math.max(1, fromSeq), to)) yield decodeEntryFast(bytes)
  }

  async get(cid: CID): Promise<EntryBlock | undefined> {
    const bytes = await this.#store.getBlock(cid)
    if (bytes === undefined) return undefined
    const block = decodeEntryFast(bytes)
    return block.entry.pair.equals(this.id) ? block : undefined
  }

  async getBySeq(author: PeerIdString, seq: number): Promise<EntryBlock | undefined> {
    const cid = await this.#store.getCid(this.id, author, seq)
    return cid === undefined ? undefined : this.get(cid)
  }

  getMeta(key: string): Promise<Uint8Array | undefined> {
    return this.#store.getMeta(key)
  }

  /** Index of one chain (durable entries): seq and CID, ascending. */
  cids(role: PartyRole, fromSeq = 1, toSeq = Number.MAX_SAFE_INTEGER): AsyncIterable<{ seq: number; cid: CID }> {
    return this.#store.cids(this.id, role === 'provider' ? this.pair.provider : this.pair.consumer, fromSeq, toSeq)
  }

  /** An entry of either chain by role and seq, including accepted-but-not-yet-durable ones. */
  async entryAt(role: PartyRole, seq: number): Promise<EntryBlock | undefined> {
    const pending = this.#pendingBySeq[role].get(seq)
    if (pending !== undefined) return pending
    return this.getBySeq(role === 'provider' ? this.pair.provider : this.pair.consumer, seq)
  }

  /** An entry of this pair by CID, including accepted-but-not-yet-durable ones. */
  async entryByCid(cid: CID): Promise<EntryBlock | undefined> {
    for (const m of [this.#pendingBySeq.provider, this.#pendingBySeq.consumer]) {
      for (const b of m.values()) if (b.cid.equals(cid)) return b
    }
    return this.get(cid)
  }

  timeline(): AsyncIterable<EntryBlock> {
    return timelineOf(this)
  }

  subscribe(listener: (event: PairLogEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  // -------------------------------------------------------------------------
  // Checkpoints

  checkpointState(statement: CID): CheckpointState | undefined {
    return this.#states.get(statement.toString())
  }

  /** Countersigned checkpoints held, oldest (smallest) first. */
  checkpoints(): CheckpointState[] {
    return [...this.#states.values()].sort(compareStates)
  }

  /** The countersigned checkpoint covering the most entries (ties: larger statement CID), or null. */
  latestCheckpoint(): CheckpointState | null {
    return this.#latest
  }

  /** Sign a checkpoint statement as this log's identity (domain 'checkpoint'). */
  signStatement(statement: CheckpointStatement): Uint8Array {
    return signStatement(this.#identity, statement)
  }

  #addState(s: CheckpointState): void {
    this.#states.set(s.statement.toString(), s)
    if (this.#latest === null || compareStates(s, this.#latest) > 0) this.#latest = s
  }

  // -------------------------------------------------------------------------
  // Append

  /** Append the 'open' entry if this party's chain is still empty. */
  async ensureOpen(): Promise<void> {
    if (this.#pending[this.role] !== null) return
    await this.#append(null, undefined, {})
  }

  append(kind: EntryKind, body: unknown, opts: AppendOptions = {}): Promise<EntryBlock> {
    return this.#append(kind, body, opts) as Promise<EntryBlock>
  }

  async #append(kind: EntryKind | null, body: unknown, opts: AppendOptions): Promise<EntryBlock | undefined> {
    this.#assertUsable()
    this.#inflight++
    try {
      return await this.#appendTracked(kind, body, opts)
    } finally {
      if (--this.#inflight === 0) this.#idle?.()
    }
  }

  async #appendTracked(kind: EntryKind | null, body: unknown, opts: AppendOptions): Promise<EntryBlock | undefined> {
    if (kind === 'open') throw new OpenEntryError("'open' entries are written by the pair log itself")
    const now = this.#now()
    const time = opts.time ?? now
    if (time > now + this.#skew) throw new ClockSkewError(`entry time ${time} is more than ${this.#skew} ms ahead of the clock`, { time, now })
    let ckpt: Omit<CheckpointState, 'entry'> | undefined
    if (kind !== null) {
      this.#checkDocuments(body, this.me, 0)
      if (kind === 'checkpoint-proposal') checkProposalBody(this, body, this.me)
      else if (kind === 'checkpoint') ckpt = (await checkCheckpointBody(this, body, this.role)).state
      this.#assertUsable()
    }
    // From here to the write, nothing awaits: seq and prev are taken in call order.
    const blocks: EntryBlock[] = []
    let prev = this.#pending[this.role]
    // Only counterparty entries already durable and announced to listeners: whatever a listener decided from is what `seen` names.
    const seen = this.#heads[this.#other]?.cid ?? null
    if (prev === null) {
      const open = this.#sign('open', { pair: this.pair, role: this.role }, time, null, seen)
      blocks.push(open)
      prev = { seq: 1, cid: open.cid }
    } else if (kind === null) return undefined
    if (kind !== null) blocks.push(this.#sign(kind, body, time, prev, seen))
    const last = blocks[blocks.length - 1]!
    const meta: MetaWrite[] = [...(opts.meta ?? [])]
    let state: CheckpointState | undefined
    if (ckpt !== undefined) {
      state = { ...ckpt, entry: last.cid }
      meta.push({ key: checkpointMetaPrefix(this.id) + state.statement.toString(), value: encodeCheckpointState(state) })
    }
    const batch: StoreBatch = {
      entries: blocks.map((b) => ({ pair: this.id, author: this.me, seq: b.entry.seq, cid: b.cid, bytes: b.bytes })),
      heads: [{ pair: this.id, author: this.me, seq: last.entry.seq, cid: last.cid }],
      meta,
    }
    if (blocks[0]!.entry.seq === 1) batch.pairs = [{ id: this.id, descriptor: this.pair }]
    opts.validate?.(blocks)
    this.#stage(this.role, blocks)
    try {
      await this.#store.write(batch)
    } catch (err) {
      this.#failed(err)
    }
    if (state !== undefined) this.#addState(state)
    this.#durable(this.role, blocks, 'local')
    return last
  }

  #sign(kind: EntryKind, body: unknown, time: number, prev: Head | null, seen: CID | null): EntryBlock {
    return signEntryFast(this.#identity, {
      v: 1,
      pair: this.id,
      author: this.me,
      seq: prev === null ? 1 : prev.seq + 1,
      prev: prev?.cid ?? null,
      seen,
      time,
      kind,
      body,
    })
  }

  // -------------------------------------------------------------------------
  // Ingest

  ingest(blocks: readonly (Uint8Array | EntryBlock)[], opts: IngestOptions = {}): Promise<IngestResult> {
    const run = this.#ingestTail.then(() => this.#ingest(blocks, opts))
    this.#ingestTail = run.catch(() => undefined)
    return this.#track(run) as Promise<IngestResult>
  }

  async #ingest(input: readonly (Uint8Array | EntryBlock)[], opts: IngestOptions): Promise<IngestResult> {
    this.#assertUsable()
    if (!Array.isArray(input)) throw new DecodeError('ingest expects an array of entries')
    const batch = input.map((b) => this.#decodeForeign(b))
    const other = this.#other
    // Shape of the batch: our pair, the counterparty's chain, consecutive seqs.
    for (const b of batch) {
      const e = b.entry
      if (!e.pair.equals(this.id)) throw new ForeignPairError(`entry ${b.cid} belongs to pair ${e.pair}, not ${this.id}`, entryRef(b))
      if (e.author === this.me) throw new WrongAuthorError(`entry ${b.cid} is the holder's own; only counterparty entries are ingested`, entryRef(b))
      if (e.author !== this.counterparty) throw new WrongAuthorError(`entry ${b.cid} is by ${e.author}, not a party of this pair`, entryRef(b))
    }
    // Order first (a reordered batch is not a gap), then gaps.
    for (let i = 1; i < batch.length; i++) {
      const a = batch[i - 1]!
      const b = batch[i]!
      if (b.entry.seq === a.entry.seq) {
        if (b.cid.equals(a.cid)) throw new DuplicateEntryError(`entry #${b.entry.seq} appears twice in the batch`, entryRef(b))
        this.#conflict(a, b)
      }
      if (b.entry.seq < a.entry.seq) throw new OutOfOrderError(`entry #${b.entry.seq} follows #${a.entry.seq}: batch is not in chain order`, entryRef(b))
    }
    for (let i = 1; i < batch.length; i++) {
      const a = batch[i - 1]!
      const b = batch[i]!
      if (b.entry.seq > a.entry.seq + 1) throw new GapError(`batch skips from #${a.entry.seq} to #${b.entry.seq}`, a.entry.seq + 1, b.entry.seq, entryRef(b))
    }
    // Already held: must be byte-identical (otherwise a fork by the counterparty).
    const heldSeq = this.#pending[other]?.seq ?? 0
    let duplicates = 0
    const fresh: EntryBlock[] = []
    for (const b of batch) {
      if (b.entry.seq <= heldSeq) {
        const held = await this.entryAt(other, b.entry.seq)
        if (held === undefined) throw new StoreError(`store lacks held ${other} entry #${b.entry.seq}`)
        if (!held.cid.equals(b.cid)) this.#conflict(held, b)
        duplicates++
      } else fresh.push(b)
    }
    if (fresh.length === 0) {
      if ((opts.meta ?? []).length > 0) await this.#write({ meta: [...(opts.meta ?? [])] })
      return { added: [], duplicates }
    }
    this.#assertUsable()
    // The new part must continue the held chain (re-check: held may have moved during reads? no: ingests are serialized).
    const first = fresh[0]!
    if (first.entry.seq !== heldSeq + 1)
      throw new GapError(`expected ${other} entry #${heldSeq + 1}, got #${first.entry.seq}`, heldSeq + 1, first.entry.seq, entryRef(first))
    let prev = this.#pending[other]
    let seenSeq = this.#otherSeenSeq
    const now = this.#now()
    for (const b of fresh) {
      const e = b.entry
      const linked = prev === null ? e.prev === null : e.prev?.equals(prev.cid)
      if (!linked) {
        throw new BrokenLinkError(`entry #${e.seq} does not link to the held ${other} entry #${prev?.seq ?? 0}`, entryRef(b))
      }
      this.#checkOpen(b)
      if (e.time > now + this.#skew) throw new ClockSkewError(`entry #${e.seq} is dated ${e.time - now} ms in the future`, entryRef(b))
      seenSeq = await this.#checkSeen(b, seenSeq)
      prev = { seq: e.seq, cid: b.cid }
    }
    const toVerify = this.#verifyAll ? fresh : [fresh[fresh.length - 1]!]
    for (const b of toVerify) {
      if (!entrySignatureValid(b.entry)) throw new SignatureError(`entry ${b.entry.author}#${b.entry.seq} has an invalid signature`, entryRef(b))
    }
    for (const b of fresh) this.#checkDocuments(b.entry.body, b.entry.author, b.entry.seq)
    const meta: MetaWrite[] = [...(opts.meta ?? [])]
    const states = await this.#checkIngestedCheckpoints(fresh)
    for (const s of states) meta.push({ key: checkpointMetaPrefix(this.id) + s.statement.toString(), value: encodeCheckpointState(s) })
    if (opts.validate !== undefined) await opts.validate(fresh)
    this.#assertUsable()
    const last = fresh[fresh.length - 1]!
    this.#stage(other, fresh)
    this.#otherSeenSeq = seenSeq
    await this.#write({
      entries: fresh.map((b) => ({ pair: this.id, author: this.counterparty, seq: b.entry.seq, cid: b.cid, bytes: b.bytes })),
      heads: [{ pair: this.id, author: this.counterparty, seq: last.entry.seq, cid: last.cid }],
      meta,
    })
    for (const s of states) this.#addState(s)
    this.#durable(other, fresh, 'remote')
    return { added: fresh, duplicates }
  }

  #decodeForeign(b: Uint8Array | EntryBlock): EntryBlock {
    const bytes = b instanceof Uint8Array ? b : (b as Partial<EntryBlock> | null)?.bytes
    if (!(bytes instanceof Uint8Array)) throw new DecodeError('expected entry bytes or an EntryBlock')
    const known = decodeCanonicalEntry(bytes)
    if (known !== undefined) return known
    const block = decodeEntryFast(bytes)
    // Signatures cover a canonical re-encoding, so a re-encoded variant would verify under another CID.
    if (!bytesEqual(encode(block.entry), bytes)) throw new DecodeError(`entry ${block.cid} is not canonical DAG-CBOR`, entryRef(block))
    return block
  }

  #conflict(held: EntryBlock, incoming: EntryBlock): never {
    if (!entrySignatureValid(incoming.entry)) {
      throw new SignatureError(`entry ${incoming.entry.author}#${incoming.entry.seq} has an invalid signature`, entryRef(incoming))
    }
    const proof = makeEquivocationProof(held, incoming)
    try {
      verifyEquivocationProof(proof)
    } catch {
      throw new BrokenLinkError(`entry #${incoming.entry.seq} conflicts with the held entry ${held.cid}`, entryRef(incoming))
    }
    throw new EquivocationError(`${incoming.entry.author} signed two different entries #${incoming.entry.seq}`, proof, entryRef(incoming))
  }

  #checkOpen(b: EntryBlock): void {
    const e = b.entry
    if (e.seq === 1) {
      if (e.kind !== 'open') throw new OpenEntryError(`the first entry of a chain must be 'open', got '${e.kind}'`, entryRef(b))
      const body = parseWith(openBodySchema, e.body, 'open entry body')
      if (body.pair.provider !== this.pair.provider || body.pair.consumer !== this.pair.consumer) {
        throw new OpenEntryError('open entry names another pair', entryRef(b))
      }
      if (body.role !== roleOf(this.pair, e.author)) throw new OpenEntryError(`open entry claims role ${body.role}`, entryRef(b))
    } else if (e.kind === 'open') throw new OpenEntryError(`'open' entry at seq ${e.seq}`, entryRef(b))
  }

  /** The seen of a counterparty entry names one of our held entries, at or after the previous seen. */
  async #checkSeen(b: EntryBlock, previous: number): Promise<number> {
    const seen = b.entry.seen
    if (seen === null) {
      if (previous > 0) throw new SeenLinkError(`entry #${b.entry.seq} drops its seen link`, entryRef(b))
      return 0
    }
    const seq = await this.#ownSeqOf(seen)
    if (seq === undefined) throw new SeenLinkError(`entry #${b.entry.seq} has seen ${seen}, not an entry of ours we hold`, entryRef(b))
    if (seq < previous) throw new SeenLinkError(`entry #${b.entry.seq} has seen our #${seq}, behind an earlier seen #${previous}`, entryRef(b))
    return seq
  }

  async #ownSeqOf(cid: CID): Promise<number | undefined> {
    for (let i = this.#recentOwn.length - 1; i >= 0; i--) {
      const b = this.#recentOwn[i]!
      if (b.cid.equals(cid)) return b.entry.seq
    }
    const cached = this.#ownSeqs.get(cid)
    if (cached !== undefined) return cached
    const b = await this.entryByCid(cid)
    if (b === undefined || b.entry.author !== this.me) return undefined
    this.#rememberOwn(cid, b.entry.seq)
    return b.entry.seq
  }

  #rememberOwn(cid: CID, seq: number): void {
    if (this.#ownSeqs.size >= OWN_CID_CACHE) this.#ownSeqs.clear()
    this.#ownSeqs.set(cid, seq)
  }

  #checkDocuments(body: unknown, author: string, seq: number): void {
    for (const doc of embeddedDocuments(body)) {
      let ok: boolean
      try {
        ok = documentSignatureValid(doc)
      } catch {
        ok = false
      }
      if (!ok) throw new EmbeddedDocumentError(`embedded ${doc.type} document by ${doc.by} does not verify`, { author, seq, type: doc.type })
    }
  }

  async #checkIngestedCheckpoints(fresh: EntryBlock[]): Promise<CheckpointState[]> {
    const kinds = fresh.filter((b) => b.entry.kind === 'checkpoint' || b.entry.kind === 'checkpoint-proposal')
    if (kinds.length === 0) return []
    // Later checkpoints of the batch may cover (and extend) earlier entries of the same batch.
    const staged = new Map(fresh.map((b) => [b.cid.toString(), b]))
    const bySeq = new Map(fresh.map((b) => [b.entry.seq, b]))
    const states: CheckpointState[] = []
    const ctx: CheckpointContext = {
      pair: this.pair,
      id: this.id,
      entryAt: async (role, seq) => (role === this.#other ? (bySeq.get(seq) ?? this.entryAt(role, seq)) : this.entryAt(role, seq)),
      entryByCid: async (cid) => staged.get(cid.toString()) ?? this.entryByCid(cid),
      checkpointState: (cid) => states.find((s) => s.statement.equals(cid)) ?? this.checkpointState(cid),
    }
    for (const b of kinds) {
      try {
        if (b.entry.kind === 'checkpoint-proposal') checkProposalBody(ctx, b.entry.body, b.entry.author)
        else states.push({ ...(await checkCheckpointBody(ctx, b.entry.body, this.#other)).state, entry: b.cid })
      } catch (err) {
        if (err instanceof Error && 'details' in err) Object.assign((err as { details: Record<string, unknown> }).details, entryRef(b))
        throw err
      }
    }
    return states
  }

  // -------------------------------------------------------------------------
  // Plumbing

  #stage(role: PartyRole, blocks: EntryBlock[]): void {
    for (const b of blocks) {
      this.#pendingBySeq[role].set(b.entry.seq, b)
      if (role === this.role) {
        if (this.#recentOwn.length >= RECENT_OWN) this.#recentOwn.shift()
        this.#recentOwn.push(b)
      }
    }
    const last = blocks[blocks.length - 1]!
    this.#pending[role] = { seq: last.entry.seq, cid: last.cid }
  }

  #durable(role: PartyRole, blocks: EntryBlock[], origin: 'local' | 'remote'): void {
    for (const b of blocks) {
      this.#pendingBySeq[role].delete(b.entry.seq)
      const head = this.#heads[role]
      if (head === null || b.entry.seq > head.seq) this.#heads[role] = { seq: b.entry.seq, cid: b.cid }
    }
    if (this.#listeners.size > 0) for (const b of blocks) this.#emit({ type: 'entry', block: b, origin })
  }

  #emit(event: PairLogEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event)
      } catch (err) {
        this.#onListenerError?.(err)
      }
    }
  }

  async #write(batch: StoreBatch): Promise<void> {
    try {
      await this.#store.write(batch)
    } catch (err) {
      this.#failed(err)
    }
  }

  #failed(err: unknown): never {
    this.#failure ??= err
    throw err instanceof StoreError ? err : new StoreError(`durable write failed: ${(err as Error).message}`, {}, { cause: err })
  }

  #assertUsable(): void {
    if (this.#closed) throw new ClosedError('pair log is closed')
    if (this.#failure instanceof StoreWriteError) throw storeRefusal(this.#failure)
    if (this.#failure !== undefined) throw new StoreError('pair log refuses writes after a failed durable write; reopen it', {}, { cause: this.#failure })
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight++
    const done = () => {
      if (--this.#inflight === 0) this.#idle?.()
    }
    p.then(done, done)
    return p
  }

  /** Waits for appends and ingests in flight, then refuses new ones. Does not close the store. */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#inflight > 0) await new Promise<void>((resolve) => (this.#idle = resolve))
    this.#listeners.clear()
  }
}

function entryRef(b: EntryBlock): { author: string; seq: number; cid: string } {
  return { author: b.entry.author, seq: b.entry.seq, cid: b.cid.toString() }
}

function compareStates(a: CheckpointState, b: CheckpointState): number {
  if (a.size !== b.size) return a.size - b.size
  const x = a.statement.bytes
  const y = b.statement.bytes
  for (let i = 0; i < Math.min(x.byteLength, y.byteLength); i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.byteLength - y.byteLength
}

export type { Head as PairLogHead }

/**
 * The public shape of the pair log. Implementations live beside this file;
 * @tally/node, @tally/deal and the apps program against these types only.
 */
import type { CID, EntryBlock, EntryKind, PeerIdString } from '@tally/core'

/** The two parties of a pair log. Its id is the CID of dagcbor({consumer, provider, type: 'tally-pair'}). */
export interface PairDescriptor {
  provider: PeerIdString
  consumer: PeerIdString
}

export type PartyRole = 'provider' | 'consumer'

/** One chain's head as both parties compare it on (re)connect. */
export interface ChainHead {
  author: PeerIdString
  seq: number
  cid: CID
}

export interface PairHeads {
  provider: ChainHead | null
  consumer: ChainHead | null
}

/** What `ingest` did with a batch of counterparty entries. */
export interface IngestResult {
  /** Entries newly stored, in chain order. */
  added: EntryBlock[]
  /** Entries already held byte-for-byte (idempotent re-delivery). */
  duplicates: number
}

/** An extra key/value written in the same atomic batch as the entries (session state, dedup ids). */
export interface MetaWrite {
  key: string
  /** `null` deletes the key. */
  value: Uint8Array | null
}

export interface AppendOptions {
  /** Entry time in ms; defaults to Date.now(). */
  time?: number
  /** Written atomically with the entry. */
  meta?: MetaWrite[]
  /**
   * Called with the signed entries about to be written (the chain's 'open'
   * first, if new), synchronously, before anything is staged; throwing
   * aborts the append and nothing is written. Where a party's deal
   * reducer checks its own transition against the exact `seen` it names.
   */
  validate?: (blocks: readonly EntryBlock[]) => void
}

export interface IngestOptions {
  meta?: MetaWrite[]
  /**
   * Called with the entries about to be added (chain order), after every
   * check of the log itself and before the atomic write; throwing aborts
   * the batch and nothing is stored. Where the deal reducer refuses
   * illegal transitions (DESIGN invariant 2). Not called when nothing is new.
   */
  validate?: (added: readonly EntryBlock[]) => void | Promise<void>
}

export type PairLogEvent = { type: 'entry'; block: EntryBlock; origin: 'local' | 'remote' }

/** The pair log as one party holds it. */
export interface PairLogApi {
  readonly pair: PairDescriptor
  readonly id: CID
  /** The holder's identity's role in this pair. */
  readonly role: PartyRole
  readonly me: PeerIdString
  readonly counterparty: PeerIdString

  /** Append an entry by the holder; resolves only once it is durable. Concurrent appends share one durable write. */
  append(kind: EntryKind, body: unknown, opts?: AppendOptions): Promise<EntryBlock>
  /**
   * Store the counterparty's entries (bytes or decoded blocks, in chain
   * order, possibly with already-held ones). Verifies links, pair, author,
   * and the signature of the last new entry of the batch (which covers the
   * rest through the hash links). All or nothing: on any error nothing is
   * stored. Throws GapError, ForeignPairError, BrokenLinkError,
   * SignatureError, EquivocationError (carrying a proof), DecodeError.
   */
  ingest(blocks: readonly (Uint8Array | EntryBlock)[], opts?: IngestOptions): Promise<IngestResult>
  heads(): PairHeads
  /** Entries of one chain with from <= seq <= to, in order. */
  range(author: PeerIdString, fromSeq: number, toSeq?: number): AsyncIterable<EntryBlock>
  get(cid: CID): Promise<EntryBlock | undefined>
  getBySeq(author: PeerIdString, seq: number): Promise<EntryBlock | undefined>
  getMeta(key: string): Promise<Uint8Array | undefined>
  /** Both chains merged in the deterministic causal order (prev and seen links; ties by time, then author). */
  timeline(): AsyncIterable<EntryBlock>
  /** Called for every entry stored after the listener is added. Returns an unsubscribe function. */
  subscribe(listener: (event: PairLogEvent) => void): () => void
  close(): Promise<void>
}

// ---------------------------------------------------------------------------
// Verification of exports (offline), shared by `tally verify`, the arbiter
// and the deal reducer's replay.

/**
 * One thing wrong with an export or a replayed log. `code` is the error
 * class name (e.g. 'BrokenLinkError', 'BlockHashMismatchError', or a deal
 * reducer's rejection name); `author`/`seq`/`cid` name the entry concerned.
 */
export interface VerifyProblem {
  code: string
  message: string
  author?: PeerIdString
  seq?: number
  /** CID string of the entry (or block) concerned. */
  cid?: string
  /** Byte offset in the CAR, for structural damage. */
  offset?: number
}

export interface VerifyOptions {
  /** Called now and then with bytes (or blocks) done and the total. */
  onProgress?: (done: number, total: number) => void
  /**
   * Replays the whole timeline (deterministic merge of both chains) through
   * a state machine; the problems it returns are added to the report.
   * Only called when the chains themselves are intact.
   */
  replay?: (timeline: EntryBlock[]) => VerifyProblem[]
  /** Verify every entry's signature, not only heads and checkpoints (slower). */
  verifyAll?: boolean
}

export interface ChainSummary {
  entries: number
  head: { seq: number; cid: string } | null
}

export interface VerifyReport {
  ok: boolean
  pair?: PairDescriptor
  /** CID string of the pair id. */
  pairId?: string
  parties?: { provider: PeerIdString; consumer: PeerIdString }
  chains: { provider: ChainSummary; consumer: ChainSummary }
  /** Countersigned checkpoints found and checked. */
  checkpoints: number
  /** Balances of the latest countersigned checkpoint (opaque value set by the deal layer). */
  balances?: Record<string, unknown>
  /** Third-party signed documents whose signatures were checked. */
  documents: number
  blocks: number
  firstProblem?: VerifyProblem
  problems: VerifyProblem[]
}

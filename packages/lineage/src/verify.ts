/**
 * Offline verification of an exported pair log (CARv1), with no network
 * and no other input. One pass hashes every block, decodes every entry
 * strictly and keeps a compact record per entry (offsets into the CAR, no
 * decoded objects); the chains are then walked back from the heads by hash
 * link. Signatures are checked where they authenticate the rest: each
 * chain head, both signatures of every checkpoint (and each proposal's),
 * and every embedded third-party document. Every problem names the entry
 * concerned (author, seq, CID); a damaged block that cannot be read is
 * named through the link that points to it (its successor's prev, or the
 * manifest's head).
 */
import { CID, type EntryBlock, TallyError, decode, decodeEntry, documentSignatureValid, embeddedDocuments, entrySignatureValid, parseWith } from '@tally/core'
import type { PairDescriptor, PartyRole, VerifyOptions, VerifyProblem, VerifyReport } from './api.ts'
import { type ExportManifest, parseManifest } from './car.ts'
import { CID_PREFIX, CarScanner, type ScannedBlock } from './car-scan.ts'
import { type CheckpointStatement, assertStatementSigs, parseCheckpointBody, parseProposalBody, statementCid, statementSignatureValid } from './checkpoint-statement.ts'
import type { CheckpointState } from './coverage.ts'
import { decodeEntryFast, scanEnvelope } from './entry-codec.ts'
import { type ExportSource, fileSource, memorySource } from './export-source.ts'
import { makeEquivocationProof, verifyEquivocationProof } from './equivocation.ts'
import { MerkleFrontier, bytesEq } from './merkle.ts'
import { openBodySchema, pairIdOf } from './pair.ts'
import { type MergeNode, mergeOrder } from './timeline.ts'

/** Problems kept in a report; counting goes on past it. */
export const MAX_PROBLEMS = 1000
const ROLES: PartyRole[] = ['provider', 'consumer']
const PROVIDER = 0
const CONSUMER = 1

/** One entry as the verifier keeps it: offsets and digest slots, no decoded objects. */
class Rec {
  reached = false
  seenSeq = 0
  constructor(
    /** Slot of its own digest (the hash of its bytes) in the digest arena. */
    readonly slot: number,
    readonly dataOffset: number,
    readonly dataLength: number,
    readonly author: string,
    readonly seq: number,
    readonly time: number,
    readonly kind: string,
    readonly pairSlot: number,
    /** -1 for null. */
    readonly prevSlot: number,
    readonly seenSlot: number,
  ) {}
}

/** 32-byte digests packed in one growing buffer: 100,000 entries cost ~13 MB, not a copy of the file. */
class DigestArena {
  buf = new Uint8Array(32 * 4096)
  n = 0

  add(src: Uint8Array, off = 0): number {
    if ((this.n + 1) * 32 > this.buf.byteLength) {
      const bigger = new Uint8Array(this.buf.byteLength * 2)
      bigger.set(this.buf)
      this.buf = bigger
    }
    this.buf.set(src.subarray(off, off + 32), this.n * 32)
    return this.n++
  }

  get(slot: number): Uint8Array {
    return this.buf.subarray(slot * 32, slot * 32 + 32)
  }

  eq(a: number, b: number): boolean {
    return eq32(this.buf, a * 32, this.buf, b * 32)
  }

  eqBytes(slot: number, d: Uint8Array): boolean {
    return eq32(this.buf, slot * 32, d, 0)
  }
}

/** A link's expectation: the entry `seq` of `author` with this digest. */
interface Expect {
  author: string
  seq: number
  digest: Uint8Array
}

interface PendingProblem {
  code: string
  message: string
  offset?: number
  rec?: Rec
  expect?: Expect
  /** Digests that may name the entry (scan problems): the block's actual digest, then the declared one. */
  digests?: Uint8Array[]
  /** A problem reported by the replay, kept as given. */
  given?: VerifyProblem
}

/** What importCar and openExport need beyond the report. */
export interface ExportAnalysis {
  report: VerifyReport
  /** Reads entries by the offsets below; close it when done. */
  source: ExportSource
  pair?: PairDescriptor
  /** Entries of each chain in seq order (index seq - 1), when intact. */
  chains: Record<PartyRole, { dataOffset: number; dataLength: number }[]>
  states: CheckpointState[]
  /** Timeline order (0 provider, 1 consumer), when the chains are intact. */
  order: Uint8Array
}

function cidOfDigest(d: Uint8Array): CID {
  const bytes = new Uint8Array(36)
  bytes.set(CID_PREFIX, 0)
  bytes.set(d, 4)
  return CID.decode(bytes)
}

/** The digest of a dag-cbor sha2-256 CID, undefined for any other kind. */
function digestOfCid(cid: CID): Uint8Array | undefined {
  return cid.code === 0x71 && cid.multihash.code === 0x12 && cid.multihash.digest.byteLength === 32 ? cid.multihash.digest : undefined
}

function eq32(a: Uint8Array, ai: number, b: Uint8Array, bi: number): boolean {
  for (let i = 0; i < 32; i++) if (a[ai + i] !== b[bi + i]) return false
  return true
}

/**
 * Verify an export (bytes or a file path). Never throws for bad content:
 * the report says what is wrong. A path that cannot be opened throws
 * StoreError.
 */
export async function verifyExport(input: Uint8Array | string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const a = await analyzeExport(input, opts)
  a.source.close()
  return a.report
}

/**
 * The full analysis behind verifyExport. A path is read in chunks (memory
 * stays bounded by the entry count, not the file size); the caller closes
 * `source`.
 */
export async function analyzeExport(input: Uint8Array | string, opts: VerifyOptions = {}): Promise<ExportAnalysis> {
  const source = typeof input === 'string' ? fileSource(input) : memorySource(input)
  try {
    return new Verifier(source, opts).run()
  } catch (err) {
    source.close()
    throw err
  }
}

class Verifier {
  readonly source: ExportSource
  readonly opts: VerifyOptions
  readonly arena = new DigestArena()
  /** Entries by author, indexed by seq; `extras` holds any second entry at a taken position. */
  readonly byAuthor = new Map<string, Rec[]>()
  readonly extras: Rec[] = []
  recCount = 0
  /** Entries recovered from sections whose CID header is damaged. */
  readonly suspects: Rec[] = []
  /** Entries whose bodies are checked later (open, checkpoint kinds); bodies are read again then. */
  readonly special: Rec[] = []
  readonly pending: PendingProblem[] = []
  problemCount = 0
  documents = 0
  readonly docCache = new Map<string, boolean>()
  manifest: ExportManifest | undefined
  manifestBlocks: { digest: Uint8Array; offset: number; manifest: ExportManifest }[] = []
  blocks = 0
  pair: PairDescriptor | undefined
  pairDigest: Uint8Array | undefined
  readonly chains: (Rec | undefined)[][] = [[], []]
  readonly heads: (Expect | null)[] = [null, null]
  chainsIntact = true
  readonly reachedCount = [0, 0]
  /** Lowest seq the walk back from each head reached (1 when the chain is whole). */
  readonly lowestReached = [1, 1]
  readonly states = new Map<string, CheckpointState>()
  readonly stateList: CheckpointState[] = []
  latest: { state: CheckpointState; statement: CheckpointStatement } | undefined
  order = new Uint8Array(0)

  constructor(source: ExportSource, opts: VerifyOptions) {
    this.source = source
    this.opts = opts
  }

  problem(p: PendingProblem): void {
    this.problemCount++
    if (this.pending.length < MAX_PROBLEMS) this.pending.push(p)
  }

  digestOf(rec: Rec): Uint8Array {
    return this.arena.get(rec.slot)
  }

  body(rec: Rec): unknown {
    return this.block(rec).entry.body
  }

  run(): ExportAnalysis {
    const scanner = new CarScanner(
      (block) => this.onBlock(block),
      (p) => this.problem({ code: p.code, message: p.message, offset: p.offset, digests: p.digests }),
    )
    this.source.scan((chunk, base, final) => scanner.push(chunk, base, final), this.opts.onProgress)
    this.resolveManifest(scanner.roots[0])
    this.walkChains()
    if (this.chainsIntact) {
      this.checkSeenAndOpen()
      this.buildTimeline()
      this.checkCheckpoints()
    }
    this.checkHeadSignatures()
    if (this.opts.replay !== undefined && this.problemCount === 0) this.replay(this.opts.replay)
    return this.finish()
  }

  // --- pass 1: every block -----------------------------------------------------------

  onBlock(block: ScannedBlock): void {
    this.blocks++
    if (!block.intact) {
      // The data may be intact under a damaged CID header: keep it aside; a link may vouch for it.
      const rec = this.entryRec(block, false)
      if (rec !== undefined) this.suspects.push(rec)
      return
    }
    const rec = this.entryRec(block, true)
    if (rec === undefined) return
    let chain = this.byAuthor.get(rec.author)
    if (chain === undefined) this.byAuthor.set(rec.author, (chain = []))
    this.recCount++
    // A seq beyond the number of blocks cannot belong to an intact chain; keep the array dense.
    if (rec.seq > this.source.size / 40 || chain[rec.seq] !== undefined) this.extras.push(rec)
    else chain[rec.seq] = rec
  }

  /** Decode one block as an entry (strictly); report problems when `report`. */
  entryRec(block: ScannedBlock, report: boolean): Rec | undefined {
    const data = block.data
    const s = scanEnvelope(data)
    if (s === undefined) {
      if (report) this.notAnEntry(block, data)
      return undefined
    }
    let body: unknown
    try {
      body = decode(data.subarray(s.bodyStart, s.bodyEnd))
    } catch (err) {
      if (report) this.problem({ code: 'DecodeError', message: `entry body: ${(err as Error).message}`, offset: block.sectionOffset, digests: [block.digest] })
      return undefined
    }
    const a = this.arena
    const rec = new Rec(
      a.add(block.digest),
      block.dataOffset,
      block.dataLength,
      s.author,
      s.seq,
      s.time,
      s.kind,
      a.add(data, s.pairDigestAt),
      s.prevDigestAt < 0 ? -1 : a.add(data, s.prevDigestAt),
      s.seenDigestAt < 0 ? -1 : a.add(data, s.seenDigestAt),
    )
    if (s.kind === 'open' || s.kind === 'checkpoint' || s.kind === 'checkpoint-proposal') this.special.push(rec)
    if (report && typeof body === 'object' && body !== null) this.checkDocuments(body, rec)
    return rec
  }

  checkDocuments(body: unknown, rec: Rec): void {
    for (const doc of embeddedDocuments(body)) {
      this.documents++
      const id = Buffer.from(doc.sig.buffer, doc.sig.byteOffset, doc.sig.byteLength).toString('latin1')
      let ok = this.docCache.get(id)
      if (ok === undefined) {
        try {
          ok = documentSignatureValid(doc)
        } catch {
          ok = false
        }
        this.docCache.set(id, ok)
      }
      if (!ok) this.problem({ code: 'EmbeddedDocumentError', message: `embedded ${doc.type} document by ${doc.by} does not verify`, rec })
    }
  }

  /** A block that is not a canonical entry: the manifest, or a bad entry whose exact fault core names. */
  notAnEntry(block: ScannedBlock, data: Uint8Array): void {
    const digests = [block.digest]
    let value: unknown
    try {
      value = decode(data.slice())
    } catch (err) {
      this.problem({ code: (err as Error).name, message: (err as Error).message, offset: block.sectionOffset, digests })
      return
    }
    if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'tally-export') {
      try {
        this.manifestBlocks.push({ digest: block.digest, offset: block.sectionOffset, manifest: parseManifest(value) })
      } catch (err) {
        this.problem({ code: 'ManifestError', message: (err as Error).message, offset: block.sectionOffset, digests })
      }
      return
    }
    try {
      decodeEntry(data)
      this.problem({ code: 'DecodeError', message: 'entry is not in canonical form', offset: block.sectionOffset, digests })
    } catch (err) {
      this.problem({ code: err instanceof TallyError ? err.name : 'DecodeError', message: (err as Error).message, offset: block.sectionOffset, digests })
    }
  }

  resolveManifest(root: CID | undefined): void {
    const rootDigest = root === undefined ? undefined : digestOfCid(root)
    const atRoot = rootDigest === undefined ? undefined : this.manifestBlocks.find((m) => bytesEq(m.digest, rootDigest))
    if (atRoot !== undefined) this.manifest = atRoot.manifest
    else if (this.manifestBlocks.length === 1) {
      this.manifest = this.manifestBlocks[0]!.manifest
      this.problem({ code: 'ManifestError', message: 'the CAR root does not name the export manifest' })
    } else if (rootDigest !== undefined) {
      this.problem({ code: 'ManifestError', message: 'the export manifest named by the CAR root is missing or damaged' })
    }
    for (const m of this.manifestBlocks) {
      if (m.manifest !== this.manifest) this.problem({ code: 'UnexpectedBlockError', message: 'an extra export manifest', offset: m.offset })
    }
    this.pair = this.manifest?.pair ?? this.pairFromOpenEntries()
    if (this.pair !== undefined) {
      try {
        this.pairDigest = pairIdOf(this.pair).multihash.digest
      } catch {
        this.pair = undefined
      }
    }
  }

  /** Without a usable manifest, the pair is what the 'open' entries say. */
  pairFromOpenEntries(): PairDescriptor | undefined {
    for (const chain of this.byAuthor.values()) {
      const rec = chain[1]
      if (rec === undefined || rec.kind !== 'open') continue
      let body: { pair?: PairDescriptor } | undefined
      try {
        body = this.body(rec) as { pair?: PairDescriptor }
      } catch {
        continue
      }
      if (typeof body?.pair?.provider === 'string' && typeof body.pair.consumer === 'string') {
        return { provider: body.pair.provider, consumer: body.pair.consumer }
      }
    }
    return undefined
  }

  // --- pass 2: chains by hash link -------------------------------------------------------

  party(r: number): string {
    return r === PROVIDER ? this.pair!.provider : this.pair!.consumer
  }

  headOf(r: number): Expect | null {
    const author = this.party(r)
    if (this.manifest !== undefined) {
      const h = this.manifest.heads[ROLES[r]!]
      const digest = h === null ? undefined : digestOfCid(h.cid)
      return h === null || digest === undefined ? null : { author, seq: h.seq, digest }
    }
    // No manifest: the highest entry of the party.
    const chain = this.byAuthor.get(author) ?? []
    let best: Rec | undefined = chain[chain.length - 1]
    for (const r of this.suspects) if (r.author === author && (best === undefined || r.seq > best.seq)) best = r
    return best === undefined ? null : { author, seq: best.seq, digest: this.digestOf(best) }
  }

  /** The entry a link expects at (author, seq), whose digest is `want` (an arena slot, or bytes). */
  find(author: string, seq: number, want: number | Uint8Array): Rec | undefined {
    const is = (r: Rec) => (typeof want === 'number' ? this.arena.eq(r.slot, want) : this.arena.eqBytes(r.slot, want))
    const at = this.byAuthor.get(author)?.[seq]
    if (at !== undefined && is(at)) return at
    for (const r of this.extras) if (r.author === author && r.seq === seq && is(r)) return r
    for (const r of this.suspects) if (r.author === author && r.seq === seq && is(r)) return r
    return undefined
  }

  walkChains(): void {
    if (this.pair === undefined) {
      this.chainsIntact = false
      this.problem({ code: 'ManifestError', message: 'cannot tell the pair: no manifest and no open entry' })
      return
    }
    for (const r of [PROVIDER, CONSUMER]) {
      const role = ROLES[r]!
      const author = this.party(r)
      const head = this.headOf(r)
      this.heads[r] = head
      const chain: (Rec | undefined)[] = []
      this.chains[r] = chain
      if (head === null) continue
      this.lowestReached[r] = head.seq + 1
      if (head.seq > this.recCount + this.suspects.length) {
        this.problem({ code: 'MissingEntryError', message: `the ${role} head is #${head.seq}, the export holds fewer entries`, expect: head })
        this.chainsIntact = false
        continue
      }
      chain.length = head.seq + 1
      let seq = head.seq
      let want: number | Uint8Array = head.digest
      for (;;) {
        const rec = this.find(author, seq, want)
        if (rec === undefined) {
          const expect = { author, seq, digest: (typeof want === 'number' ? this.arena.get(want) : want).slice() }
          this.problem({ code: 'MissingEntryError', message: `${role} entry #${seq} is not in the export (or is damaged)`, expect })
          this.chainsIntact = false
          break
        }
        if (!this.arena.eqBytes(rec.pairSlot, this.pairDigest!)) {
          this.problem({ code: 'ForeignPairError', message: `${role} entry #${rec.seq} belongs to another pair`, rec })
          this.chainsIntact = false
        }
        rec.reached = true
        this.reachedCount[r] = this.reachedCount[r]! + 1
        this.lowestReached[r] = seq
        chain[seq] = rec
        if (rec.prevSlot < 0) break
        seq--
        want = rec.prevSlot
      }
    }
    this.reportUnreached()
  }

  /** Entries no link reaches: forks, strays, entries beyond the heads, foreign entries. */
  reportUnreached(): void {
    const visit = (rec: Rec) => {
      if (rec.reached) return
      const r = rec.author === this.pair!.provider ? PROVIDER : rec.author === this.pair!.consumer ? CONSUMER : -1
      if (r >= 0 && rec.seq < this.lowestReached[r]!) return // below a break: reported as missing already
      this.chainsIntact = false
      const twin = r < 0 ? undefined : this.chains[r]![rec.seq]
      if (twin !== undefined && this.isEquivocation(twin, rec)) {
        this.problem({ code: 'EquivocationError', message: `${ROLES[r]} signed two different entries #${rec.seq}`, rec: twin })
      } else if (r < 0) {
        this.problem({ code: 'WrongAuthorError', message: `entry by ${rec.author}, not a party of this pair`, rec })
      } else {
        this.problem({ code: 'UnexpectedBlockError', message: `${ROLES[r]} entry #${rec.seq} is not on the chain from the head`, rec })
      }
    }
    for (const chain of this.byAuthor.values()) for (const rec of chain) if (rec !== undefined) visit(rec)
    for (const rec of this.extras) visit(rec)
  }

  block(rec: Rec): EntryBlock {
    return decodeEntryFast(this.source.read(rec.dataOffset, rec.dataLength))
  }

  isEquivocation(a: Rec, b: Rec): boolean {
    try {
      verifyEquivocationProof(makeEquivocationProof(this.block(a), this.block(b)))
      return true
    } catch {
      return false
    }
  }

  checkSeenAndOpen(): void {
    for (const r of [PROVIDER, CONSUMER]) {
      const role = ROLES[r]!
      const other = this.chains[1 - r]!
      const chain = this.chains[r]!
      // Seen links only move forward, so one pointer along the other chain finds every target.
      let j = 1
      let last = 0
      for (let seq = 1; seq < chain.length; seq++) {
        const rec = chain[seq]!
        if (seq === 1) this.checkOpen(rec, role)
        else if (rec.kind === 'open') this.problem({ code: 'OpenEntryError', message: `'open' entry at seq ${seq}`, rec })
        if (rec.seenSlot < 0) {
          if (last > 0) this.problem({ code: 'SeenLinkError', message: `${role} entry #${seq} drops its seen link`, rec })
          continue
        }
        let k = Math.max(j, 1)
        while (k < other.length && !this.arena.eq(other[k]!.slot, rec.seenSlot)) k++
        if (k >= other.length) {
          const behind = other.slice(1, j).some((o) => o !== undefined && this.arena.eq(o.slot, rec.seenSlot))
          this.problem({
            code: 'SeenLinkError',
            message: behind ? `${role} entry #${seq} has a seen link going backwards` : `${role} entry #${seq} has a seen link to no entry of the other chain`,
            rec,
          })
          continue
        }
        rec.seenSeq = k
        last = k
        j = k
      }
    }
  }

  checkOpen(rec: Rec, role: PartyRole): void {
    if (rec.kind !== 'open') {
      this.problem({ code: 'OpenEntryError', message: `the first ${role} entry is '${rec.kind}', not 'open'`, rec })
      return
    }
    try {
      const body = parseWith(openBodySchema, this.body(rec), 'open entry body')
      if (body.pair.provider !== this.pair!.provider || body.pair.consumer !== this.pair!.consumer || body.role !== role) {
        this.problem({ code: 'OpenEntryError', message: `the ${role} open entry names another pair or role`, rec })
      }
    } catch (err) {
      this.problem({ code: 'OpenEntryError', message: (err as Error).message, rec })
    }
  }

  nodes(r: number, from = 0, to = this.chains[r]!.length - 1, otherFrom = 0): MergeNode[] {
    const chain = this.chains[r]!
    const out: MergeNode[] = new Array(Math.max(0, to - from))
    for (let seq = from + 1; seq <= to; seq++) {
      const rec = chain[seq]!
      out[seq - from - 1] = { time: rec.time, seenSeq: Math.max(0, rec.seenSeq - otherFrom) }
    }
    return out
  }

  buildTimeline(): void {
    const { order } = mergeOrder(this.nodes(PROVIDER), this.nodes(CONSUMER), this.pair!.provider, this.pair!.consumer)
    this.order = Uint8Array.from(order, (role) => (role === 'provider' ? PROVIDER : CONSUMER))
  }

  // --- checkpoints ------------------------------------------------------------------------

  checkCheckpoints(): void {
    const listed = (this.manifest?.checkpoints ?? []).map((c) => digestOfCid(c) ?? new Uint8Array(32))
    const found: Rec[] = []
    const next = [1, 1]
    for (const r of this.order) {
      const rec = this.chains[r]![next[r]!++]!
      if (rec.kind === 'checkpoint-proposal') this.checkProposal(rec)
      if (rec.kind !== 'checkpoint') continue
      found.push(rec)
      if (this.manifest !== undefined && !listed.some((d) => this.arena.eqBytes(rec.slot, d))) {
        this.problem({ code: 'ManifestError', message: 'checkpoint missing from the manifest list', rec })
      }
      try {
        this.checkCheckpoint(rec, r)
      } catch (err) {
        this.problem({ code: err instanceof TallyError ? err.name : 'CheckpointError', message: (err as Error).message, rec })
      }
    }
    for (const d of listed) {
      if (!found.some((rec) => this.arena.eqBytes(rec.slot, d))) {
        this.problem({ code: 'ManifestError', message: `manifest lists checkpoint ${cidOfDigest(d)}, not a checkpoint of the chains` })
      }
    }
  }

  checkProposal(rec: Rec): void {
    try {
      const p = parseProposalBody(this.body(rec))
      if (!bytesEq(p.statement.pair.multihash.digest, this.pairDigest!)) throw new TallyError('proposal is for another pair')
      if (!statementSignatureValid(p.statement, p.sig, rec.author)) throw new TallyError('proposal signature does not verify')
    } catch (err) {
      this.problem({ code: 'CheckpointError', message: (err as Error).message, rec })
    }
  }

  /** The reached entry of chain r whose digest equals `cid`'s, if any. */
  reachedByCid(r: number, cid: CID): Rec | undefined {
    const d = digestOfCid(cid)
    if (d === undefined) return undefined
    for (const rec of this.chains[r]!) if (rec !== undefined && this.arena.eqBytes(rec.slot, d)) return rec
    return undefined
  }

  checkCheckpoint(rec: Rec, r: number): void {
    const body = parseCheckpointBody(this.body(rec))
    const s = body.statement
    if (!bytesEq(s.pair.multihash.digest, this.pairDigest!)) throw new TallyError('checkpoint is for another pair')
    assertStatementSigs(s, body.sigs, this.pair!)
    const proposal = this.reachedByCid(1 - r, body.proposal)
    if (proposal === undefined || proposal.kind !== 'checkpoint-proposal') {
      throw new TallyError("checkpoint does not answer the other party's proposal in the export")
    }
    const p = parseProposalBody(this.body(proposal))
    if (!statementCid(p.statement).equals(statementCid(s))) throw new TallyError('checkpoint statement differs from its proposal')
    let prev: CheckpointState | null = null
    if (s.prev !== null) {
      prev = this.states.get(s.prev.toString()) ?? null
      if (prev === null) throw new TallyError('checkpoint extends a checkpoint that is not earlier in the export')
    }
    const to = { provider: s.heads.provider?.seq ?? 0, consumer: s.heads.consumer?.seq ?? 0 }
    const from = prev?.heads ?? { provider: 0, consumer: 0 }
    for (const x of [PROVIDER, CONSUMER]) {
      const role = ROLES[x]!
      const h = s.heads[role]
      if (to[role] < from[role]) throw new TallyError('checkpoint heads go backwards')
      if (h === null) continue
      const at = this.chains[x]![h.seq]
      const d = digestOfCid(h.cid)
      if (at === undefined || d === undefined || !this.arena.eqBytes(at.slot, d)) throw new TallyError(`checkpoint ${role} head #${h.seq} is not that entry of the chain`)
    }
    const f = this.coverage(prev, from, to)
    const root = f.root()
    if (f.size !== s.size || !bytesEq(root, s.root)) throw new TallyError('checkpoint root or size does not match the entries it covers')
    const state: CheckpointState = {
      statement: statementCid(s),
      entry: cidOfDigest(this.digestOf(rec)),
      prev: s.prev,
      heads: to,
      size: f.size,
      root,
      frontier: { nodes: f.nodes, sizes: f.sizes },
    }
    this.states.set(state.statement.toString(), state)
    this.stateList.push(state)
    if (this.latest === undefined || state.size >= this.latest.state.size) this.latest = { state, statement: s }
  }

  coverage(prev: CheckpointState | null, from: { provider: number; consumer: number }, to: { provider: number; consumer: number }): MerkleFrontier {
    for (const x of [PROVIDER, CONSUMER]) {
      for (let seq = from[ROLES[x]!] + 1; seq <= to[ROLES[x]!]; seq++) {
        if (this.chains[x]![seq]!.seenSeq > to[ROLES[1 - x]!]) {
          throw new TallyError(`checkpoint covers ${ROLES[x]} #${seq}, which saw beyond the ${ROLES[1 - x]} head`)
        }
      }
    }
    const { order } = mergeOrder(
      this.nodes(PROVIDER, from.provider, to.provider, from.consumer),
      this.nodes(CONSUMER, from.consumer, to.consumer, from.provider),
      this.pair!.provider,
      this.pair!.consumer,
    )
    const f = new MerkleFrontier()
    if (prev !== null) {
      f.nodes = prev.frontier.nodes.slice()
      f.sizes = prev.frontier.sizes.slice()
      f.size = prev.size
    }
    const leaf = new Uint8Array(36)
    leaf.set(CID_PREFIX, 0)
    const next = [from.provider + 1, from.consumer + 1]
    for (const role of order) {
      const x = role === 'provider' ? PROVIDER : CONSUMER
      leaf.set(this.digestOf(this.chains[x]![next[x]!++]!), 4)
      f.add(leaf)
    }
    return f
  }

  // --- signatures -------------------------------------------------------------------------

  checkHeadSignatures(): void {
    if (this.pair === undefined) return
    for (const r of [PROVIDER, CONSUMER]) {
      const chain = this.chains[r]!
      const top = chain[chain.length - 1]
      const targets = this.opts.verifyAll === true ? chain.filter((x): x is Rec => x !== undefined) : top === undefined ? [] : [top]
      for (const rec of targets) {
        let ok = false
        try {
          ok = entrySignatureValid(this.block(rec).entry)
        } catch {
          ok = false
        }
        if (!ok) this.problem({ code: 'SignatureError', message: `${ROLES[r]} entry #${rec.seq} has an invalid signature`, rec })
      }
    }
  }

  replay(fn: (timeline: EntryBlock[]) => VerifyProblem[]): void {
    const next = [1, 1]
    const timeline = Array.from(this.order, (r) => this.block(this.chains[r]![next[r]!++]!))
    let found: VerifyProblem[]
    try {
      found = fn(timeline)
    } catch (err) {
      found = [{ code: err instanceof Error ? err.name : 'ReplayError', message: `replay failed: ${(err as Error).message}` }]
    }
    for (const given of found) this.problem({ code: given.code, message: given.message, given, ...(given.cid === undefined ? {} : { digests: safeDigest(given.cid) }) })
  }

  // --- report -----------------------------------------------------------------------------

  /** The entry a problem is about: its record, the link's expectation, or a block digest some link names. */
  who(p: PendingProblem): { author: string; seq: number; digest: Uint8Array } | undefined {
    if (p.rec !== undefined) return { author: p.rec.author, seq: p.rec.seq, digest: this.digestOf(p.rec) }
    if (p.expect !== undefined) return p.expect
    for (const d of p.digests ?? []) {
      for (const r of [PROVIDER, CONSUMER]) {
        const chain = this.chains[r] ?? []
        for (const rec of chain) if (rec !== undefined && bytesEq(this.digestOf(rec), d)) return { author: rec.author, seq: rec.seq, digest: d }
      }
      for (const q of this.pending) if (q.expect !== undefined && bytesEq(q.expect.digest, d)) return q.expect
    }
    return undefined
  }

  /**
   * Damage no link reaches (header, manifest, bytes lost to a broken length)
   * is reported against the nearest chain head: what the damaged part anchors.
   */
  anchor(): { author: string; seq: number; digest: Uint8Array } | undefined {
    for (const h of this.heads) if (h !== null) return h
    for (const chain of this.byAuthor.values()) {
      const rec = chain[chain.length - 1]
      if (rec !== undefined) return { author: rec.author, seq: rec.seq, digest: this.digestOf(rec) }
    }
    return undefined
  }

  finish(): ExportAnalysis {
    const named = this.pending.map((p) => this.who(p))
    // Name through links first; only if nothing is named that way, anchor the unnamed to a head.
    if (!named.some((w) => w !== undefined)) {
      const a = this.anchor()
      for (let i = 0; i < named.length; i++) named[i] = a
    }
    const problems = this.pending.map((p, i): VerifyProblem => {
      const out: VerifyProblem = p.given !== undefined ? { ...p.given } : { code: p.code, message: p.message }
      if (p.offset !== undefined) out.offset = p.offset
      const w = named[i]
      if (w !== undefined && out.author === undefined) {
        out.author = w.author
        out.seq = w.seq
        out.cid = cidOfDigest(w.digest).toString()
      }
      return out
    })
    const summary = (r: number) => {
      const chain = this.chains[r]!
      const top = chain.length > 1 ? chain[chain.length - 1] : undefined
      return { entries: this.reachedCount[r]!, head: top === undefined ? null : { seq: top.seq, cid: cidOfDigest(this.digestOf(top)).toString() } }
    }
    const report: VerifyReport = {
      ok: this.problemCount === 0,
      chains: { provider: summary(PROVIDER), consumer: summary(CONSUMER) },
      checkpoints: this.stateList.length,
      documents: this.documents,
      blocks: this.blocks,
      problems,
    }
    if (this.pair !== undefined) {
      report.pair = this.pair
      report.parties = { provider: this.pair.provider, consumer: this.pair.consumer }
      report.pairId = pairIdOf(this.pair).toString()
    }
    const balances = this.latest?.statement.balances
    if (balances !== null && typeof balances === 'object' && !Array.isArray(balances) && !(balances instanceof Uint8Array)) {
      report.balances = balances as Record<string, unknown>
    }
    const first = problems.find((p) => p.author !== undefined) ?? problems[0]
    if (first !== undefined) report.firstProblem = first
    const compact = (r: number) => this.chains[r]!.slice(1).map((x) => ({ dataOffset: x?.dataOffset ?? -1, dataLength: x?.dataLength ?? 0 }))
    const analysis: ExportAnalysis = {
      report,
      source: this.source,
      chains: { provider: compact(PROVIDER), consumer: compact(CONSUMER) },
      states: this.stateList,
      order: this.order,
    }
    if (this.pair !== undefined) analysis.pair = this.pair
    return analysis
  }
}

function safeDigest(cid: string): Uint8Array[] {
  try {
    const d = digestOfCid(CID.parse(cid))
    return d === undefined ? [] : [d]
  } catch {
    return []
  }
}

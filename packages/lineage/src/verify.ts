/**
 * Offline verification of an exported pair log (CARv1), with no network
 * and no other input. One pass hashes every block, decodes every entry
 * strictly and keeps a compact record per entry (verify-table.ts: offsets
 * and digests in typed arrays, no decoded objects); the chains are then
 * walked back from the heads by hash link. Signatures are checked where
 * they authenticate the rest: each chain head, both signatures of every
 * checkpoint (and each proposal's), and every embedded third-party
 * document. Every problem names the entry concerned (author, seq, CID); a
 * damaged block that cannot be read is named through the link that points
 * to it (its successor's prev, or the manifest's head).
 */
import { CID, type EntryBlock, TallyError, decode, decodeEntry, documentSignatureValid, embeddedDocuments, entrySignatureValid, parseWith } from '@tally/core'
import type { PairDescriptor, PartyRole, VerifyOptions, VerifyProblem, VerifyReport } from './api.ts'
import { type ExportManifest, parseManifest } from './car.ts'
import { CID_PREFIX, CarScanner, type ScannedBlock } from './car-scan.ts'
import {
  type CheckpointStatement,
  assertStatementSigs,
  parseCheckpointBody,
  parseProposalBody,
  statementCid,
  statementSignatureValid,
} from './checkpoint-statement.ts'
import type { CheckpointState } from './coverage.ts'
import { decodeEntryFast, scanEnvelope } from './entry-codec.ts'
import { makeEquivocationProof, verifyEquivocationProof } from './equivocation.ts'
import { type ExportSource, fileSource, memorySource } from './export-source.ts'
import { MerkleFrontier, bytesEq } from './merkle.ts'
import { openBodySchema, pairIdOf } from './pair.ts'
import { type MergeNode, pickNext } from './timeline.ts'
import { EntryTable, HAS_SEEN, REACHED, SUSPECT, eq32 } from './verify-table.ts'

/** Problems kept in a report; counting goes on past it. */
export const MAX_PROBLEMS = 1000
const ROLES: PartyRole[] = ['provider', 'consumer']
const PROVIDER = 0
const CONSUMER = 1
const FOREIGN = 16

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
  /** The entry concerned, by index. */
  entry?: number
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
  readonly t: EntryTable
  /** Entry indices by author index, at their seq; `extras` holds any second entry at a taken position. */
  readonly byAuthor: number[][] = []
  readonly extras: number[] = []
  recCount = 0
  /** Entries recovered from sections whose CID header is damaged. */
  readonly suspects: number[] = []
  /** Entries whose bodies are checked later (open, checkpoint kinds); bodies are read again then. */
  readonly special: number[] = []
  /** Pair digests of entries scanned before the pair was known. */
  readonly unchecked: { entry: number; pair: Uint8Array }[] = []
  readonly pending: PendingProblem[] = []
  problemCount = 0
  documents = 0
  readonly docCache = new Map<string, boolean>()
  manifest: ExportManifest | undefined
  readonly manifestBlocks: { digest: Uint8Array; offset: number; manifest: ExportManifest }[] = []
  scanPairDigest: Uint8Array | undefined
  blocks = 0
  pair: PairDescriptor | undefined
  pairDigest: Uint8Array | undefined
  readonly chains: number[][] = [[], []]
  readonly heads: (Expect | null)[] = [null, null]
  chainsIntact = true
  readonly reachedCount = [0, 0]
  /** Lowest seq the walk back from each head reached (1 when the chain is whole). */
  readonly lowestReached = [1, 1]
  readonly states = new Map<string, CheckpointState>()
  readonly stateList: CheckpointState[] = []
  latest: { state: CheckpointState; statement: CheckpointStatement } | undefined
  order: Uint8Array = new Uint8Array(0)
  roots: CID[] = []

  constructor(source: ExportSource, opts: VerifyOptions) {
    this.source = source
    this.opts = opts
    // Entries take >= ~200 bytes each in practice; start near the right size.
    this.t = new EntryTable(Math.min(1 << 20, Math.ceil(source.size / 300)))
  }

  problem(p: PendingProblem): void {
    this.problemCount++
    if (this.pending.length < MAX_PROBLEMS) this.pending.push(p)
  }

  /** The entry at chain position (role r, seq), or -1. */
  at(r: number, seq: number): number {
    return this.chains[r]![seq] ?? -1
  }

  block(i: number): EntryBlock {
    return decodeEntryFast(this.source.read(this.t.dataOffset[i]!, this.t.dataLength[i]!))
  }

  body(i: number): unknown {
    return this.block(i).entry.body
  }

  run(): ExportAnalysis {
    const scanner = new CarScanner(
      (block) => this.onBlock(block),
      (p) => this.problem({ code: p.code, message: p.message, offset: p.offset, digests: p.digests }),
    )
    this.roots = scanner.roots
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
      const i = this.entryRec(block, false)
      if (i >= 0) this.suspects.push(i)
      return
    }
    const i = this.entryRec(block, true)
    if (i < 0) return
    const a = this.t.author[i]!
    const chain = this.byAuthor[a] ?? (this.byAuthor[a] = [])
    this.recCount++
    const seq = this.t.seq[i]!
    // A seq beyond the number of blocks cannot belong to an intact chain; keep the arrays dense.
    if (seq > this.source.size / 40 || chain[seq] !== undefined) this.extras.push(i)
    else chain[seq] = i
  }

  /** Decode one block as an entry (strictly) and record it; reports problems when `report`. Returns its index or -1. */
  entryRec(block: ScannedBlock, report: boolean): number {
    const data = block.data
    const s = scanEnvelope(data)
    if (s === undefined) {
      if (report) this.notAnEntry(block, data)
      return -1
    }
    let body: unknown
    try {
      body = decode(data.subarray(s.bodyStart, s.bodyEnd))
    } catch (err) {
      if (report) this.problem({ code: 'DecodeError', message: `entry body: ${(err as Error).message}`, offset: block.sectionOffset, digests: [block.digest] })
      return -1
    }
    const i = this.t.add(block.digest, data, s, block.dataOffset, block.dataLength, !report)
    if (this.scanPairDigest === undefined) this.unchecked.push({ entry: i, pair: data.slice(s.pairDigestAt, s.pairDigestAt + 32) })
    else if (!eq32(data, s.pairDigestAt, this.scanPairDigest, 0)) this.t.flags[i] = this.t.flags[i]! | FOREIGN
    if (s.kind === 'open' || s.kind === 'checkpoint' || s.kind === 'checkpoint-proposal') this.special.push(i)
    if (report && typeof body === 'object' && body !== null) this.checkDocuments(body, i)
    return i
  }

  checkDocuments(body: unknown, entry: number): void {
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
      if (!ok) this.problem({ code: 'EmbeddedDocumentError', message: `embedded ${doc.type} document by ${doc.by} does not verify`, entry })
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
        const manifest = parseManifest(value)
        this.manifestBlocks.push({ digest: block.digest, offset: block.sectionOffset, manifest })
        // The manifest the header names, seen before the entries (as exports write it): check each entry's pair as it comes.
        const root = this.roots[0] === undefined ? undefined : digestOfCid(this.roots[0])
        if (this.scanPairDigest === undefined && root !== undefined && bytesEq(root, block.digest) && this.recCount + this.suspects.length === 0) {
          this.scanPairDigest = pairIdOf(manifest.pair).multihash.digest
        }
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
    if (this.pairDigest !== undefined) {
      // Entries scanned before the pair was known; the rest were checked against the manifest the header names, which is this one.
      for (const u of this.unchecked) if (!bytesEq(u.pair, this.pairDigest)) this.t.flags[u.entry] = this.t.flags[u.entry]! | FOREIGN
    }
  }

  /** Without a usable manifest, the pair is what the 'open' entries say. */
  pairFromOpenEntries(): PairDescriptor | undefined {
    for (const i of this.special) {
      if (this.t.kindOf(i) !== 'open' || this.t.seq[i] !== 1 || (this.t.flags[i]! & SUSPECT) !== 0) continue
      let body: { pair?: PairDescriptor } | undefined
      try {
        body = this.body(i) as { pair?: PairDescriptor }
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
    const a = this.t.findAuthor(author)
    const chain = a < 0 ? [] : (this.byAuthor[a] ?? [])
    let best = chain.length > 0 ? (chain[chain.length - 1] ?? -1) : -1
    for (const i of this.suspects) if (this.t.authorOf(i) === author && (best < 0 || this.t.seq[i]! > this.t.seq[best]!)) best = i
    return best < 0 ? null : { author, seq: this.t.seq[best]!, digest: this.t.own(best) }
  }

  /** The entry a link expects at (author, seq) with digest `d` (at `off`), or -1. */
  find(author: string, seq: number, d: Uint8Array, off: number): number {
    const t = this.t
    const a = t.findAuthor(author)
    if (a < 0) return -1
    const at = this.byAuthor[a]?.[seq]
    if (at !== undefined && t.is(at, d, off)) return at
    for (const i of this.extras) if (t.author[i] === a && t.seq[i] === seq && t.is(i, d, off)) return i
    for (const i of this.suspects) if (t.author[i] === a && t.seq[i] === seq && t.is(i, d, off)) return i
    return -1
  }

  walkChains(): void {
    if (this.pair === undefined) {
      this.chainsIntact = false
      this.problem({ code: 'ManifestError', message: 'cannot tell the pair: no manifest and no open entry' })
      return
    }
    const t = this.t
    for (const r of [PROVIDER, CONSUMER]) {
      const role = ROLES[r]!
      const author = this.party(r)
      const head = this.headOf(r)
      this.heads[r] = head
      const chain: number[] = []
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
      let d = head.digest
      let off = 0
      for (;;) {
        const i = this.find(author, seq, d, off)
        if (i < 0) {
          this.problem({
            code: 'MissingEntryError',
            message: `${role} entry #${seq} is not in the export (or is damaged)`,
            expect: { author, seq, digest: d.slice(off, off + 32) },
          })
          this.chainsIntact = false
          break
        }
        if ((t.flags[i]! & FOREIGN) !== 0) {
          this.problem({ code: 'ForeignPairError', message: `${role} entry #${seq} belongs to another pair`, entry: i })
          this.chainsIntact = false
        }
        t.flags[i] = t.flags[i]! | REACHED
        this.reachedCount[r] = this.reachedCount[r]! + 1
        this.lowestReached[r] = seq
        chain[seq] = i
        const prev = t.prev(i)
        if (prev === undefined) break
        seq--
        d = t.digests
        off = i * 96 + 32
      }
    }
    this.reportUnreached()
  }

  /** Entries no link reaches: forks, strays, entries beyond the heads, foreign entries. */
  reportUnreached(): void {
    const t = this.t
    const visit = (i: number) => {
      if (t.reached(i)) return
      const author = t.authorOf(i)
      const r = author === this.pair!.provider ? PROVIDER : author === this.pair!.consumer ? CONSUMER : -1
      if (r >= 0 && t.seq[i]! < this.lowestReached[r]!) return // below a break: reported as missing already
      this.chainsIntact = false
      const twin = r < 0 ? -1 : this.at(r, t.seq[i]!)
      if (twin >= 0 && this.isEquivocation(twin, i)) {
        this.problem({ code: 'EquivocationError', message: `${ROLES[r]} signed two different entries #${t.seq[i]}`, entry: twin })
      } else if (r < 0) {
        this.problem({ code: 'WrongAuthorError', message: `entry by ${author}, not a party of this pair`, entry: i })
      } else {
        this.problem({ code: 'UnexpectedBlockError', message: `${ROLES[r]} entry #${t.seq[i]} is not on the chain from the head`, entry: i })
      }
    }
    for (const chain of this.byAuthor) for (const i of chain ?? []) if (i !== undefined) visit(i)
    for (const i of this.extras) visit(i)
  }

  isEquivocation(a: number, b: number): boolean {
    try {
      verifyEquivocationProof(makeEquivocationProof(this.block(a), this.block(b)))
      return true
    } catch {
      return false
    }
  }

  checkSeenAndOpen(): void {
    const t = this.t
    for (const r of [PROVIDER, CONSUMER]) {
      const role = ROLES[r]!
      const other = this.chains[1 - r]!
      const chain = this.chains[r]!
      // Seen links only move forward, so one pointer along the other chain finds every target.
      let j = 1
      let last = 0
      for (let seq = 1; seq < chain.length; seq++) {
        const i = chain[seq]!
        if (seq === 1) this.checkOpen(i, role)
        else if (t.kindOf(i) === 'open') this.problem({ code: 'OpenEntryError', message: `'open' entry at seq ${seq}`, entry: i })
        if ((t.flags[i]! & HAS_SEEN) === 0) {
          if (last > 0) this.problem({ code: 'SeenLinkError', message: `${role} entry #${seq} drops its seen link`, entry: i })
          continue
        }
        let k = j
        while (k < other.length && !t.isLinkOf(other[k]!, i, 2)) k++
        if (k >= other.length) {
          let behind = false
          for (let q = 1; q < j && !behind; q++) behind = t.isLinkOf(other[q]!, i, 2)
          this.problem({
            code: 'SeenLinkError',
            message: behind ? `${role} entry #${seq} has a seen link going backwards` : `${role} entry #${seq} has a seen link to no entry of the other chain`,
            entry: i,
          })
          continue
        }
        t.seenSeq[i] = k
        last = k
        j = k
      }
    }
  }

  checkOpen(i: number, role: PartyRole): void {
    const kind = this.t.kindOf(i)
    if (kind !== 'open') {
      this.problem({ code: 'OpenEntryError', message: `the first ${role} entry is '${kind}', not 'open'`, entry: i })
      return
    }
    try {
      const body = parseWith(openBodySchema, this.body(i), 'open entry body')
      if (body.pair.provider !== this.pair!.provider || body.pair.consumer !== this.pair!.consumer || body.role !== role) {
        this.problem({ code: 'OpenEntryError', message: `the ${role} open entry names another pair or role`, entry: i })
      }
    } catch (err) {
      this.problem({ code: 'OpenEntryError', message: (err as Error).message, entry: i })
    }
  }

  /**
   * Timeline merge (timeline.ts) over chain positions (from, to], with the
   * other chain's entries up to `from` counted as placed. Returns roles in order.
   */
  merge(from: { provider: number; consumer: number }, to: { provider: number; consumer: number }): Uint8Array {
    const t = this.t
    const out = new Uint8Array(to.provider - from.provider + to.consumer - from.consumer)
    const p: MergeNode = { time: 0, seenSeq: 0 }
    const c: MergeNode = { time: 0, seenSeq: 0 }
    let i = from.provider
    let j = from.consumer
    for (let n = 0; n < out.length; n++) {
      const hasP = i < to.provider
      const hasC = j < to.consumer
      if (hasP) {
        const e = this.at(PROVIDER, i + 1)
        p.time = t.time[e]!
        p.seenSeq = Math.max(0, t.seenSeq[e]! - from.consumer)
      }
      if (hasC) {
        const e = this.at(CONSUMER, j + 1)
        c.time = t.time[e]!
        c.seenSeq = Math.max(0, t.seenSeq[e]! - from.provider)
      }
      const pick = pickNext(hasP ? p : undefined, hasC ? c : undefined, i - from.provider, j - from.consumer, this.pair!.provider, this.pair!.consumer)!
      if (pick.role === 'provider') {
        out[n] = PROVIDER
        i++
      } else {
        out[n] = CONSUMER
        j++
      }
    }
    return out
  }

  buildTimeline(): void {
    const top = (r: number) => Math.max(0, this.chains[r]!.length - 1)
    this.order = this.merge({ provider: 0, consumer: 0 }, { provider: top(PROVIDER), consumer: top(CONSUMER) })
  }

  // --- checkpoints ------------------------------------------------------------------------

  checkCheckpoints(): void {
    const t = this.t
    const listed = (this.manifest?.checkpoints ?? []).map((c) => digestOfCid(c) ?? new Uint8Array(32))
    const found: number[] = []
    const next = [1, 1]
    for (const r of this.order) {
      const i = this.at(r, next[r]!++)
      const kind = t.kindOf(i)
      if (kind === 'checkpoint-proposal') this.checkProposal(i)
      if (kind !== 'checkpoint') continue
      found.push(i)
      if (this.manifest !== undefined && !listed.some((d) => t.is(i, d))) {
        this.problem({ code: 'ManifestError', message: 'checkpoint missing from the manifest list', entry: i })
      }
      try {
        this.checkCheckpoint(i, r)
      } catch (err) {
        this.problem({ code: err instanceof TallyError ? err.name : 'CheckpointError', message: (err as Error).message, entry: i })
      }
    }
    for (const d of listed) {
      if (!found.some((i) => t.is(i, d)))
        this.problem({ code: 'ManifestError', message: `manifest lists checkpoint ${cidOfDigest(d)}, not a checkpoint of the chains` })
    }
  }

  checkProposal(i: number): void {
    try {
      const p = parseProposalBody(this.body(i))
      if (!bytesEq(p.statement.pair.multihash.digest, this.pairDigest!)) throw new TallyError('proposal is for another pair')
      if (!statementSignatureValid(p.statement, p.sig, this.t.authorOf(i))) throw new TallyError('proposal signature does not verify')
    } catch (err) {
      this.problem({ code: 'CheckpointError', message: (err as Error).message, entry: i })
    }
  }

  /** The reached entry of chain r whose digest is `cid`'s, or -1. */
  reachedByCid(r: number, cid: CID): number {
    const d = digestOfCid(cid)
    if (d === undefined) return -1
    for (const i of this.chains[r]!) if (i !== undefined && this.t.is(i, d)) return i
    return -1
  }

  checkCheckpoint(i: number, r: number): void {
    const t = this.t
    const body = parseCheckpointBody(this.body(i))
    const s = body.statement
    if (!bytesEq(s.pair.multihash.digest, this.pairDigest!)) throw new TallyError('checkpoint is for another pair')
    assertStatementSigs(s, body.sigs, this.pair!)
    const proposal = this.reachedByCid(1 - r, body.proposal)
    if (proposal < 0 || t.kindOf(proposal) !== 'checkpoint-proposal')
      throw new TallyError("checkpoint does not answer the other party's proposal in the export")
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
      const at = this.at(x, h.seq)
      const d = digestOfCid(h.cid)
      if (at < 0 || d === undefined || !t.is(at, d)) throw new TallyError(`checkpoint ${role} head #${h.seq} is not that entry of the chain`)
    }
    const f = this.coverage(prev, from, to)
    const root = f.root()
    if (f.size !== s.size || !bytesEq(root, s.root)) throw new TallyError('checkpoint root or size does not match the entries it covers')
    const state: CheckpointState = {
      statement: statementCid(s),
      entry: cidOfDigest(t.own(i)),
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
    const t = this.t
    for (const x of [PROVIDER, CONSUMER]) {
      const role = ROLES[x]!
      const other = ROLES[1 - x]!
      for (let seq = from[role] + 1; seq <= to[role]; seq++) {
        if (t.seenSeq[this.at(x, seq)]! > to[other]) throw new TallyError(`checkpoint covers ${role} #${seq}, which saw beyond the ${other} head`)
      }
    }
    const order = this.merge(from, to)
    const f = new MerkleFrontier()
    if (prev !== null) {
      f.nodes = prev.frontier.nodes.slice()
      f.sizes = prev.frontier.sizes.slice()
      f.size = prev.size
    }
    const leaf = new Uint8Array(36)
    leaf.set(CID_PREFIX, 0)
    const next = [from.provider + 1, from.consumer + 1]
    for (const x of order) {
      leaf.set(t.own(this.at(x, next[x]!++)), 4)
      f.add(leaf)
    }
    return f
  }

  // --- signatures -------------------------------------------------------------------------

  checkHeadSignatures(): void {
    if (this.pair === undefined) return
    for (const r of [PROVIDER, CONSUMER]) {
      const chain = this.chains[r]!
      const top = chain.length > 1 ? chain[chain.length - 1] : undefined
      const targets = this.opts.verifyAll === true ? chain.filter((i) => i !== undefined) : top === undefined ? [] : [top]
      for (const i of targets) {
        let ok = false
        try {
          ok = entrySignatureValid(this.block(i).entry)
        } catch {
          ok = false
        }
        if (!ok) this.problem({ code: 'SignatureError', message: `${ROLES[r]} entry #${this.t.seq[i]} has an invalid signature`, entry: i })
      }
    }
  }

  replay(fn: (timeline: EntryBlock[]) => VerifyProblem[]): void {
    const next = [1, 1]
    const timeline = Array.from(this.order, (r) => this.block(this.at(r, next[r]!++)))
    let found: VerifyProblem[]
    try {
      found = fn(timeline)
    } catch (err) {
      found = [{ code: err instanceof Error ? err.name : 'ReplayError', message: `replay failed: ${(err as Error).message}` }]
    }
    for (const given of found)
      this.problem({ code: given.code, message: given.message, given, ...(given.cid === undefined ? {} : { digests: safeDigest(given.cid) }) })
  }

  // --- report -----------------------------------------------------------------------------

  /** The entry a problem is about: its record, the link's expectation, or a block digest some link names. */
  who(p: PendingProblem): Expect | undefined {
    const t = this.t
    if (p.entry !== undefined) return { author: t.authorOf(p.entry), seq: t.seq[p.entry]!, digest: t.own(p.entry) }
    if (p.expect !== undefined) return p.expect
    for (const d of p.digests ?? []) {
      for (const r of [PROVIDER, CONSUMER]) {
        for (const i of this.chains[r] ?? []) if (i !== undefined && t.is(i, d)) return { author: t.authorOf(i), seq: t.seq[i]!, digest: d }
      }
      for (const q of this.pending) if (q.expect !== undefined && bytesEq(q.expect.digest, d)) return q.expect
    }
    return undefined
  }

  /**
   * Damage no link reaches (header, manifest, bytes lost to a broken length)
   * is reported against the nearest chain head: what the damaged part anchors.
   */
  anchor(): Expect | undefined {
    for (const h of this.heads) if (h !== null) return h
    for (const chain of this.byAuthor) {
      const i = chain === undefined || chain.length === 0 ? undefined : chain[chain.length - 1]
      if (i !== undefined) return { author: this.t.authorOf(i), seq: this.t.seq[i]!, digest: this.t.own(i) }
    }
    return undefined
  }

  finish(): ExportAnalysis {
    const t = this.t
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
      return { entries: this.reachedCount[r]!, head: top === undefined ? null : { seq: t.seq[top]!, cid: cidOfDigest(t.own(top)).toString() } }
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
    const compact = (r: number) =>
      this.chains[r]!.slice(1).map((i) =>
        i === undefined ? { dataOffset: -1, dataLength: 0 } : { dataOffset: t.dataOffset[i]!, dataLength: t.dataLength[i]! },
      )
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

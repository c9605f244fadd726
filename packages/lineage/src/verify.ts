/**
 * Offline verification of an exported pair log (CARv1), with no network
 * and no other input. One pass hashes every block, decodes every entry
 * strictly and keeps a compact record per entry; the chains are then
 * walked back from the heads by hash link. Signatures are checked where
 * they authenticate the rest: each chain head, both signatures of every
 * checkpoint (and each proposal's), and every embedded third-party
 * document. Every problem names the entry concerned (author, seq, CID);
 * a damaged block that cannot be read is named through the link that
 * points to it (its successor's prev, or the manifest's head).
 */
import { readFile } from 'node:fs/promises'
import {
  CID,
  type EntryBlock,
  type PeerIdString,
  TallyError,
  decode,
  decodeEntry,
  documentSignatureValid,
  embeddedDocuments,
  entrySignatureValid,
  parseWith,
} from '@tally/core'
import * as Digest from 'multiformats/hashes/digest'
import type { PairDescriptor, PartyRole, VerifyOptions, VerifyProblem, VerifyReport } from './api.ts'
import { type ExportManifest, parseManifest } from './car.ts'
import { type ScannedBlock, scanCar } from './car-scan.ts'
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
import { MerkleFrontier, bytesEq } from './merkle.ts'
import { openBodySchema, pairIdOf } from './pair.ts'
import { type MergeNode, mergeOrder } from './timeline.ts'

/** Problems kept in a report; counting goes on past it. */
export const MAX_PROBLEMS = 1000
const ROLES: PartyRole[] = ['provider', 'consumer']

/** One entry as the verifier keeps it: offsets into the CAR bytes, no decoded objects. */
class Rec {
  reached = false
  seenSeq = 0
  constructor(
    readonly key: string,
    readonly dataOffset: number,
    readonly dataLength: number,
    readonly author: string,
    readonly seq: number,
    readonly time: number,
    readonly kind: string,
    readonly pairAt: number,
    readonly prevAt: number,
    readonly seenAt: number,
  ) {}
}

interface PendingProblem {
  code: string
  message: string
  offset?: number
  /** Digest keys that may name the entry: the block's actual digest, then the one its CID declared. */
  keys: string[]
  /** Claimed identity when the block is intact but not reached (unexpected, foreign). */
  claimed?: { author: string; seq: number }
  /** Report against the chain heads (manifest and header damage). */
  anchor?: boolean
}

/** What importCar needs beyond the report. */
export interface ExportAnalysis {
  report: VerifyReport
  bytes: Uint8Array
  pair?: PairDescriptor
  /** Entries of each chain by seq (index 0 unused), when intact. */
  chains: Record<PartyRole, { dataOffset: number; dataLength: number; key: string }[]>
  states: CheckpointState[]
  /** Timeline order as (role, seq) pairs, when the chains are intact. */
  order: { role: PartyRole; seq: number }[]
}

function cidOfKey(key: string): CID {
  return CID.createV1(0x71, Digest.create(0x12, new Uint8Array(Buffer.from(key, 'latin1'))))
}

function keyOfCid(cid: CID): string {
  return Buffer.from(cid.multihash.digest).toString('latin1')
}

/** Verify an export (bytes or a file path). Never throws for bad content: the report says what is wrong. */
export async function verifyExport(input: Uint8Array | string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  return (await analyzeExport(input, opts)).report
}

export async function analyzeExport(input: Uint8Array | string, opts: VerifyOptions = {}): Promise<ExportAnalysis> {
  const bytes = typeof input === 'string' ? new Uint8Array(await readFile(input)) : input
  return new Verifier(bytes, opts).run()
}

class Verifier {
  readonly b: Uint8Array
  readonly buf: Buffer
  readonly opts: VerifyOptions
  readonly recs = new Map<string, Rec>()
  /** Entries recovered from sections whose CID header is damaged, by actual digest. */
  readonly suspects = new Map<string, Rec>()
  readonly bodies = new Map<string, unknown>()
  readonly pending: PendingProblem[] = []
  problemCount = 0
  documents = 0
  readonly docCache = new Map<string, boolean>()
  manifest: ExportManifest | undefined
  manifestCandidates: { key: string; manifest: ExportManifest }[] = []
  rootKey: string | undefined
  blocks = 0
  pair: PairDescriptor | undefined
  pairKey: string | undefined
  /** Digest key -> the chain position a link expects there. */
  readonly expected = new Map<string, { author: string; seq: number }>()
  readonly chains: Record<PartyRole, (Rec | undefined)[]> = { provider: [], consumer: [] }
  readonly brokenBelow: Record<PartyRole, number> = { provider: 0, consumer: 0 }
  chainsIntact = true
  readonly reachedCount: Record<PartyRole, number> = { provider: 0, consumer: 0 }
  readonly states = new Map<string, CheckpointState>()
  readonly stateList: CheckpointState[] = []
  latest: { state: CheckpointState; statement: CheckpointStatement } | undefined
  order: { role: PartyRole; seq: number }[] = []

  constructor(bytes: Uint8Array, opts: VerifyOptions) {
    this.b = bytes
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.opts = opts
  }

  key(at: number): string {
    return this.buf.toString('latin1', at, at + 32)
  }

  problem(p: PendingProblem): void {
    this.problemCount++
    if (this.pending.length < MAX_PROBLEMS) this.pending.push(p)
  }

  async run(): Promise<ExportAnalysis> {
    const { roots } = scanCar(
      this.b,
      (block) => this.onBlock(block),
      (p) => {
        const keys = p.block === undefined ? [] : [p.block.digest, ...(p.block.declaredAt >= 0 ? [this.b.subarray(p.block.declaredAt, p.block.declaredAt + 32)] : [])]
        this.problem({ code: p.code, message: p.message, offset: p.offset, keys: keys.map((k) => Buffer.from(k).toString('latin1')) })
      },
      this.opts.onProgress,
    )
    // Manifest: the root block, or failing that the one block that decodes as a manifest.
    const root = roots[0]
    if (root !== undefined && root.code === 0x71 && root.multihash.code === 0x12) this.rootKey = keyOfCid(root)
    this.resolveManifest()
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
    const key = Buffer.from(block.digest).toString('latin1')
    const data = this.b.subarray(block.dataOffset, block.dataOffset + block.dataLength)
    if (!block.intact) {
      // Data may be intact under a damaged CID header: keep it aside; a link may vouch for it.
      const rec = this.entryRec(key, block, data, false)
      if (rec !== undefined) this.suspects.set(key, rec)
      return
    }
    if (this.recs.has(key) || this.manifestCandidates.some((m) => m.key === key)) {
      this.problem({ code: 'UnexpectedBlockError', message: `block at byte ${block.sectionOffset} appears twice`, offset: block.sectionOffset, keys: [key] })
      return
    }
    const rec = this.entryRec(key, block, data, true)
    if (rec !== undefined) this.recs.set(key, rec)
  }

  /** Decode one block as an entry (strictly); report problems when `report`. */
  entryRec(key: string, block: ScannedBlock, data: Uint8Array, report: boolean): Rec | undefined {
    const s = scanEnvelope(data)
    if (s === undefined) {
      if (!report) return undefined
      // Not a canonical entry: a manifest, or a bad entry whose exact fault core names.
      let value: unknown
      try {
        value = decode(data)
      } catch (err) {
        this.problem({ code: (err as Error).name, message: (err as Error).message, offset: block.sectionOffset, keys: [key] })
        return undefined
      }
      if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'tally-export') {
        try {
          this.manifestCandidates.push({ key, manifest: parseManifest(value) })
        } catch (err) {
          this.problem({ code: 'ManifestError', message: (err as Error).message, offset: block.sectionOffset, keys: [key], anchor: true })
        }
        return undefined
      }
      try {
        decodeEntry(data)
        this.problem({ code: 'DecodeError', message: 'entry is not in canonical form', offset: block.sectionOffset, keys: [key] })
      } catch (err) {
        const name = err instanceof TallyError ? err.name : 'DecodeError'
        this.problem({ code: name, message: (err as Error).message, offset: block.sectionOffset, keys: [key] })
      }
      return undefined
    }
    let body: unknown
    try {
      body = decode(data.subarray(s.bodyStart, s.bodyEnd))
    } catch (err) {
      if (report) this.problem({ code: 'DecodeError', message: `entry body: ${(err as Error).message}`, offset: block.sectionOffset, keys: [key] })
      return undefined
    }
    if (report) {
      for (const doc of embeddedDocuments(body)) {
        this.documents++
        const id = Buffer.from(doc.sig).toString('latin1')
        let ok = this.docCache.get(id)
        if (ok === undefined) {
          try {
            ok = documentSignatureValid(doc)
          } catch {
            ok = false
          }
          this.docCache.set(id, ok)
        }
        if (!ok) {
          this.problem({ code: 'EmbeddedDocumentError', message: `embedded ${doc.type} document by ${doc.by} does not verify`, keys: [key] })
        }
      }
    }
    if (s.kind === 'open' || s.kind === 'checkpoint' || s.kind === 'checkpoint-proposal') this.bodies.set(key, body)
    const base = block.dataOffset
    return new Rec(
      key,
      block.dataOffset,
      block.dataLength,
      s.author,
      s.seq,
      s.time,
      s.kind,
      base + s.pairDigestAt,
      s.prevDigestAt < 0 ? -1 : base + s.prevDigestAt,
      s.seenDigestAt < 0 ? -1 : base + s.seenDigestAt,
    )
  }

  resolveManifest(): void {
    if (this.rootKey !== undefined) {
      const found = this.manifestCandidates.find((m) => m.key === this.rootKey)
      if (found !== undefined) this.manifest = found.manifest
      else if (this.recs.has(this.rootKey)) {
        this.problem({ code: 'ManifestError', message: 'the CAR root is an entry, not an export manifest', keys: [], anchor: true })
      } else {
        const rootBlockSeen = this.pending.some((p) => p.keys.includes(this.rootKey!))
        if (!rootBlockSeen) this.problem({ code: 'ManifestError', message: 'the export manifest named by the CAR root is missing', keys: [], anchor: true })
        else this.problem({ code: 'ManifestError', message: 'the export manifest is damaged', keys: [], anchor: true })
      }
    }
    if (this.manifest === undefined && this.manifestCandidates.length === 1) {
      this.manifest = this.manifestCandidates[0]!.manifest
      this.problem({ code: 'ManifestError', message: 'the CAR root does not name the export manifest', keys: [], anchor: true })
    }
    for (const c of this.manifestCandidates) {
      if (this.manifest !== undefined && c.manifest === this.manifest) continue
      this.problem({ code: 'UnexpectedBlockError', message: 'an extra export manifest', keys: [c.key] })
    }
    this.pair = this.manifest?.pair ?? this.pairFromOpenEntries()
    if (this.pair !== undefined) {
      try {
        this.pairKey = keyOfCid(pairIdOf(this.pair))
      } catch {
        this.pair = undefined
      }
    }
  }

  /** Without a usable manifest, the pair is what the 'open' entries say. */
  pairFromOpenEntries(): PairDescriptor | undefined {
    for (const r of this.recs.values()) {
      if (r.kind !== 'open') continue
      const body = this.bodies.get(r.key) as { pair?: PairDescriptor } | undefined
      if (body?.pair !== undefined && typeof body.pair.provider === 'string' && typeof body.pair.consumer === 'string') {
        return { provider: body.pair.provider, consumer: body.pair.consumer }
      }
    }
    return undefined
  }

  // --- pass 2: chains by hash link -------------------------------------------------------

  party(role: PartyRole): string {
    return role === 'provider' ? this.pair!.provider : this.pair!.consumer
  }

  headOf(role: PartyRole): { seq: number; key: string } | null {
    const h = this.manifest?.heads[role]
    if (this.manifest !== undefined) return h === null || h === undefined ? null : { seq: h.seq, key: keyOfCid(h.cid) }
    // No manifest: the highest entry of the party that nothing else links past.
    let best: Rec | undefined
    for (const r of [...this.recs.values(), ...this.suspects.values()]) {
      if (r.author === this.party(role) && (best === undefined || r.seq > best.seq)) best = r
    }
    return best === undefined ? null : { seq: best.seq, key: best.key }
  }

  walkChains(): void {
    if (this.pair === undefined) {
      this.chainsIntact = false
      this.problem({ code: 'ManifestError', message: 'cannot tell the pair: no manifest and no open entry', keys: [], anchor: true })
      return
    }
    for (const role of ROLES) {
      const author = this.party(role)
      const head = this.headOf(role)
      const chain: (Rec | undefined)[] = []
      this.chains[role] = chain
      let seq = head?.seq ?? 0
      let key: string | null = head?.key ?? null
      if (head !== null && head.seq > this.recs.size + this.suspects.size) {
        this.expected.set(head.key, { author, seq })
        this.problem({ code: 'MissingEntryError', message: `the ${role} head is #${head.seq}, the export holds fewer entries`, keys: [head.key] })
        this.chainBroken(role, seq + 1)
        continue
      }
      while (seq >= 1 && key !== null) {
        const rec = this.recs.get(key) ?? this.suspects.get(key)
        if (rec === undefined || rec.author !== author || rec.seq !== seq) this.expected.set(key, { author, seq })
        if (rec === undefined) {
          this.problem({ code: 'MissingEntryError', message: `${role} entry #${seq} is not in the export (or is damaged)`, keys: [key] })
          this.chainBroken(role, seq)
          break
        }
        if (rec.author !== author || rec.seq !== seq) {
          this.problem({ code: 'BrokenLinkError', message: `the link to ${role} entry #${seq} leads to ${rec.author}#${rec.seq}`, keys: [key] })
          this.chainBroken(role, seq)
          break
        }
        if (!bytesEq(this.b.subarray(rec.pairAt, rec.pairAt + 32), Buffer.from(this.pairKey!, 'latin1'))) {
          this.problem({ code: 'ForeignPairError', message: `${role} entry #${seq} belongs to another pair`, keys: [key] })
          this.chainsIntact = false
        }
        rec.reached = true
        this.reachedCount[role]++
        chain[seq] = rec
        key = rec.prevAt < 0 ? null : this.key(rec.prevAt)
        seq--
      }
    }
    // Entries no link reaches: forks, strays, foreign entries.
    for (const rec of this.recs.values()) {
      if (rec.reached) continue
      const role = rec.author === this.pair.provider ? 'provider' : rec.author === this.pair.consumer ? 'consumer' : undefined
      if (role !== undefined && rec.seq < this.brokenBelow[role]) continue
      const twin = role === undefined ? undefined : this.chains[role][rec.seq]
      if (twin !== undefined && this.isEquivocation(twin, rec)) {
        this.problem({ code: 'EquivocationError', message: `${role} signed two different entries #${rec.seq}`, keys: [twin.key] })
      } else if (role === undefined) {
        this.problem({ code: 'WrongAuthorError', message: `entry by ${rec.author}, not a party of this pair`, keys: [rec.key], claimed: rec })
      } else {
        this.problem({ code: 'UnexpectedBlockError', message: `${role} entry #${rec.seq} is not on the chain from the head`, keys: [rec.key], claimed: rec })
      }
      this.chainsIntact = false
    }
  }

  chainBroken(role: PartyRole, seq: number): void {
    this.chainsIntact = false
    this.brokenBelow[role] = seq
  }

  block(rec: Rec): EntryBlock {
    return decodeEntryFast(this.b.subarray(rec.dataOffset, rec.dataOffset + rec.dataLength))
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
    for (const role of ROLES) {
      const other: PartyRole = role === 'provider' ? 'consumer' : 'provider'
      const chain = this.chains[role]
      let last = 0
      for (let seq = 1; seq < chain.length; seq++) {
        const rec = chain[seq]!
        if (seq === 1) this.checkOpen(rec, role)
        else if (rec.kind === 'open') this.problem({ code: 'OpenEntryError', message: `'open' entry at seq ${seq}`, keys: [rec.key] })
        if (rec.seenAt < 0) {
          if (last > 0) this.problem({ code: 'SeenLinkError', message: `${role} entry #${seq} drops its seen link`, keys: [rec.key] })
          continue
        }
        const seenKey = this.key(rec.seenAt)
        const target = this.recs.get(seenKey) ?? this.suspects.get(seenKey)
        if (target === undefined || !target.reached || target.author !== this.party(other)) {
          this.problem({ code: 'SeenLinkError', message: `${role} entry #${seq} has a seen link to no ${other} entry of the export`, keys: [rec.key] })
          continue
        }
        if (target.seq < last) this.problem({ code: 'SeenLinkError', message: `${role} entry #${seq} has a seen link going backwards`, keys: [rec.key] })
        rec.seenSeq = target.seq
        last = Math.max(last, target.seq)
      }
    }
  }

  checkOpen(rec: Rec, role: PartyRole): void {
    if (rec.kind !== 'open') {
      this.problem({ code: 'OpenEntryError', message: `the first ${role} entry is '${rec.kind}', not 'open'`, keys: [rec.key] })
      return
    }
    try {
      const body = parseWith(openBodySchema, this.bodies.get(rec.key), 'open entry body')
      if (body.pair.provider !== this.pair!.provider || body.pair.consumer !== this.pair!.consumer || body.role !== role) {
        this.problem({ code: 'OpenEntryError', message: `the ${role} open entry names another pair or role`, keys: [rec.key] })
      }
    } catch (err) {
      this.problem({ code: 'OpenEntryError', message: (err as Error).message, keys: [rec.key] })
    }
  }

  nodes(role: PartyRole): MergeNode[] {
    const chain = this.chains[role]
    const out: MergeNode[] = new Array(Math.max(0, chain.length - 1))
    for (let seq = 1; seq < chain.length; seq++) out[seq - 1] = { time: chain[seq]!.time, seenSeq: chain[seq]!.seenSeq }
    return out
  }

  buildTimeline(): void {
    const { order } = mergeOrder(this.nodes('provider'), this.nodes('consumer'), this.pair!.provider, this.pair!.consumer)
    const next = { provider: 1, consumer: 1 }
    this.order = order.map((role) => ({ role, seq: next[role]++ }))
  }

  // --- checkpoints ------------------------------------------------------------------------

  checkCheckpoints(): void {
    const listed = new Set((this.manifest?.checkpoints ?? []).map(keyOfCid))
    const found = new Set<string>()
    for (const { role, seq } of this.order) {
      const rec = this.chains[role][seq]!
      if (rec.kind === 'checkpoint-proposal') this.checkProposal(rec)
      if (rec.kind !== 'checkpoint') continue
      found.add(rec.key)
      if (this.manifest !== undefined && !listed.has(rec.key)) this.problem({ code: 'ManifestError', message: 'checkpoint missing from the manifest list', keys: [rec.key] })
      try {
        this.checkCheckpoint(rec, role)
      } catch (err) {
        const name = err instanceof TallyError ? err.name : 'CheckpointError'
        this.problem({ code: name, message: (err as Error).message, keys: [rec.key] })
      }
    }
    for (const k of listed) {
      if (!found.has(k)) this.problem({ code: 'ManifestError', message: `manifest lists checkpoint ${cidOfKey(k)}, not a checkpoint of the chains`, keys: [k], anchor: true })
    }
  }

  checkProposal(rec: Rec): void {
    try {
      const p = parseProposalBody(this.bodies.get(rec.key))
      if (keyOfCid(p.statement.pair) !== this.pairKey) throw new TallyError('proposal is for another pair')
      if (!statementSignatureValid(p.statement, p.sig, rec.author)) throw new TallyError('proposal signature does not verify')
    } catch (err) {
      this.problem({ code: 'CheckpointError', message: (err as Error).message, keys: [rec.key] })
    }
  }

  checkCheckpoint(rec: Rec, role: PartyRole): void {
    const body = parseCheckpointBody(this.bodies.get(rec.key))
    const s = body.statement
    if (keyOfCid(s.pair) !== this.pairKey) throw new TallyError('checkpoint is for another pair')
    assertStatementSigs(s, body.sigs, this.pair!)
    const proposal = this.recs.get(keyOfCid(body.proposal))
    const other: PartyRole = role === 'provider' ? 'consumer' : 'provider'
    if (proposal === undefined || !proposal.reached || proposal.kind !== 'checkpoint-proposal' || proposal.author !== this.party(other)) {
      throw new TallyError("checkpoint does not answer the other party's proposal in the export")
    }
    const p = parseProposalBody(this.bodies.get(proposal.key))
    if (!statementCid(p.statement).equals(statementCid(s))) throw new TallyError('checkpoint statement differs from its proposal')
    let prev: CheckpointState | null = null
    if (s.prev !== null) {
      prev = this.states.get(s.prev.toString()) ?? null
      if (prev === null) throw new TallyError('checkpoint extends a checkpoint that is not earlier in the export')
    }
    const to = { provider: s.heads.provider?.seq ?? 0, consumer: s.heads.consumer?.seq ?? 0 }
    const from = prev?.heads ?? { provider: 0, consumer: 0 }
    for (const r of ROLES) {
      const h = s.heads[r]
      if (h === null) continue
      const at = this.chains[r][h.seq]
      if (at === undefined || at.key !== keyOfCid(h.cid)) throw new TallyError(`checkpoint ${r} head #${h.seq} is not that entry of the chain`)
      if (to[r] < from[r]) throw new TallyError('checkpoint heads go backwards')
    }
    const f = this.coverage(prev, from, to)
    if (f.size !== s.size || !bytesEq(f.root(), s.root)) throw new TallyError('checkpoint root or size does not match the entries it covers')
    const state: CheckpointState = {
      statement: statementCid(s),
      entry: cidOfKey(rec.key),
      prev: s.prev,
      heads: to,
      size: f.size,
      root: f.root(),
      frontier: { nodes: f.nodes, sizes: f.sizes },
    }
    this.states.set(state.statement.toString(), state)
    this.stateList.push(state)
    if (this.latest === undefined || state.size >= this.latest.state.size) this.latest = { state, statement: s }
  }

  coverage(prev: CheckpointState | null, from: { provider: number; consumer: number }, to: { provider: number; consumer: number }): MerkleFrontier {
    const slice = (role: PartyRole): MergeNode[] => {
      const other: PartyRole = role === 'provider' ? 'consumer' : 'provider'
      const out: MergeNode[] = []
      for (let seq = from[role] + 1; seq <= to[role]; seq++) {
        const r = this.chains[role][seq]!
        if (r.seenSeq > to[other]) throw new TallyError(`checkpoint covers ${role} #${seq}, which saw beyond the ${other} head`)
        out.push({ time: r.time, seenSeq: Math.max(0, r.seenSeq - from[other]) })
      }
      return out
    }
    const { order } = mergeOrder(slice('provider'), slice('consumer'), this.pair!.provider, this.pair!.consumer)
    const f = new MerkleFrontier()
    if (prev !== null) {
      f.nodes = prev.frontier.nodes.slice()
      f.sizes = prev.frontier.sizes.slice()
      f.size = prev.size
    }
    const next = { provider: from.provider + 1, consumer: from.consumer + 1 }
    for (const role of order) {
      const r = this.chains[role][next[role]++]!
      f.add(cidOfKey(r.key).bytes)
    }
    return f
  }

  // --- signatures -------------------------------------------------------------------------

  checkHeadSignatures(): void {
    if (this.pair === undefined) return
    for (const role of ROLES) {
      const chain = this.chains[role]
      const targets = this.opts.verifyAll === true ? chain.filter((r): r is Rec => r !== undefined) : [chain[chain.length - 1]].filter((r): r is Rec => r !== undefined)
      for (const rec of targets) {
        let ok = false
        try {
          ok = entrySignatureValid(this.block(rec).entry)
        } catch {
          ok = false
        }
        if (!ok) this.problem({ code: 'SignatureError', message: `${role} entry #${rec.seq} has an invalid signature`, keys: [rec.key] })
      }
    }
  }

  replay(fn: (timeline: EntryBlock[]) => VerifyProblem[]): void {
    const timeline = this.order.map(({ role, seq }) => this.block(this.chains[role][seq]!))
    let found: VerifyProblem[]
    try {
      found = fn(timeline)
    } catch (err) {
      found = [{ code: err instanceof Error ? err.name : 'ReplayError', message: `replay failed: ${(err as Error).message}` }]
    }
    for (const p of found) {
      this.problemCount++
      if (this.pending.length < MAX_PROBLEMS) this.pending.push({ ...p, keys: p.cid === undefined ? [] : safeKeys(p.cid) })
    }
  }

  // --- report -----------------------------------------------------------------------------

  name(p: PendingProblem, anchor: boolean): VerifyProblem {
    const out: VerifyProblem = { code: p.code, message: p.message }
    if (p.offset !== undefined) out.offset = p.offset
    let who: { author: string; seq: number; key: string } | undefined
    for (const k of p.keys) {
      const rec = this.recs.get(k) ?? this.suspects.get(k)
      if (rec?.reached === true) {
        who = { author: rec.author, seq: rec.seq, key: k }
        break
      }
      const exp = this.expected.get(k)
      if (exp !== undefined) {
        who = { ...exp, key: k }
        break
      }
    }
    if (who === undefined && p.claimed !== undefined && p.keys[0] !== undefined) who = { ...p.claimed, key: p.keys[0] }
    if (who === undefined && anchor) who = this.anchorEntry()
    if (who !== undefined) {
      out.author = who.author
      out.seq = who.seq
      out.cid = cidOfKey(who.key).toString()
    }
    return out
  }

  /**
   * Damage no link reaches (header, manifest, bytes lost to a broken length)
   * is reported against the nearest chain head: what the damaged part anchors.
   */
  anchorEntry(): { author: string; seq: number; key: string } | undefined {
    for (const role of this.pair === undefined ? [] : ROLES) {
      const h = this.headOf(role)
      if (h !== null) return { author: this.party(role), seq: h.seq, key: h.key }
    }
    for (const r of this.recs.values()) return { author: r.author, seq: r.seq, key: r.key }
    return undefined
  }

  finish(): ExportAnalysis {
    // Name through links first; only if nothing is named that way, anchor the unnamed to a head.
    let problems = this.pending.map((p) => this.name(p, false))
    if (!problems.some((p) => p.author !== undefined)) problems = this.pending.map((p) => this.name(p, true))
    const firstNamed = problems.find((p) => p.author !== undefined)
    const summary = (role: PartyRole) => {
      const chain = this.chains[role]
      const head = chain.length > 1 ? chain[chain.length - 1] : undefined
      return { entries: this.reachedCount[role], head: head === undefined ? null : { seq: head.seq, cid: cidOfKey(head.key).toString() } }
    }
    const report: VerifyReport = {
      ok: this.problemCount === 0,
      chains: { provider: summary('provider'), consumer: summary('consumer') },
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
    const first = firstNamed ?? problems[0]
    if (first !== undefined) report.firstProblem = first
    const chains = {
      provider: this.chains.provider.slice(1).map((r) => ({ dataOffset: r?.dataOffset ?? -1, dataLength: r?.dataLength ?? 0, key: r?.key ?? '' })),
      consumer: this.chains.consumer.slice(1).map((r) => ({ dataOffset: r?.dataOffset ?? -1, dataLength: r?.dataLength ?? 0, key: r?.key ?? '' })),
    }
    const analysis: ExportAnalysis = { report, bytes: this.b, chains, states: this.stateList, order: this.order }
    if (this.pair !== undefined) analysis.pair = this.pair
    return analysis
  }
}

function safeKeys(cid: string): string[] {
  try {
    return [keyOfCid(CID.parse(cid))]
  } catch {
    return []
  }
}

export type { PeerIdString }

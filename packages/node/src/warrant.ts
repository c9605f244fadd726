/**
 * Warrants: a reporter's signed, self-proving accusation that a monitor
 * signed two different observations with one seq, or that a party signed
 * two different pair-log entries at one (pair, author, seq). Pure: no
 * I/O, no clock; gossip lives in warrant-gossip.ts. Wire format in
 * docs/PROTOCOL.md ("Warrants").
 */
import {
  bytesEqual,
  cidOfBytes,
  decode,
  encode,
  type EntryBlock,
  type Identity,
  type PeerIdString,
  schema,
  type SignedDocument,
  signDocument,
  verifyDocument,
} from '@tally/core'
import { decodeObservationBytes, type Observation } from '@tally/deal'
import { type Equivocation, makeEquivocationProof, verifyEquivocationProof } from '@tally/lineage'
import { z } from 'zod'
import { WARRANT_MAX_BYTES } from './constants.ts'
import { InvalidWarrantError } from './monitoring-errors.ts'

export const WARRANT_DOCUMENT_TYPE = 'warrant'
export const WARRANT_VERSION = 1

export const warrantBodySchema = z.strictObject({
  v: z.literal(WARRANT_VERSION),
  /** What conflicts: two observation documents or two pair-log entries. */
  kind: z.enum(['observation', 'entry']),
  /** The two conflicting records as their exact bytes (dagcbor), the one with the smaller CID first. */
  a: schema.bytes,
  b: schema.bytes,
  /** When the reporter issued the warrant (ms). */
  reportedAt: schema.timeMs,
})
export type WarrantBody = z.infer<typeof warrantBodySchema>
export type Warrant = SignedDocument<WarrantBody>

/** What a verified warrant establishes. */
export interface VerifiedWarrant {
  warrant: Warrant
  /** The warrant's own bytes (what travels on gossip). */
  bytes: Uint8Array
  reporter: PeerIdString
  kind: WarrantBody['kind']
  /** Who signed both conflicting records. */
  offender: PeerIdString
  /**
   * One key per offence, whoever reports it: `observation/<monitor>/<seq>`
   * or `entry/<pair>/<author>/<seq>`.
   */
  offence: string
  /**
   * From when the offender stands warranted: the later of the two
   * conflicting records' own times (issuedAt or entry time), when the
   * equivocation became complete, but never after the report, so an
   * offender cannot date its records into the future to postpone it.
   */
  time: number
  observations?: [Observation, Observation]
  entries?: Equivocation
}

function compareBytes(x: Uint8Array, y: Uint8Array): number {
  const n = Math.min(x.byteLength, y.byteLength)
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.byteLength - y.byteLength
}

function ordered(x: Uint8Array, y: Uint8Array): [Uint8Array, Uint8Array] {
  return compareBytes(cidOfBytes(x).bytes, cidOfBytes(y).bytes) <= 0 ? [x, y] : [y, x]
}

/** Check two observation payloads conflict (same monitor and seq, different signed bodies); returns them decoded. */
export function conflictingObservations(x: Uint8Array, y: Uint8Array): [Observation, Observation] {
  let a: Observation
  let b: Observation
  try {
    a = decodeObservationBytes(x)
    b = decodeObservationBytes(y)
  } catch (err) {
    throw new InvalidWarrantError(`warrant observation does not verify: ${(err as Error).message}`, {}, { cause: err })
  }
  if (a.by !== b.by) throw new InvalidWarrantError('warrant observations are by different monitors')
  if (a.body.seq !== b.body.seq) throw new InvalidWarrantError('warrant observations have different seqs')
  // Ed25519 signatures are deterministic, so one body has one valid signature; different bytes with an equal body are an encoding variant, not a conflict.
  if (bytesEqual(encode(a.body), encode(b.body))) throw new InvalidWarrantError('warrant observations sign the same body')
  return [a, b]
}

/** Warrant `reporter` signs against the monitor of two conflicting observation payloads (the exact gossip bytes). */
export function makeObservationWarrant(reporter: Identity, x: Uint8Array, y: Uint8Array, reportedAt: number): Warrant {
  conflictingObservations(x, y)
  const [a, b] = ordered(x, y)
  return signDocument(reporter, WARRANT_DOCUMENT_TYPE, { v: WARRANT_VERSION, kind: 'observation', a, b, reportedAt })
}

/** Warrant `reporter` signs against the author of two conflicting pair-log entries (lineage's equivocation proof, embedded). */
export function makeEntryWarrant(reporter: Identity, x: EntryBlock, y: EntryBlock, reportedAt: number): Warrant {
  const proof = makeEquivocationProof(x, y)
  try {
    verifyEquivocationProof(proof)
  } catch (err) {
    throw new InvalidWarrantError(`entries do not conflict: ${(err as Error).message}`, {}, { cause: err })
  }
  return signDocument(reporter, WARRANT_DOCUMENT_TYPE, { v: WARRANT_VERSION, kind: 'entry', a: proof.a, b: proof.b, reportedAt })
}

/** Check a decoded warrant document; throws `InvalidWarrantError`. */
export function verifyWarrantDocument(value: unknown, bytes: Uint8Array = encode(value)): VerifiedWarrant {
  let warrant: Warrant
  try {
    warrant = verifyDocument(value, WARRANT_DOCUMENT_TYPE, warrantBodySchema)
  } catch (err) {
    throw new InvalidWarrantError(`not a valid warrant document: ${(err as Error).message}`, {}, { cause: err })
  }
  const body = warrant.body
  const base = { warrant, bytes, reporter: warrant.by, kind: body.kind }
  if (body.kind === 'observation') {
    const [a, b] = conflictingObservations(body.a, body.b)
    const time = Math.min(Math.max(a.body.issuedAt, b.body.issuedAt), body.reportedAt)
    return { ...base, offender: a.by, offence: `observation/${a.by}/${a.body.seq}`, time, observations: [a, b] }
  }
  let entries: Equivocation
  try {
    entries = verifyEquivocationProof({ a: body.a, b: body.b })
  } catch (err) {
    throw new InvalidWarrantError(`warrant entries do not prove an equivocation: ${(err as Error).message}`, {}, { cause: err })
  }
  const time = Math.min(Math.max(entries.a.entry.time, entries.b.entry.time), body.reportedAt)
  return { ...base, offender: entries.author, offence: `entry/${entries.pair.toString()}/${entries.author}/${entries.seq}`, time, entries }
}

/**
 * Verify warrant bytes offline, with no other input: the reporter's
 * signature, both conflicting records' signatures (keys come from the peer
 * ids inside them), and that they really conflict.
 */
export function verifyWarrant(bytes: Uint8Array): VerifiedWarrant {
  let value: unknown
  try {
    value = decode(bytes, WARRANT_MAX_BYTES)
  } catch (err) {
    throw new InvalidWarrantError(`warrant does not decode: ${(err as Error).message}`, {}, { cause: err })
  }
  return verifyWarrantDocument(value, bytes)
}

export function encodeWarrant(warrant: Warrant): Uint8Array {
  return encode(warrant)
}

/** The warranted status of one offender: the earliest offence time over every warrant held. */
export interface WarrantStanding {
  offender: PeerIdString
  since: number
  /** One warrant per distinct offence. */
  warrants: VerifiedWarrant[]
}

/**
 * The warrants a node holds, by offender. Pure state: callers persist
 * (warrant-gossip.ts keeps them in the node's store).
 */
export class WarrantRegistry {
  readonly #byOffender = new Map<PeerIdString, WarrantStanding>()
  readonly #offences = new Set<string>()

  /** Add a verified warrant; false when its offence was already known. */
  add(v: VerifiedWarrant): boolean {
    if (this.#offences.has(v.offence)) return false
    this.#offences.add(v.offence)
    const standing = this.#byOffender.get(v.offender)
    if (standing === undefined) this.#byOffender.set(v.offender, { offender: v.offender, since: v.time, warrants: [v] })
    else {
      standing.warrants.push(v)
      standing.since = Math.min(standing.since, v.time)
    }
    return true
  }

  has(offence: string): boolean {
    return this.#offences.has(offence)
  }

  standing(peer: PeerIdString): WarrantStanding | undefined {
    return this.#byOffender.get(peer)
  }

  offenders(): WarrantStanding[] {
    return [...this.#byOffender.values()]
  }

  get size(): number {
    return this.#offences.size
  }
}

/**
 * May evidence signed by `monitor` count for a deal accepted at
 * `dealAcceptedAt`? No when the monitor stands warranted since before the
 * acceptance: parties that accepted a deal after the misconduct became
 * provable cannot rely on that monitor. Deals accepted earlier keep it.
 */
export function evidenceAdmissible(registry: Pick<WarrantRegistry, 'standing'>, monitor: PeerIdString, dealAcceptedAt: number): boolean {
  const standing = registry.standing(monitor)
  return standing === undefined || dealAcceptedAt <= standing.since
}

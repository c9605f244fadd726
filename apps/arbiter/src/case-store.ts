import { createHash } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { Money } from '@tally/core'
import type { PairDescriptor } from '@tally/lineage'
import { CaseStoreError } from './errors.ts'

export type CaseStatus = 'received' | 'evidence-requested' | 'ruled' | 'refused'

/** What the arbiter keeps about one case (a dispute at one stage), as stored in `cases/<id>/case.json`. */
export interface CaseRecord {
  id: string
  pair: PairDescriptor
  deal: string
  dispute: string
  appeal: boolean
  status: CaseStatus
  /** Records received for this case (a resubmission follows each evidence answer). */
  submissions: number
  /** Parties that submitted it. */
  submittedBy: string[]
  receivedAt: number
  updatedAt: number
  /** The latest record received: size and sha-256 (hex) of the CAR kept beside this file. */
  record: { bytes: number; sha256: string } | null
  ruling: {
    cid: string
    epochs: number[]
    toProvider: Money
    collateralToConsumer: Money
    performed: number[]
    issuedAt: number
    appealOf: string | null
  } | null
  evidenceRequest: { cid: string; party: 'provider' | 'consumer'; issuedAt: number; deadline: number } | null
  /** The latest refusal of a submission of this case (a ruled case keeps its ruling). */
  refusal: { code: string; message: string } | null
  /** Time the last decision took, in ms. */
  decisionMs: number | null
}

/** Files kept beside a case's case.json. */
export type CaseFile = 'record.car' | 'ruling.cbor' | 'evidence-request.cbor'

const CASE_FILE = 'case.json'
const ID = /^[a-z0-9]{16,128}$/

/**
 * Cases on disk, one directory each under `dir`: case.json plus the
 * latest record, the ruling and the evidence request as files. Every file
 * is written to a temporary name, fsynced and renamed; case.json is
 * written last, so a crash leaves either the old case or the new one, and
 * a ruling file is never named by a case.json before it is durable.
 */
export class CaseStore {
  readonly dir: string
  readonly #cases = new Map<string, CaseRecord>()
  #tmp = 0

  private constructor(dir: string) {
    this.dir = dir
  }

  static async open(dir: string): Promise<CaseStore> {
    const store = new CaseStore(dir)
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      for (const name of await readdir(dir)) {
        if (!ID.test(name)) continue
        let text: string
        try {
          text = await readFile(join(dir, name, CASE_FILE), 'utf8')
        } catch (err) {
          // A directory whose first case.json never became durable holds nothing acknowledged.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
          throw err
        }
        const rec = JSON.parse(text) as CaseRecord
        store.#cases.set(rec.id, rec)
      }
    } catch (err) {
      throw new CaseStoreError(`cannot open the case store ${dir}: ${(err as Error).message}`, { dir }, { cause: err })
    }
    return store
  }

  get size(): number {
    return this.#cases.size
  }

  /** Every case, oldest first. */
  list(): CaseRecord[] {
    return [...this.#cases.values()].sort((a, b) => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1))
  }

  /** A copy of the case (changes reach the store only through `save`). */
  get(id: string): CaseRecord | undefined {
    const rec = this.#cases.get(id)
    return rec === undefined ? undefined : structuredClone(rec)
  }

  /** Cases by status. */
  counts(): Record<CaseStatus, number> {
    const out: Record<CaseStatus, number> = { received: 0, 'evidence-requested': 0, ruled: 0, refused: 0 }
    for (const c of this.#cases.values()) out[c.status]++
    return out
  }

  /** Durably write `files`, then the case itself. */
  async save(rec: CaseRecord, files: Partial<Record<CaseFile, Uint8Array>> = {}): Promise<void> {
    if (!ID.test(rec.id)) throw new CaseStoreError(`invalid case id ${JSON.stringify(rec.id.slice(0, 40))}`)
    const caseDir = join(this.dir, rec.id)
    try {
      await mkdir(caseDir, { recursive: true, mode: 0o700 })
      for (const [name, bytes] of Object.entries(files)) await this.#writeAtomic(caseDir, name, bytes)
      await this.#writeAtomic(caseDir, CASE_FILE, new TextEncoder().encode(`${JSON.stringify(rec, null, 1)}\n`))
      await syncDir(caseDir)
    } catch (err) {
      throw new CaseStoreError(`cannot write case ${rec.id}: ${(err as Error).message}`, { id: rec.id }, { cause: err })
    }
    this.#cases.set(rec.id, structuredClone(rec))
  }

  /** A file kept with the case, or undefined when there is none. */
  async readFile(id: string, name: CaseFile): Promise<Uint8Array | undefined> {
    if (!this.#cases.has(id)) return undefined
    try {
      return new Uint8Array(await readFile(join(this.dir, id, name)))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new CaseStoreError(`cannot read ${name} of case ${id}: ${(err as Error).message}`, { id }, { cause: err })
    }
  }

  async #writeAtomic(dir: string, name: string, bytes: Uint8Array): Promise<void> {
    const tmp = join(dir, `.${name}.${process.pid}.${this.#tmp++}.tmp`)
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(bytes)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, join(dir, name))
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

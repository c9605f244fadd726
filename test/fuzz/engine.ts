/**
 * Running one fuzz input against one target and judging the outcome, and
 * the committed corpus on disk. Shared by test/fuzz.test.ts (CI size) and
 * scripts/fuzz.ts (large mode).
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TallyError } from '@tally/core'

export interface FuzzTarget {
  /** Directory name under corpus/: lower-case words joined by '-'. */
  name: string
  /** What the target feeds the bytes to. */
  description: string
  /**
   * Decode (and verify, handle) untrusted bytes the way the real entry point
   * does. Returns a short label of what came out (a message type, a
   * verdict, a report's first problem) or anything else; throws only typed
   * errors.
   */
  decode(bytes: Uint8Array): unknown | Promise<unknown>
  /** Valid encodings made by the real builders: each must decode without error. */
  seeds(): Promise<Uint8Array[]>
  /** The part of an input that mutations aim at half the time (an entry's body, past the envelope). */
  focus?: (bytes: Uint8Array) => { start: number; end: number } | undefined
  /** Error names besides TallyError subclasses that this entry point documents. */
  allow?: readonly string[]
}

export type Outcome =
  | { kind: 'ok'; label: string; ms: number }
  | { kind: 'error'; name: string; ms: number; cause?: string; masked?: string }
  | { kind: 'violation'; reason: string; name: string; ms: number; error?: unknown }

/** Names of errors that are crashes, not refusals: one of them inside a typed error's cause is a crash the wrapper hid. */
export const UNTYPED_NAMES: ReadonlySet<string> = new Set([
  'TypeError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'EvalError',
  'URIError',
  'AggregateError',
])

/** True when the error was thrown by Tally's own code (its first stack frame in packages/*\/src or apps/*\/src), not by a library. */
function thrownByTally(err: Error): boolean {
  const frame = err.stack?.split('\n').find((l) => l.trimStart().startsWith('at '))
  return frame !== undefined && /\/(packages|apps)\/[^/]+\/src\//.test(frame) && !frame.includes('node_modules')
}

/**
 * Names along an error's cause chain, innermost last, and the first
 * TypeError-like one thrown by Tally's own code: a crash a wrapper hid. (A
 * library's TypeError wrapped in DecodeError or IdentityError is the typed
 * refusal the wrapper is there for.)
 */
function causes(err: unknown): { chain: string[]; masked?: string } {
  const chain: string[] = []
  let masked: string | undefined
  let c = (err as { cause?: unknown }).cause
  for (let i = 0; c instanceof Error && i < 8; i++) {
    chain.push(c.name)
    if (masked === undefined && !(c instanceof TallyError) && UNTYPED_NAMES.has(c.name) && thrownByTally(c)) masked = c.name
    c = (c as { cause?: unknown }).cause
  }
  return masked === undefined ? { chain } : { chain, masked }
}

/** Per-input time bound: an input that takes longer is reported as a hang. */
export const DEFAULT_HANG_MS = Number(process.env['TALLY_FUZZ_HANG_MS'] ?? 2_000)

function labelOf(result: unknown): string {
  if (typeof result === 'string') return result.slice(0, 80)
  if (result === undefined || result === null) return String(result)
  if (typeof result === 'object') {
    const r = result as { type?: unknown; kind?: unknown }
    if (typeof r.type === 'string') return r.type.slice(0, 40)
    if (typeof r.kind === 'string') return r.kind.slice(0, 40)
    return (result as object).constructor?.name ?? 'object'
  }
  return typeof result
}

/** Decode `bytes` with `target`, bounded in time; a thrown non-typed error or a hang is a violation. */
export async function runInput(target: FuzzTarget, bytes: Uint8Array, hangMs = DEFAULT_HANG_MS): Promise<Outcome> {
  const t0 = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  const hang = Symbol('hang')
  try {
    let result = target.decode(bytes)
    if (result instanceof Promise) {
      const timeout = new Promise<typeof hang>((resolve) => {
        timer = setTimeout(() => resolve(hang), hangMs)
      })
      result = await Promise.race([result, timeout])
      if (result === hang) return { kind: 'violation', reason: `no result within ${hangMs} ms`, name: 'Hang', ms: performance.now() - t0 }
    }
    const ms = performance.now() - t0
    // A sync decoder cannot be interrupted; one that ran past the bound is reported after the fact.
    if (ms > hangMs) return { kind: 'violation', reason: `took ${Math.round(ms)} ms (bound ${hangMs} ms)`, name: 'Slow', ms }
    return { kind: 'ok', label: labelOf(result), ms }
  } catch (err) {
    const ms = performance.now() - t0
    const name = err instanceof Error ? err.name : typeof err
    if (err instanceof TallyError || target.allow?.includes(name) === true) {
      if (ms > hangMs) return { kind: 'violation', reason: `took ${Math.round(ms)} ms (bound ${hangMs} ms)`, name: 'Slow', ms }
      const c = causes(err)
      return { kind: 'error', name, ms, ...(c.chain.length > 0 ? { cause: c.chain.join('<') } : {}), ...(c.masked === undefined ? {} : { masked: c.masked }) }
    }
    const message = err instanceof Error ? err.message : String(err)
    return { kind: 'violation', reason: `untyped ${name}: ${message.slice(0, 300)}`, name, ms, error: err }
  } finally {
    if (timer !== undefined) clearTimeout(timer)
  }
}

/** The outcome class an input belongs to: what the large mode keeps one example of. */
export function outcomeKey(o: Outcome): string {
  if (o.kind === 'ok') return `ok:${o.label}`
  if (o.kind === 'error') return `error:${o.name}${o.cause === undefined ? '' : `<${o.cause}`}`
  return `violation:${o.name}`
}

/** Tallies of a run, printed as one JSON line. */
export class FuzzCounts {
  targets = 0
  corpus = 0
  cases = 0
  readonly errorsByName: Record<string, number> = {}
  readonly okByTarget: Record<string, number> = {}
  /** Typed errors whose cause chain holds a TypeError or the like: a crash the wrapper hid. */
  readonly maskedByName: Record<string, number> = {}
  violations = 0
  readonly violationList: { target: string; reason: string; input: string }[] = []

  add(target: string, o: Outcome, bytes: Uint8Array): void {
    this.cases++
    if (o.kind === 'ok') this.okByTarget[target] = (this.okByTarget[target] ?? 0) + 1
    else if (o.kind === 'error') {
      this.errorsByName[o.name] = (this.errorsByName[o.name] ?? 0) + 1
      if (o.masked !== undefined) this.maskedByName[`${target}:${o.name}<${o.masked}`] = (this.maskedByName[`${target}:${o.name}<${o.masked}`] ?? 0) + 1
    } else {
      this.violations++
      if (this.violationList.length < 20) this.violationList.push({ target, reason: o.reason, input: Buffer.from(bytes.subarray(0, 256)).toString('hex') })
    }
  }

  summary(suite: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const errorsByName = Object.fromEntries(Object.entries(this.errorsByName).sort(([a], [b]) => a.localeCompare(b)))
    return { suite, targets: this.targets, corpus: this.corpus, cases: this.cases, errorsByName, violations: this.violations, ...extra }
  }
}

// ---------------------------------------------------------------------------
// The committed corpus: test/fuzz/corpus/<target>/<sha256 prefix>.bin

export const CORPUS_DIR = join(import.meta.dirname, 'corpus')

export function corpusFileName(bytes: Uint8Array, prefix = ''): string {
  return `${prefix}${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`
}

export interface CorpusFile {
  file: string
  bytes: Uint8Array
}

/** The committed corpus of `target`, sorted by file name (crash files included: they must pass once fixed). */
export async function loadCorpus(target: string, dir = CORPUS_DIR): Promise<CorpusFile[]> {
  let names: string[]
  try {
    names = (await readdir(join(dir, target))).filter((n) => n.endsWith('.bin')).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return Promise.all(names.map(async (file) => ({ file, bytes: new Uint8Array(await readFile(join(dir, target, file))) })))
}

/** Write `bytes` into the target's corpus; returns the file name. */
export async function saveCorpusFile(target: string, bytes: Uint8Array, prefix = '', dir = CORPUS_DIR): Promise<string> {
  await mkdir(join(dir, target), { recursive: true })
  const file = corpusFileName(bytes, prefix)
  await writeFile(join(dir, target, file), bytes)
  return file
}

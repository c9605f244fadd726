/**
 * Shared pieces of the adversary suites (issue 7, part 4): each attacker is
 * built from our own packages with a check removed, speaks real libp2p on
 * 127.0.0.1, and each suite prints one summary line of what it tried and
 * what the honest nodes refused.
 */
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { format } from 'node:util'
import type { Logger, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { type CID, type EntryBlock, Identity } from '@tally/core'
import { termsNaming } from '../../../deal/test/helpers.ts'
import { type ContractTerms, type Observation, type PairState, type ReplayProblem, reduce, replay, signObservation } from '@tally/deal'
import type { PairDescriptor, PairLog } from '@tally/lineage'
import {
  FrameStream,
  PAIR_MAX_FRAME_BYTES,
  PAIR_PROTOCOL,
  PAIR_PROTOCOL_VERSION,
  type PairMessage,
  pairMessageSchema,
  type RequestMessage,
  type TallyNode,
} from '../../src/index.ts'

export interface AdversarySummary {
  suite: string
  attempts: number
  rejected: number
  violations: number
  [detail: string]: unknown
}

/** True when the large campaign runs (`TALLY_SCALE=large`): attack counts grow tenfold. */
export const LARGE = process.env['TALLY_SCALE'] === 'large'

/**
 * Gap between new pair streams one peer opens: the honest side allows 2 a
 * second (burst 10), and an attack that repeats past that is refused by the
 * rate limit before the check it means to test.
 */
export const PAIR_STREAM_PACE_MS = 600

/** `n` attempts, or ten times as many in the large campaign. */
export function scaled(n: number): number {
  return LARGE ? n * 10 : n
}

/** Print the suite's one summary line and, when `TALLY_RELIABILITY_OUT` is set, write it to `<dir>/<suite>.json`. */
export async function reportSummary(summary: AdversarySummary): Promise<void> {
  const line = JSON.stringify(summary)
  console.log(line)
  const dir = process.env['TALLY_RELIABILITY_OUT']
  if (dir !== undefined && dir !== '') {
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `${summary.suite}.json`), `${line}\n`)
  }
}

/** A libp2p-style logger that keeps every line it is given (the honest node's log, as the test reads it). */
export function captureLog(lines: string[]): Logger {
  const log = Object.assign((fmt: unknown, ...args: unknown[]) => void lines.push(format(fmt, ...args)), {
    error: (fmt: unknown, ...args: unknown[]) => void lines.push(format(fmt, ...args)),
    trace: () => undefined,
    enabled: true,
    newScope: () => log,
  }) as Logger
  return log
}

export function varint(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

/** One length-prefixed frame, as FrameStream writes it. */
export function frame(payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint(payload.byteLength), ...payload])
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Write `bytes` one at a time, `intervalMs` apart, until they run out, the
 * stream stops being writable or `signal` aborts. Resolves with the number
 * of bytes written.
 */
export async function trickle(stream: Stream, bytes: Uint8Array, intervalMs: number, signal: AbortSignal): Promise<number> {
  let sent = 0
  for (const b of bytes) {
    if (signal.aborted || stream.status !== 'open' || stream.writeStatus !== 'writable') break
    try {
      stream.send(Uint8Array.of(b))
    } catch {
      break
    }
    sent++
    await sleep(intervalMs)
  }
  return sent
}

/** Streams of `protocol` that `node` holds open with `peer` (all of its connections to it; every peer when undefined). */
export function openStreams(node: TallyNode, protocol: string, peer?: string): number {
  let n = 0
  for (const c of node.libp2p.getConnections()) {
    if (peer !== undefined && c.remotePeer.toString() !== peer) continue
    for (const s of c.streams) if (s.protocol === protocol && s.status !== 'closed' && s.status !== 'aborted' && s.status !== 'reset') n++
  }
  return n
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest()

/** Kademlia distance of `peer` to DHT key `key` (a CID's multihash bytes), as kad-dht measures it: XOR of their sha-256. */
export function kadDistance(peer: string, key: Uint8Array): Buffer {
  const a = sha256(peerIdFromString(peer).toMultihash().bytes)
  const b = sha256(key)
  return Buffer.from(a.map((x, i) => x ^ b[i]!))
}

/** Grind identities until one lies within `bits` leading bits of `key`: a Sybil placing itself next to a DHT key. */
export function identityNear(key: Uint8Array, bits: number): Identity {
  for (;;) {
    const id = Identity.generate()
    const d = kadDistance(id.peerId, key)
    let zero = 0
    for (const byte of d) {
      if (byte === 0) {
        zero += 8
        continue
      }
      zero += Math.clz32(byte) - 24
      break
    }
    if (zero >= bits) return id
  }
}

/**
 * A pair-protocol client with every check of PairSession removed: it writes
 * whatever messages the attack needs on a real /tally/pair/1.0.0 stream and
 * reads the honest side's answers as typed messages.
 */
export interface RawPairClient {
  frames: FrameStream
  /** The honest side's last error message (`code: message`), if it sent one. */
  refusal?: string
  /** Send a message as one frame (no check of what it says). */
  send(message: unknown): Promise<void>
  /** The next message of `type` from the honest side, skipping keepalive heads; undefined when the stream ends first. */
  next<T extends PairMessage['type']>(type: T, timeoutMs?: number): Promise<Extract<PairMessage, { type: T }> | undefined>
  /** Hello with `heads` (null: none held), then the honest side's hello and its request for our chain. */
  handshake(heads?: { provider: { seq: number; cid: CID } | null; consumer: { seq: number; cid: CID } | null }): Promise<RequestMessage>
}

export async function rawPairClient(from: TallyNode, to: TallyNode, pair: PairDescriptor): Promise<RawPairClient> {
  const stream = await from.libp2p.dialProtocol(multiaddr(dialAddressOf(to)), PAIR_PROTOCOL)
  const frames = new FrameStream(stream, { maxFrameBytes: PAIR_MAX_FRAME_BYTES, frameTimeoutMs: 10_000 })
  const client: RawPairClient = {
    frames,
    send: (message) => frames.writeMessage(message),
    async next(type, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs
      for (;;) {
        let frame: Uint8Array | null
        try {
          frame = await frames.read({ idleTimeoutMs: Math.max(1, until - Date.now()) })
        } catch {
          return undefined
        }
        if (frame === null) return undefined
        const msg = frames.decodeMessage(frame, pairMessageSchema, 'pair message')
        if (msg.type === type) return msg as Extract<PairMessage, { type: typeof type }>
        if (msg.type === 'error') {
          client.refusal = `${msg.code}: ${msg.message}`
          return undefined
        }
      }
    },
    async handshake(heads = { provider: null, consumer: null }) {
      await client.send({ type: 'hello', v: PAIR_PROTOCOL_VERSION, pair, heads, window: 8 })
      const hello = await client.next('hello')
      if (hello === undefined) throw new Error(`no hello from the honest side (${client.refusal ?? 'stream ended'})`)
      const request = await client.next('request')
      if (request === undefined) throw new Error(`no request from the honest side (${client.refusal ?? 'stream ended'})`)
      return request
    },
  }
  return client
}

function dialAddressOf(node: TallyNode): string {
  const addr = node.multiaddrs().find((a) => a.startsWith('/ip4/127.0.0.1/'))
  if (addr === undefined) throw new Error(`node ${node.peerId} has no loopback address`)
  return addr
}

// ---- A real deal between two honest pair-session peers -------------------------------------------

export const EPOCH_MS = 60_000

/** Contract terms naming `monitors` (weight 1 each, quorum 2 unless given) and an arbiter; usage required, missing evidence holds. */
export function dealTerms(monitors: readonly string[], arbiter: string, over: Partial<ContractTerms> = {}): ContractTerms {
  return termsNaming(monitors, arbiter, Math.min(2, monitors.length), { nonce: `n-${Math.random().toString(36).slice(2)}`, epochMs: EPOCH_MS, ...over })
}

export { attestationBody, workload as WORKLOAD } from '../../../deal/test/helpers.ts'

/** `monitor`'s observation of `subject` covering the epoch [start, start + EPOCH_MS), `okPct` of 100 probes answered. */
export function epochObservation(monitor: Identity, subject: string, start: number, okPct: number, seq: number, issuedAt = start + EPOCH_MS): Observation {
  return signObservation(monitor, {
    subject,
    seq,
    window: { start, end: start + EPOCH_MS },
    samples: { sent: 100, ok: okPct },
    availabilityBp: okPct * 100,
    latencyUs: okPct === 0 ? null : { p50: 1000, p95: 20_000, p99: 60_000 },
    challenges: [],
    credential: null,
    issuedAt,
  })
}

export function usageFigures(claimBp = 10_000) {
  return { claimBp, metered: { wallMs: EPOCH_MS, cpuMs: 30_000, maxRssBytes: 1 << 20, gpuMs: EPOCH_MS }, exit: null, logsHash: 'ab'.repeat(32) }
}

/** The deal state a holder of `log` has: the deal reducer replayed over its whole timeline. */
export async function dealStateOf(log: PairLog): Promise<{ state: PairState; problems: ReplayProblem[]; blocks: EntryBlock[] }> {
  const blocks: EntryBlock[] = []
  for await (const b of log.timeline()) blocks.push(b)
  return { ...replay(blocks, log.pair), blocks }
}

/**
 * The pair-session validator a running peer gives its sessions: every
 * counterparty entry must be a legal transition from the state its log holds
 * (the deal reducer, as DealEngine.validate runs it).
 */
export function dealValidator(logOf: () => PairLog): (added: readonly EntryBlock[]) => Promise<void> {
  return async (added) => {
    let { state } = await dealStateOf(logOf())
    for (const b of added) if (!state.entries.has(b.cid.toString())) state = reduce(state, b)
  }
}

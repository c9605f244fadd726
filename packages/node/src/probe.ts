import { randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { encode, type Identity, type PeerIdString } from '@tally/core'
import {
  CHALLENGE_MIN_N,
  CHALLENGE_SEED_BYTES,
  type ChallengeAnswer,
  type ChallengeParams,
  checkChallenge,
  type DurationJudgement,
  judgeDuration,
  solveChallenge,
} from '@tally/executor'
import { PeerUnreachableError, RemoteError } from './errors.ts'
import { IdentityProofError, ProbeRequestError } from './monitoring-errors.ts'
import type { NodeComponent } from './node.ts'
import {
  checkIdentityProof,
  decodeProbeResponse,
  type IdentityRequest,
  PROBE_MAX_N,
  PROBE_MAX_SKEW_MS,
  PROBE_NONCE_BYTES,
  PROBE_PROTOCOL,
  PROBE_REQUEST_MAX_BYTES,
  PROBE_RESPONSE_MAX_BYTES,
  type ProbeRequest,
  type ProbeResponse,
  probeRequestSchema,
  signIdentityProof,
} from './probe-messages.ts'
import { handleProtocol, type ProtocolHandle, type ProtocolHost, requestResponse } from './protocol.ts'
import { PeerRateLimiter, type RateLimit } from './rate-limit.ts'

/** A monitor must send its request right after opening the stream; it has nothing to compute first. */
export const PROBE_REQUEST_TIMEOUT_MS = 2_000
/** Probe streams per monitor: one probe a second is the usual schedule, bursts allow a few monitors behind one peer id's retries. */
export const PROBE_STREAM_RATE: RateLimit = { perSecond: 5, burst: 20 }
/** Compute challenges per monitor: each costs the provider up to ~0.35 s of CPU, so one every 10 s with a burst of 2. */
export const PROBE_COMPUTE_RATE: RateLimit = { perSecond: 0.1, burst: 2 }
/** An injected (GPU) solver that has not answered in this time is reported as failed. */
export const PROBE_SOLVE_TIMEOUT_MS = 30_000
/** Identity exchange bound, dial included, on the monitor's side. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000
/** Compute exchange bound: n = 512 takes ~0.35 s on the reference CPU path plus 1 MiB of transfer. */
export const DEFAULT_COMPUTE_TIMEOUT_MS = 30_000

export type ChallengeSolver = (params: ChallengeParams) => ChallengeAnswer | Promise<ChallengeAnswer>

export interface ProbeResponderOptions {
  /** The provider's identity: it signs identity proofs. */
  identity: Identity
  log: Logger
  /**
   * Solves compute challenges. Default `solveChallenge`, the reference CPU
   * path, which blocks the event loop for the solve (~0.35 s at n = 512);
   * a provider with a GPU passes `GpuChallengeSolver#solve`.
   */
  solve?: ChallengeSolver
  /** Largest n answered (default and ceiling 512). */
  maxN?: number
  /** New probe streams per monitor (default 5/s, burst 20). */
  streamRate?: RateLimit
  /** Compute challenges per monitor (default 0.1/s, burst 2). */
  computeRate?: RateLimit
  /** Bound on one solve by an asynchronous solver (default 30 s). */
  solveTimeoutMs?: number
  /** Identity requests dated further than this from our clock are refused (default 30 s). */
  maxSkewMs?: number
  now?: () => number
}

export interface ProbeResponderStats {
  identity: number
  compute: number
  /** Requests answered with an error, by code. */
  refused: Record<string, number>
  /** Streams cut off, by error name (FrameDecodeError, FrameTimeoutError, RateLimitedError …). */
  cutOff: Record<string, number>
}

/**
 * Serves /tally/probe/1.0.0 for a provider: signs identity challenges with
 * its key and solves compute challenges, one at a time, rate-limited per
 * monitor. Register it with the node (`node.register(responder)`).
 */
export class ProbeResponder implements NodeComponent {
  readonly stats: ProbeResponderStats = { identity: 0, compute: 0, refused: {}, cutOff: {} }
  readonly #host: ProtocolHost
  readonly #opts: ProbeResponderOptions
  readonly #maxN: number
  readonly #computeLimiter: PeerRateLimiter
  readonly #now: () => number
  #solving = false
  #handle: ProtocolHandle | undefined

  constructor(host: ProtocolHost, opts: ProbeResponderOptions) {
    const maxN = opts.maxN ?? PROBE_MAX_N
    if (!Number.isSafeInteger(maxN) || maxN < CHALLENGE_MIN_N || maxN > PROBE_MAX_N) {
      throw new RangeError(`maxN must be an integer in ${CHALLENGE_MIN_N}..${PROBE_MAX_N}, got ${maxN}`)
    }
    this.#host = host
    this.#opts = opts
    this.#maxN = maxN
    this.#now = opts.now ?? Date.now
    this.#computeLimiter = new PeerRateLimiter(opts.computeRate ?? PROBE_COMPUTE_RATE)
  }

  async start(): Promise<void> {
    if (this.#handle !== undefined) return
    this.#handle = await handleProtocol(
      this.#host,
      PROBE_PROTOCOL,
      async ({ frames, remotePeer }) => {
        const req = await frames.readMessage(probeRequestSchema, 'probe request', { idleTimeoutMs: PROBE_REQUEST_TIMEOUT_MS })
        const res = await this.#answer(req, remotePeer.toString())
        if (res.type === 'error') this.stats.refused[res.code] = (this.stats.refused[res.code] ?? 0) + 1
        else this.stats[res.type]++
        await frames.writeMessage(res)
      },
      {
        frames: { maxFrameBytes: PROBE_REQUEST_MAX_BYTES, maxWriteFrameBytes: PROBE_RESPONSE_MAX_BYTES, frameTimeoutMs: PROBE_REQUEST_TIMEOUT_MS },
        streamRate: this.#opts.streamRate ?? PROBE_STREAM_RATE,
        maxInboundStreams: 8,
        maxOutboundStreams: 8,
        log: this.#opts.log,
        onCutOff: (err) => {
          this.stats.cutOff[err.name] = (this.stats.cutOff[err.name] ?? 0) + 1
        },
      },
    )
  }

  async stop(): Promise<void> {
    const handle = this.#handle
    this.#handle = undefined
    await handle?.close()
  }

  async #answer(req: ProbeRequest, monitor: PeerIdString): Promise<ProbeResponse> {
    if (req.type === 'identity') {
      // Binding the proof to the asking peer keeps it from being relayed as another monitor's evidence.
      if (req.monitor !== monitor) return refuse('bad-request', `request names monitor ${req.monitor}, but came from ${monitor}`)
      const skew = Math.abs(req.time - this.#now())
      const maxSkew = this.#opts.maxSkewMs ?? PROBE_MAX_SKEW_MS
      if (skew > maxSkew) return refuse('bad-request', `request time is ${skew} ms from ours (limit ${maxSkew} ms)`)
      return signIdentityProof(this.#opts.identity, req)
    }
    if (req.n < CHALLENGE_MIN_N || req.n > this.#maxN) return refuse('bad-request', `n must be in ${CHALLENGE_MIN_N}..${this.#maxN}, got ${req.n}`)
    if (this.#solving) return refuse('busy', 'another compute challenge is being solved')
    if (!this.#computeLimiter.take(monitor)) return refuse('rate-limited', `over ${this.#computeLimiter.limit.perSecond} compute challenges/s`)
    this.#solving = true
    try {
      const answer = await withTimeout(
        Promise.resolve().then(() => (this.#opts.solve ?? solveChallenge)({ seed: req.seed, n: req.n })),
        this.#opts.solveTimeoutMs ?? PROBE_SOLVE_TIMEOUT_MS,
      )
      return { type: 'compute', c: answer.c, durationMs: answer.durationMs, solver: answer.solver }
    } catch (err) {
      this.#opts.log.error('compute challenge n=%d failed: %s', req.n, (err as Error).message)
      return refuse('failed', `solver failed: ${(err as Error).message}`.slice(0, 512))
    } finally {
      this.#solving = false
    }
  }
}

function refuse(code: Extract<ProbeResponse, { type: 'error' }>['code'], message: string): ProbeResponse {
  return { type: 'error', code, message }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

// ---- client (the monitor's side) ----------------------------------------------

/** What probeProvider needs from a node: dialing, our protocols, ping and the monitor's identity. */
export interface ProbeClient {
  libp2p: Pick<Libp2p, 'dial' | 'handle' | 'unhandle' | 'dialProtocol'> & { services: { ping: Ping } }
  identity: Identity
}

export interface ComputeProbeOptions {
  /** Matrix size, 8..512. GPU classes need n = 512 for the duration test to mean anything. */
  n: number
  /** The class the provider claims; its duration is judged against it. Unknown: only correctness is checked. */
  hardwareClass?: string
  /** Freivalds rounds (default 2). */
  rounds?: number
}

export interface ProbeOptions {
  /** Where to dial the provider (multiaddrs; `/p2p/<peer>` is appended where missing). Default: addresses the peer store knows. */
  addrs?: readonly (string | Multiaddr)[]
  /** Send an identity challenge (default true). */
  identity?: boolean
  /** Send a compute challenge as well. */
  compute?: ComputeProbeOptions
  /** Bound on dial + ping + identity (default 5 s). */
  timeoutMs?: number
  /** Bound on the compute exchange (default 30 s). */
  computeTimeoutMs?: number
  signal?: AbortSignal
  now?: () => number
  log?: Logger
}

export interface IdentityResult {
  ok: boolean
  /** Request sent to verified answer. */
  durationMs: number
  error?: string
}

export interface ComputeResult {
  /** Correct and, when the class is known, fast enough for it. */
  ok: boolean
  /** Freivalds accepted C. */
  correct: boolean
  n: number
  /** Our own measurement: request to answer, minus the ping round trip. This is what gets judged. */
  measuredMs: number
  /** The provider's own figure (informative). */
  reportedMs: number | null
  solver: 'cpu' | 'gpu' | null
  /** Duration judgement for the claimed class; null when no class was given or no answer came. */
  judgement: DurationJudgement | null
  error?: string
}

export interface ProbeSample {
  peer: PeerIdString
  /** When the probe began (ms). */
  at: number
  /** Dial and ping succeeded. */
  reachable: boolean
  /** libp2p ping round trip as measured around the call (stream negotiation included), µs. */
  rttUs: number | null
  identity: IdentityResult | null
  compute: ComputeResult | null
  /** Why the provider was unreachable. */
  error?: string
}

function dialTarget(peer: PeerId, addrs: readonly (string | Multiaddr)[] | undefined): PeerId | Multiaddr[] {
  if (addrs === undefined || addrs.length === 0) return peer
  const suffix = `/p2p/${peer.toString()}`
  return addrs.map((a) => {
    const text = a.toString()
    return multiaddr(text.includes('/p2p/') ? text : `${text}${suffix}`)
  })
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

/**
 * Probe one provider: dial, libp2p ping (round trip), then optionally an
 * identity challenge (the provider signs our nonce; it must verify for
 * `peer`) and a compute challenge (Freivalds-checked, duration judged for
 * the claimed class). Never throws for the provider's failures: they are
 * in the sample. Throws only for bad arguments.
 */
export async function probeProvider(node: ProbeClient, peer: PeerIdString, opts: ProbeOptions = {}): Promise<ProbeSample> {
  const now = opts.now ?? Date.now
  const peerId = peerIdFromString(peer)
  if (opts.compute !== undefined && (!Number.isSafeInteger(opts.compute.n) || opts.compute.n < CHALLENGE_MIN_N || opts.compute.n > PROBE_MAX_N)) {
    throw new ProbeRequestError(`compute n must be in ${CHALLENGE_MIN_N}..${PROBE_MAX_N}, got ${opts.compute.n}`)
  }
  const sample: ProbeSample = { peer, at: now(), reachable: false, rttUs: null, identity: null, compute: null }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
  setMaxListeners(Infinity, signal)
  const host = node.libp2p
  try {
    const connection = await host.dial(dialTarget(peerId, opts.addrs), { signal })
    if (!connection.remotePeer.equals(peerId)) throw new PeerUnreachableError(`dialed ${connection.remotePeer}, expected ${peer}`)
    const t0 = performance.now()
    await host.services.ping.ping(peerId, { signal })
    sample.rttUs = Math.max(1, Math.round((performance.now() - t0) * 1000))
    sample.reachable = true
  } catch (err) {
    sample.error = timeout.aborted ? `no answer within ${timeoutMs} ms` : describe(err)
    return sample
  }
  if (opts.identity !== false) sample.identity = await identityChallenge(host, peerId, node.identity.peerId, now, signal, opts.log)
  if (opts.compute !== undefined) {
    sample.compute = await computeChallenge(
      host,
      peerId,
      opts.compute,
      sample.rttUs ?? 0,
      opts.computeTimeoutMs ?? DEFAULT_COMPUTE_TIMEOUT_MS,
      opts.signal,
      opts.log,
    )
  }
  return sample
}

async function identityChallenge(
  host: ProtocolHost,
  peer: PeerId,
  monitor: PeerIdString,
  now: () => number,
  signal: AbortSignal,
  log: Logger | undefined,
): Promise<IdentityResult> {
  const req: IdentityRequest = { type: 'identity', nonce: new Uint8Array(randomBytes(PROBE_NONCE_BYTES)), monitor, time: now() }
  const t0 = performance.now()
  try {
    const bytes = await requestResponse(host, peer, PROBE_PROTOCOL, encode(req), {
      maxResponseBytes: 1024,
      timeoutMs: DEFAULT_PROBE_TIMEOUT_MS,
      signal,
      ...(log === undefined ? {} : { log }),
    })
    const res = decodeProbeResponse(bytes)
    if (res.type === 'error') throw new RemoteError(`provider refused identity challenge: ${res.code}: ${res.message}`, { code: res.code })
    checkIdentityProof(req, res, peer.toString())
    return { ok: true, durationMs: Math.round(performance.now() - t0) }
  } catch (err) {
    return { ok: false, durationMs: Math.round(performance.now() - t0), error: describe(err) }
  }
}

async function computeChallenge(
  host: ProtocolHost,
  peer: PeerId,
  opts: ComputeProbeOptions,
  rttUs: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  log: Logger | undefined,
): Promise<ComputeResult> {
  const params: ChallengeParams = { seed: new Uint8Array(randomBytes(CHALLENGE_SEED_BYTES)), n: opts.n }
  const result: ComputeResult = { ok: false, correct: false, n: opts.n, measuredMs: 0, reportedMs: null, solver: null, judgement: null }
  const t0 = performance.now()
  try {
    const bytes = await requestResponse(host, peer, PROBE_PROTOCOL, encode({ type: 'compute', seed: params.seed, n: params.n }), {
      maxResponseBytes: PROBE_RESPONSE_MAX_BYTES,
      timeoutMs,
      replyTimeoutMs: timeoutMs,
      ...(signal === undefined ? {} : { signal }),
      ...(log === undefined ? {} : { log }),
    })
    result.measuredMs = Math.max(0, Math.round(performance.now() - t0 - rttUs / 1000))
    const res = decodeProbeResponse(bytes)
    if (res.type === 'error') throw new RemoteError(`provider refused compute challenge: ${res.code}: ${res.message}`, { code: res.code })
    if (res.type !== 'compute') throw new IdentityProofError(`expected a compute answer, got ${res.type}`)
    result.reportedMs = res.durationMs
    result.solver = res.solver
    result.correct = checkChallenge(params, res.c, opts.rounds ?? 2)
    if (opts.hardwareClass !== undefined) result.judgement = judgeDuration(opts.hardwareClass, opts.n, result.measuredMs)
    result.ok = result.correct && (result.judgement === null || result.judgement.ok)
    if (!result.correct) result.error = 'wrong product (Freivalds check failed)'
    else if (result.judgement !== null && !result.judgement.ok)
      result.error = `${result.judgement.reason}: ${result.measuredMs} ms > ${result.judgement.maxMs} ms`
  } catch (err) {
    result.measuredMs = Math.max(0, Math.round(performance.now() - t0 - rttUs / 1000))
    result.error = describe(err)
  }
  return result
}

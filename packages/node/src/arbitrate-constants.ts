/**
 * /tally/arbitrate/1.0.0: protocol id and limits, each with the reason for
 * its value. docs/PROTOCOL.md ("/tally/arbitrate/1.0.0") lists the same figures.
 */

/** A party submits a dispute's record to an arbiter; the arbiter answers with a ruling, an evidence request or a refusal. */
export const ARBITRATE_PROTOCOL = '/tally/arbitrate/1.0.0'
/** Version carried in the case header; another version is refused with `bad-request`. */
export const ARBITRATE_PROTOCOL_VERSION = 1

/** Largest record accepted by default: a 10,000-epoch deal with several observations per epoch exports to ~15 MiB; 64 MiB leaves 4x headroom. */
export const ARBITRATE_MAX_RECORD_BYTES = 64 * 1024 * 1024
/** Record bytes per `chunk` frame: big enough that framing costs vanish (256 frames for 64 MiB), small enough that a stream's buffer stays small. */
export const ARBITRATE_CHUNK_BYTES = 256 * 1024
/** A chunk frame is the chunk plus its DAG-CBOR map ({type, data}): a few bytes; 1 KiB is ample. */
export const ARBITRATE_CHUNK_FRAME_BYTES = ARBITRATE_CHUNK_BYTES + 1024
/** Chunks the client may send ahead of the server's credit: 4 MiB in flight keeps a 100 ms path at 40 MiB/s; the server buffers at most this much per stream. */
export const ARBITRATE_WINDOW_CHUNKS = 16
/** The case header: a pair, two CIDs, flags. */
export const ARBITRATE_HEADER_MAX_BYTES = 4 * 1024
/** An answer holds one signed ruling: reasons ≤ 16 KiB of text and ≤ 1024 relied CIDs (~40 KiB); 256 KiB leaves room. */
export const ARBITRATE_ANSWER_MAX_BYTES = 256 * 1024
/** Server → client control frames (`ready`, `credit`) are tiny. */
export const ARBITRATE_CONTROL_MAX_BYTES = 256

/** The header must arrive within this time of opening the stream: the client has it ready before it dials. */
export const ARBITRATE_HEADER_TIMEOUT_MS = 5_000
/** The whole record must arrive within this time: 64 MiB at 1 MiB/s (a slow WAN link) with room to spare. */
export const ARBITRATE_UPLOAD_TIMEOUT_MS = 120_000
/**
 * A client holding credit sends its next chunk at once; one silent this long
 * is cut off. Without it a peer could send a header and nothing more and
 * hold one of the few case slots for the whole upload timeout.
 */
export const ARBITRATE_CHUNK_TIMEOUT_MS = 10_000
/** The client's bound on the whole exchange by default: upload, verification and replay of a large record, the answer. */
export const ARBITRATE_CASE_TIMEOUT_MS = 180_000

/** Cases per peer: a party submits once per dispute stage, plus a resubmission after each evidence answer; a loop of them is abuse. */
export const ARBITRATE_CASE_RATE = { perSecond: 0.5, burst: 10 }
/** Cases decided at once: each holds its record in memory (≤ 64 MiB) and replays it on the event loop. */
export const ARBITRATE_MAX_CONCURRENT_CASES = 4
/**
 * Of those, cases one peer may have in progress: half, so that one peer
 * never holds every slot, yet a consumer with disputes on two deals (a job
 * fanned out across providers) submits both at once.
 */
export const ARBITRATE_MAX_CASES_PER_PEER = 2
/** Case streams per connection: a party has no reason for more than one or two at a time. */
export const ARBITRATE_MAX_STREAMS_PER_CONNECTION = 2
/** New streams per peer, checked before a byte is read (each may buffer a window): generous next to the case rate, which answers with a typed refusal. */
export const ARBITRATE_STREAM_RATE = { perSecond: 2, burst: 20 }

/** Bytes of an error message we send or keep from a peer. */
export const ARBITRATE_MAX_ERROR_MESSAGE = 1024

/**
 * /tally/pair/1.0.0: protocol id and limits, each with the reason for its
 * value. docs/PROTOCOL.md ("/tally/pair/1.0.0") lists the same figures.
 */
import { MAX_ENTRY_BYTES } from '@tally/core'

/** One long-lived stream per connected pair: hello, then both chains flow both ways. */
export const PAIR_PROTOCOL = '/tally/pair/1.0.0'
/** Version carried in hello; a peer speaking another version is refused with a typed error. */
export const PAIR_PROTOCOL_VERSION = 1

/** Largest frame: one maximal entry (256 KiB) must fit with room to spare; a catch-up batch of ~500 typical entries is ~200 KiB. */
export const PAIR_MAX_FRAME_BYTES = 1024 * 1024
/** Entries per `entries` frame: big enough that per-frame costs (ack, fsync, one signature) vanish, small enough to keep a frame well under 1 MiB. */
export const PAIR_MAX_BATCH_ENTRIES = 512
/** `entries` frames a sender may have unacknowledged: pipelines catch-up over one RTT plus one fsync, and bounds receiver memory to window x 1 MiB. */
export const PAIR_WINDOW_FRAMES = 8
/** Upper bound a receiver may advertise as its window. */
export const PAIR_MAX_WINDOW_FRAMES = 64
/** Entries handed to one ingest when several frames wait: fewer fsyncs and signature checks, still a bounded batch. */
export const PAIR_MAX_INGEST_ENTRIES = 4096

/** The opener's hello, and the reply to it, must arrive within this time (a fresh dial here takes ~40 ms). */
export const PAIR_HELLO_TIMEOUT_MS = 5_000
/** A frame started must be finished within this time; a peer stalling mid-message is cut off. */
export const PAIR_FRAME_TIMEOUT_MS = 10_000
/** A side that has sent nothing for this long sends its heads, so an idle session proves it is alive. */
export const PAIR_KEEPALIVE_MS = 15_000
/** Nothing received for this long (three keepalives) means the peer or the path is dead: the session is cut and redialed. */
export const PAIR_IDLE_TIMEOUT_MS = 45_000

/** Frames per peer across its pair streams: live traffic is one frame per append plus one ack; catch-up needs ~50/s. */
export const PAIR_FRAME_RATE = { perSecond: 5_000, burst: 10_000 }
/** New pair streams per peer: a reconnect or a simultaneous open needs one or two, a loop of them is abuse. */
export const PAIR_STREAM_RATE = { perSecond: 2, burst: 10 }
/** Two peers share at most two pairs (each as provider once); doubled for simultaneous opens and replacements. */
export const PAIR_MAX_STREAMS_PER_CONNECTION = 8

/** Reconnect backoff: first retry after ~200 ms, doubling to 30 s, with full jitter so two sides do not retry in step. */
export const PAIR_BACKOFF_INITIAL_MS = 200
export const PAIR_BACKOFF_MAX_MS = 30_000
/** A session that lasted this long resets the backoff, even if it ended in an error. */
export const PAIR_STABLE_SESSION_MS = 10_000
/** Looking the counterparty up in the DHT when its stored addresses fail. */
export const PAIR_FIND_PEER_TIMEOUT_MS = 5_000
/** Counterparty addresses kept per pair. */
export const PAIR_MAX_ADDRS = 16

/** Own entries kept in memory for live pushes without a store read. */
export const PAIR_RECENT_ENTRIES = 4096
/** Bytes of an error message we send or log from a peer. */
export const PAIR_MAX_ERROR_MESSAGE = 512

/** Meta key prefixes in the node's store. */
export const PAIR_PEER_META_PREFIX = 'tally/pair-session/peer/'
export const PAIR_RECV_META_PREFIX = 'tally/pair-session/recv/'

// A frame must hold one maximal entry with its envelope.
if (PAIR_MAX_FRAME_BYTES < MAX_ENTRY_BYTES + 1024) throw new Error('PAIR_MAX_FRAME_BYTES cannot hold one entry')

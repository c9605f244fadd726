/**
 * Protocol ids and limits of @tally/node, each with the reason for its value.
 * docs/PROTOCOL.md ("Network") lists the same figures for other implementations.
 */

// ---- Protocol ids -----------------------------------------------------------

/** Our private Kademlia DHT: a separate keyspace from IPFS so only Tally peers fill our routing tables. */
export const KAD_PROTOCOL = '/tally/kad/1.0.0'
/** Request/response: a consumer asks a provider for its current signed offer. */
export const OFFER_PROTOCOL = '/tally/offer/1.0.0'
// '/tally/pair/1.0.0' (pair sessions) is defined beside the pair-session code (pair-*.ts).

// ---- Capability keys ----------------------------------------------------------

/** Versioned namespace of capability keys; a new key scheme gets a new version so old and new records never mix. */
export const CAPABILITY_KEY_PREFIX = 'tally/cap/v1'

// ---- Gossip topics -----------------------------------------------------------

/** Observations are sharded by provider so a party subscribes only to its counterparties' shards. */
export const OBSERVATION_TOPIC_PREFIX = '/tally/obs/1/'
/** Warrants (equivocation proofs) and revocations: rare, of interest to everyone, so one topic. */
export const WARRANT_TOPIC = '/tally/warrant/1'
/** 16 shards: with observations at ~20/s network-wide a subscriber to one shard sees ~1/s, yet fewer than 16 topics keeps mesh upkeep cheap. */
export const DEFAULT_OBSERVATION_SHARDS = 16
/** Upper bound on shards: one sha-256 byte pair addresses 65536, and more topics than this only cost heartbeat work. */
export const MAX_OBSERVATION_SHARDS = 4096

// ---- Frames (all our stream protocols) -----------------------------------------

/** A peer must complete a frame it has started within this time; a stall in the middle of a message is cut off. */
export const DEFAULT_FRAME_TIMEOUT_MS = 10_000
/** Waiting for the first byte of a reply: covers a busy peer that signs or reads its store before answering. */
export const DEFAULT_REPLY_TIMEOUT_MS = 5_000
/** Once an exchange is over and we closed our side, an honest peer closes its own at once; one that has not within this time is cut off. */
export const REQUEST_CLOSE_GRACE_MS = 1_000
/**
 * Bytes buffered ahead of the reader: 4 frames, and at least 256 KiB (one
 * yamux window) so bursts of small frames pass. yamux acknowledges data on
 * arrival, so this bound, not flow control, is what limits a fast sender.
 */
export const DEFAULT_BUFFERED_FRAMES = 4
export const MIN_BUFFERED_BYTES = 256 * 1024

// ---- /tally/offer/1.0.0 ------------------------------------------------------

/** A request is a tiny map ({type}); anything bigger is not a request. */
export const OFFER_REQUEST_MAX_BYTES = 256
/** An offer carries up to 16 credentials (~0.5 KiB each) and 64+64 peer ids; 64 KiB leaves 4x headroom. */
export const OFFER_MAX_BYTES = 64 * 1024
/** Whole exchange including dial: a fresh dial here takes ~40 ms, a slow WAN peer a second or two. */
export const OFFER_FETCH_TIMEOUT_MS = 5_000
/** A client that opened the stream must send its request promptly; it has nothing to compute. */
export const OFFER_REQUEST_TIMEOUT_MS = 2_000
/** Offer requests per peer per second (sustained), and burst: discovery asks once per provider, so this is generous. */
export const OFFER_RATE_PER_SECOND = 5
export const OFFER_RATE_BURST = 20
/** Concurrent offer streams per connection: one is normal, a few allow retries overlapping a slow answer. */
export const OFFER_MAX_INBOUND_STREAMS = 4
export const OFFER_MAX_OUTBOUND_STREAMS = 4
/** Bounds inside an offer body. */
export const OFFER_MAX_CREDENTIALS = 16
export const OFFER_MAX_PEERS = 64
export const OFFER_MAX_ADDRESSES = 16
export const OFFER_MAX_RAILS = 16

// ---- Discovery ---------------------------------------------------------------

/** Re-provide every 10 min: provider records live 30 min on other peers, so two rounds can fail before a record lapses. */
export const DEFAULT_REPROVIDE_INTERVAL_MS = 10 * 60_000
/** +-10 % jitter spreads re-provides of many nodes started together. */
export const DEFAULT_REPROVIDE_JITTER = 0.1
/** Provider records expire after 30 min so a provider that left disappears from results within that time. */
export const DEFAULT_PROVIDER_RECORD_VALIDITY_MS = 30 * 60_000
/** One provide round (all keys of an offer) must finish in this time or is reported as failed for the missing keys. */
export const PROVIDE_TIMEOUT_MS = 30_000
/** A findProviders query is cut off after this; a 50-node loopback network answers in ~100 ms. */
export const DEFAULT_FIND_TIMEOUT_MS = 10_000
/** Default number of candidate providers returned by one query. */
export const DEFAULT_FIND_LIMIT = 20
/** Offers fetched concurrently during discover(): bounds sockets and CPU for signature checks. */
export const DISCOVER_FETCH_CONCURRENCY = 8
/**
 * Provider records taken from any one DHT peer's answer. An honest peer
 * holds about k (20) records per key that it could usefully return; a
 * flooder holds thousands. The rest of an answer is dropped (and counted).
 */
export const DEFAULT_MAX_PROVIDERS_PER_SOURCE = 20
/**
 * Candidates whose offers one discover() fetches at most: bounds dials,
 * bytes (64 KiB each) and signature checks (17 at most each) a flood of
 * provider records can cost a consumer, whatever the flood's size.
 */
export const DEFAULT_DISCOVER_MAX_CANDIDATES = 100

// ---- Node boot ---------------------------------------------------------------

/** Dialing the bootstrap list and the first self-lookup must finish in this time; the node serves regardless. */
export const DEFAULT_BOOT_TIMEOUT_MS = 10_000
/** When a node has no connection at all it re-dials its bootstrap list this often (a seed that restarted). */
export const BOOTSTRAP_RETRY_INTERVAL_MS = 30_000
/** Ping is shared by the connection monitor and kad-dht; the default single stream stalls DHT queries (LIBP2P-NOTES pitfall 3). */
export const PING_MAX_INBOUND_STREAMS = 32
export const PING_MAX_OUTBOUND_STREAMS = 16

// ---- Gossip ------------------------------------------------------------------

/** One RPC frame can batch several messages; a warrant holds two entries of up to 256 KiB. */
export const GOSSIP_MAX_RPC_BYTES = 2 * 1024 * 1024
/** An observation is ~1 KiB; 16 KiB allows large latency histograms but nothing abusive. */
export const OBSERVATION_MAX_BYTES = 16 * 1024
/** Two conflicting entries (256 KiB each at most) plus envelopes. */
export const WARRANT_MAX_BYTES = 640 * 1024
/** Per origin and topic: a monitor watching many providers of one shard publishes a few per second. */
export const DEFAULT_GOSSIP_RATE_PER_SECOND = 10
export const DEFAULT_GOSSIP_RATE_BURST = 50
/** Rate-limit state is kept for at most this many origins per topic (oldest dropped first). */
export const MAX_TRACKED_PEERS = 10_000

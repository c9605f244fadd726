/**
 * @tally/node: the running peer. `createTallyNode` assembles libp2p (TCP,
 * Noise, Yamux, identify, ping, kad-dht on /tally/kad/1.0.0, gossipsub)
 * from a validated config; on top sit capability discovery with signed
 * offers (/tally/offer/1.0.0), gossip topics with validation before relay
 * and peer scoring, and the framed-stream helpers every Tally protocol uses.
 */
import '@tally/core'

export { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
export * from './errors.ts'
export * from './constants.ts'
export { type NodeConfig, type ResolvedNodeConfig, nodeConfigSchema, parseNodeConfig, localNetwork } from './config.ts'
export {
  createTallyNode,
  type TallyNode,
  type TallyLibp2p,
  type TallyServices,
  type NodeComponent,
  type NodeStatus,
  type BootReport,
  type CreateNodeOptions,
} from './node.ts'
export { PeerRateLimiter, type RateLimit } from './rate-limit.ts'
export { FrameStream, type FrameStreamOptions, type ReadOptions } from './frames.ts'
export {
  handleProtocol,
  openFrameStream,
  requestResponse,
  type ProtocolHost,
  type ProtocolHandle,
  type InboundContext,
  type HandleProtocolOptions,
  type OpenOptions,
  type RequestOptions,
} from './protocol.ts'
export { capabilityKey, capabilityCid, capabilityKeysFor, hardwareClass, type CapabilityQuery, RAW_CODE } from './capability.ts'
export {
  offerBodySchema,
  signOffer,
  verifyOffer,
  withinPrice,
  OFFER_DOCUMENT_TYPE,
  type Offer,
  type OfferBody,
  type VerifiedOffer,
  type VerifyOfferOptions,
  type OfferFailure,
  type PriceCeiling,
} from './offer.ts'
export {
  OfferServer,
  fetchOffer,
  decodeOfferResponse,
  offerRequestSchema,
  offerResponseSchema,
  type FetchOfferOptions,
  type OfferResponse,
} from './offer-protocol.ts'
export {
  Discovery,
  skipReasonOf,
  type DiscoveryQuery,
  type DiscoveryResult,
  type DiscoveryProgress,
  type ProviderCandidate,
  type FindOptions,
  type DiscoverOptions,
  type SkipReason,
  type SkipCode,
  type AnnounceResult,
} from './discovery.ts'
export { observationShard, observationTopic, observationTopics, tallyTopics } from './topics.ts'
export {
  Gossip,
  type GossipVerdict,
  type GossipContext,
  type TopicValidator,
  type TopicPolicy,
  type GossipMessage,
  type GossipHandler,
  type GossipCounters,
} from './gossip.ts'
export { TOPIC_SCORE_PARAMS, SCORE_THRESHOLDS, IpRangeSet, isIpOrCidr, scoreParams } from './gossip-score.ts'
// ---- Monitors: probes, observations on gossip, intake, warrants --------------
export { IdentityProofError, ProbeRequestError, InvalidWarrantError } from './monitoring-errors.ts'
export {
  PROBE_PROTOCOL,
  PROBE_SIGNING_DOMAIN,
  PROBE_NONCE_BYTES,
  PROBE_MAX_N,
  PROBE_REQUEST_MAX_BYTES,
  PROBE_RESPONSE_MAX_BYTES,
  PROBE_MAX_SKEW_MS,
  probeRequestSchema,
  probeResponseSchema,
  identityProofPayload,
  signIdentityProof,
  checkIdentityProof,
  decodeProbeRequest,
  decodeProbeResponse,
  type ProbeRequest,
  type ProbeResponse,
  type IdentityRequest,
  type ComputeRequest,
  type ProbeErrorCode,
} from './probe-messages.ts'
export {
  ProbeResponder,
  probeProvider,
  PROBE_STREAM_RATE,
  PROBE_COMPUTE_RATE,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_COMPUTE_TIMEOUT_MS,
  type ChallengeSolver,
  type ProbeResponderOptions,
  type ProbeResponderStats,
  type ProbeClient,
  type ProbeOptions,
  type ComputeProbeOptions,
  type ProbeSample,
  type IdentityResult,
  type ComputeResult,
} from './probe.ts'
export {
  observationValidator,
  registerObservationValidator,
  ObservationSequences,
  OBSERVATION_MAX_AGE_MS,
  OBSERVATION_MAX_SKEW_MS,
  OBSERVATION_SEQ_WINDOW,
  type ObservationValidatorOptions,
  type ObservationDropReason,
  type SequenceStatus,
} from './observation-gossip.ts'
export {
  ObservationIntake,
  OBSERVATION_META_PREFIX,
  INTAKE_MAX_OUTSIDE_PER_SUBJECT,
  type ObservationIntakeOptions,
  type ObservationQuery,
  type IntakeCounters,
  type IntakeOutcome,
} from './intake.ts'
export {
  WARRANT_DOCUMENT_TYPE,
  warrantBodySchema,
  makeObservationWarrant,
  makeEntryWarrant,
  conflictingObservations,
  verifyWarrant,
  verifyWarrantDocument,
  encodeWarrant,
  WarrantRegistry,
  evidenceAdmissible,
  type Warrant,
  type WarrantBody,
  type VerifiedWarrant,
  type WarrantStanding,
} from './warrant.ts'
export { WarrantGossip, WARRANT_META_PREFIX, type WarrantGossipOptions, type WarrantCounters } from './warrant-gossip.ts'
// ---- Pair sessions: /tally/pair/1.0.0 ------------------------------------------
export * from './pair-constants.ts'
export * from './pair-errors.ts'
export {
  pairMessageSchema,
  helloSchema,
  requestSchema,
  entriesSchema,
  ackSchema,
  headsSchema,
  errorSchema,
  type PairMessage,
  type HelloMessage,
  type RequestMessage,
  type EntriesMessage,
  type AckMessage,
  type HeadsMessage,
  type ErrorMessage,
} from './pair-messages.ts'
export type { PairStatus, PairCounters, IngestValidator } from './pair-slot.ts'
export type { SessionLimits, SessionEnd } from './pair-session.ts'
export {
  PairSessions,
  DEFAULT_PAIR_LIMITS,
  type PairSessionsOptions,
  type PairSessionsNode,
  type PairSessionEvent,
  type PairSessionsStats,
  type PairLimits,
} from './pair-sessions.ts'
// ---- Arbitration: /tally/arbitrate/1.0.0 --------------------------------------
export * from './arbitrate-constants.ts'
export { CaseRefusedError, InvalidCaseAnswerError, CaseFlowError } from './arbitrate-errors.ts'
export {
  caseHeaderSchema,
  chunkSchema,
  clientMessageSchema,
  readySchema,
  creditSchema,
  rulingAnswerSchema,
  evidenceRequestAnswerSchema,
  errorAnswerSchema,
  serverMessageSchema,
  caseIdOf,
  caseHeader,
  errorAnswer,
  isPartyOf,
  ARBITRATE_ERROR_CODES,
  type ArbitrateErrorCode,
  type CaseHeader,
  type CaseRequest,
  type CaseAnswer,
  type ServerMessage,
} from './arbitrate-messages.ts'
export {
  ArbitrationServer,
  submitCase,
  type ArbitrationCase,
  type CaseHandler,
  type ArbitrationServerOptions,
  type ArbitrationStats,
  type SubmitCaseOptions,
  type CaseOutcome,
} from './arbitrate-protocol.ts'

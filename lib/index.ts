/**
 * koa-sse-server: the public surface. Everything importable is listed here by name.
 * Classes the library creates itself (the hub's parts: `Cluster`, `Qos`, `PresenceTracker`,
 * `Connection`, `RemoteConnection`) are exported as types only: an app gets them from the
 * hub and its events, never constructs them. etc/koa-sse-server.api.md is the reviewed
 * report of this surface (`npm run api:check` fails when it is stale).
 */
export { ssePlugin, typedHub } from './plugin.js';
export { createEmitter } from './emitter.js';
export type { SseEmitter, EmitterQos, RedisEmitterOptions, HttpEmitterOptions } from './emitter.js';
export type { SsePlugin } from './plugin.js';
export { Hub, createHub } from './hub.js';
export type { HubStats } from './hub.js';
export { collectMetrics } from './metrics.js';
export type { MetricsOptions, MetricsRegistry, SseMetrics } from './metrics.js';
export type {
  SendOptions,
  DisconnectOptions,
  ListenersChange,
  HubEvents,
  OpenStreamInit,
  DetailedAnswer,
  ArgsParam,
  ClientLeaving,
  DurationRecord,
  OnceListenerKind,
  OnceListenerOptions,
  ConnectListenerOptions,
  ChannelsChange,
} from './hub.js';
export type { EventMap, EventName, RegisteredEvents, SendArgs, SseEventRegistry } from './core/event-map.js';
export type { ChannelTarget, ChannelPresence, PresenceUser, PresenceChange, PresenceNotice, MemberState } from './core/channels.js';
export type { PresenceTracker } from './cluster/presence-tracker.js';
export type { PresenceTrackerEvents } from './cluster/presence-tracker.js';
export type { PendingLeave } from './local/leave-queue.js';
export type { LocalNodeOptions } from './local/local-node.js';
export type { KeepaliveChoice, KeepaliveZero } from './local/lifetime.js';
export type { ConnectionFilter, Queries, QueryName, QueryArgs, QueryAnswer } from './core/queries.js';
export type { ConnectionHandle } from './core/connection-handle.js';
export type { Connection } from './local/connection.js';
export type { RemoteConnection } from './cluster/remote-connection.js';
export type { Cluster } from './cluster/cluster.js';
export type { FanOut } from './cluster/cluster.js';
export type { ClusterOptions } from './cluster/cluster-options.js';
export type { RecoveryOptions } from './local/recovery-options.js';
export { StaticDiscovery } from './cluster/discovery.js';
export type { Discovery, DiscoveryEvents, PeerAddress, SelfDescription } from './cluster/discovery.js';
export { MdnsDiscovery } from './cluster/mdns-discovery.js';
export type { MdnsOptions } from './cluster/mdns-discovery.js';
export { DnsDiscovery } from './cluster/dns-discovery.js';
export type { DnsOptions } from './cluster/dns-discovery.js';
export { PrimaryDiscovery, CombinedDiscovery } from './cluster/primary-discovery.js';
export type { PrimaryChannel, WorkerNode, WorkerNodeMessage, WorkerPeersMessage, WorkerVerifiedMessage } from './cluster/primary-discovery.js';
export { startWorkers } from './workers/start-workers.js';
export type { PrimaryRole, WorkerRole } from './workers/start-workers.js';
export { WorkerContext } from './workers/worker-context.js';
export { WorkerPool } from './workers/worker-pool.js';
export type { WorkerPoolEvents, WorkerStatus } from './workers/worker-pool.js';
export type { WorkersOptions, RunningWorker } from './workers/workers-options.js';
export { MemoryBus, MemoryTransport } from './cluster/memory-transport.js';
export type { ClusterTransport, RequestHandler, TransportEvents } from './cluster/transport.js';
export type { ClusterRequest, HelloAnswer, SendItem } from './cluster/messages.js';
export type { ClusterEvents } from './cluster/cluster.js';
export type { AckItem, AckedBy, PendingRequest } from './qos/qos-cluster.js';
export type { QosEvents } from './qos/qos.js';
export type { CloseReason, ConnectionInfo, RequestInfo } from './local/connection.js';
export type { ClientInfo } from './core/client-info.js';
export type { HubOptions, PresenceOptions, ResolvedPresenceOptions } from './hub-options.js';
export type { EndpointName, SsePluginOptions, UploadedFile, UploadFields } from './http/plugin-options.js';
export type { ChannelRateLimitOptions } from './http/channel-rate-limit.js';
export type { RequestRateLimitOptions, RequestBucket, RequestKind } from './http/request-rate-limit.js';
export { hashApiKey } from './http/publish-keys.js';
export type { PublishOptions, PublishKey, PublishKeyScope, PublishRate, PublishTargetKind } from './http/publish-keys.js';
export type { PublishResult, PublishFailure } from './http/publish.js';
export type { SseUser, Key } from './core/user.js';
export type { RedisSource, RedisClientLike } from './redis/redis-source.js';
export type { Page, AdminStats, ConnectionView, RedactedUser, StoredMessageView, JavaConnectionFields, JavaMessageFields } from './core/admin-api.js';
export type { NewMessage, QosStore, QueueCount, RemovedTarget, StoredEntry, StoredMessage, StoreFilter } from './qos/qos-store.js';
export type { Qos } from './qos/qos.js';
export type { TypedQos, TypedQosSends } from './qos/typed-qos.js';
export type {
  QosOptions,
  QosReplicationOptions,
  ReplicationStats,
  QosSendOptions,
  QosSendResult,
  QosAckedEvent,
  QosExpiredEvent,
  QosStatus,
} from './qos/qos.js';
export type { TargetKind, TargetRef, SendTargetKind } from './core/targets.js';
export { encodeFrame, serializeData } from './core/frame.js';
export type { FrameInit } from './core/frame.js';
export { defaultWrapOkResponse } from './http/response.js';
export {
  SseError,
  SseBadRequestError,
  SseUnauthorizedError,
  SseForbiddenError,
  SseCrossSiteError,
  SseUnknownConnectionError,
  SseNotFoundError,
  SseMethodNotAllowedError,
  SsePayloadTooLargeError,
  SseUnsupportedMediaTypeError,
  SseTooManyConnectionsError,
  SseRateLimitedError,
  SseTooManyListenersError,
  SseTooManyChannelsError,
  SseChannelDeniedError,
  SseStoreError,
  SseInvalidFieldError,
  SseClosedError,
  SseQueueFullError,
  SseTooFewCopiesError,
  SseQosDisabledError,
  SseRedisUnavailableError,
  SseDiscoveryError,
  SseMissingEngineError,
  SseUnsupportedError,
  SseNodeAddressError,
  SsePeerProtocolError,
  SseWorkersNotReadyError,
  SsePeerError,
  SsePeerTimeoutError,
  SseNotBuiltError,
} from './core/errors.js';
export type { SsePeerErrorCode } from './core/errors.js';
export { VERSION } from './core/version.js';

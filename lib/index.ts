/**
 * koa-sse-server: the public surface. Everything importable is listed here by name.
 */
export { ssePlugin } from './plugin.js';
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
} from './hub.js';
export type { ConnectionFilter } from './local/connection-index.js';
export { Connection } from './local/connection.js';
export { RemoteConnection } from './cluster/remote-connection.js';
export { Cluster } from './cluster/cluster.js';
export type { FanOut } from './cluster/cluster.js';
export type { ClusterOptions } from './cluster/cluster-options.js';
export { StaticDiscovery } from './cluster/discovery.js';
export type { Discovery, DiscoveryEvents, PeerAddress, SelfDescription } from './cluster/discovery.js';
export { MdnsDiscovery } from './cluster/mdns-discovery.js';
export type { MdnsOptions } from './cluster/mdns-discovery.js';
export { MemoryBus, MemoryTransport } from './cluster/memory-transport.js';
export type { ClusterTransport, RequestHandler, TransportEvents } from './cluster/transport.js';
export type { ClusterRequest, HelloAnswer, QueryName, SendItem } from './cluster/messages.js';
export type { CloseReason, ConnectionInfo, RequestInfo } from './local/connection.js';
export type { ClientInfo } from './core/client-info.js';
export type { HubOptions, SsePluginOptions, UploadedFile, UploadFields } from './options.js';
export type { SseUser, Key } from './core/user.js';
export type { Page, AdminStats, ConnectionView, RedactedUser, StoredMessageView } from './core/admin-api.js';
export { Qos } from './qos/qos.js';
export type { QosOptions, QosSendOptions, QosSendResult, QosAckedEvent, QosExpiredEvent, QosStatus } from './qos/qos.js';
export type { TargetKind, TargetRef } from './qos/store.js';
export { encodeFrame, serializeData } from './core/frame.js';
export type { FrameInit } from './core/frame.js';
export { defaultWrapOkResponse } from './http/response.js';
export {
  SseError,
  SseBadRequestError,
  SseUnauthorizedError,
  SseForbiddenError,
  SseUnknownConnectionError,
  SseNotFoundError,
  SseMethodNotAllowedError,
  SsePayloadTooLargeError,
  SseUnsupportedMediaTypeError,
  SseTooManyConnectionsError,
  SseInvalidFieldError,
  SseClosedError,
  SseQueueFullError,
  SseQosDisabledError,
} from './core/errors.js';
export { VERSION } from './core/version.js';

/**
 * koa-sse-server: the public surface. Everything importable is listed here by name.
 */
export { ssePlugin } from './plugin.js';
export type { SsePlugin } from './plugin.js';
export { Hub, createHub } from './hub.js';
export type { HubStats } from './hub.js';
export { collectMetrics } from './metrics.js';
export type { MetricsOptions, SseMetrics } from './metrics.js';
export type {
  SendOptions,
  DisconnectOptions,
  ListenersChange,
  HubEvents,
  OpenStreamInit,
} from './hub.js';
export type { ConnectionFilter } from './connection-index.js';
export { Connection } from './connection.js';
export { RemoteConnection } from './remote-connection.js';
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
export type { CloseReason, ConnectionInfo, RequestInfo } from './connection.js';
export type { ClientInfo } from './client-info.js';
export type { HubOptions, SsePluginOptions, UploadedFile, UploadFields } from './options.js';
export type { SseUser, Key } from './user.js';
export type { Page, AdminStats, ConnectionView, RedactedUser, StoredMessageView } from './admin-api.js';
export { Qos } from './qos/qos.js';
export type { QosOptions, QosSendOptions, QosSendResult, QosAckedEvent, QosExpiredEvent, QosStatus } from './qos/qos.js';
export type { TargetKind, TargetRef } from './qos/store.js';
export { encodeFrame, serializeData } from './frame.js';
export type { FrameInit } from './frame.js';
export { defaultWrapOkResponse } from './response.js';
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
} from './errors.js';
export { VERSION } from './version.js';

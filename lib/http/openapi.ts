import { VERSION } from '../core/version.js';
import type { PublicCall } from './call.js';

// The OpenAPI 3.1 description of the publish API and the admin JSON endpoints, served at
// `GET {base}/openapi.json`. test/openapi.test.ts validates it and matches its paths and
// methods to the route table, and its examples to its schemas: a route added or changed
// without its description here fails that test.

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, examples?: Record<string, unknown>): unknown => ({
  'application/json': {
    schema,
    ...(examples === undefined ? {} : { examples: Object.fromEntries(Object.entries(examples).map(([k, value]) => [k, { value }])) }),
  },
});
const errorAnswer = (description: string): unknown => ({ description, content: json(ref('Error')) });
const PUBLISH_ERRORS = {
  '400': errorAnswer('A malformed request (`ERR_SSE_BAD_REQUEST`); nothing was sent.'),
  '401': errorAnswer('No API key, or an unknown one (`ERR_SSE_UNAUTHORIZED`); the body was not read.'),
  '403': errorAnswer("Outside the key's scope: system, read/write, target kind, durable (`ERR_SSE_FORBIDDEN`); nothing was sent."),
  '404': errorAnswer('The publish API is off: no keys are configured (`ERR_SSE_NOT_FOUND`).'),
  '429': {
    description: "Over the key's rate (`ERR_SSE_RATE_LIMITED`); nothing was sent. Retry after `Retry-After` seconds.",
    headers: { 'Retry-After': { schema: { type: 'integer', minimum: 1 }, description: 'Seconds to wait' } },
    content: json(ref('Error')),
  },
};
const ADMIN_ERRORS = {
  '400': errorAnswer('A malformed parameter (`ERR_SSE_BAD_REQUEST`).'),
  '401': errorAnswer('`authenticate` gave no user (`ERR_SSE_UNAUTHORIZED`).'),
  '403': errorAnswer('Not an admin (`authorizeAdmin`), or a cross-site call (`ERR_SSE_FORBIDDEN`, `ERR_SSE_CROSS_SITE`).'),
};
const ok = (schema: unknown, examples?: Record<string, unknown>): unknown => ({ description: 'Done', content: json(schema, examples) });
/** The admin endpoints answer inside the `wrapOkResponse` envelope: the default one is described. */
const enveloped = (data: unknown): unknown => ({
  allOf: [ref('Envelope'), { type: 'object', properties: { data } }],
});
const query = (name: string, schema: unknown, description: string, required = false): unknown => ({
  name,
  in: 'query',
  required,
  schema,
  description,
});
const PAGING = [
  query('pageNum', { type: 'integer', minimum: 1, default: 1 }, 'Page, from 1'),
  query('pageSize', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, 'Entries per page'),
  query(
    'cluster',
    { type: 'string', enum: ['true', 'false', 'on', 'off', 'yes', 'no', '1', '0'] },
    'false: this node only; default the whole cluster',
  ),
  query('timeout', { type: 'integer', minimum: 1, maximum: 30000 }, 'Longest wait for a peer in ms'),
];

const MESSAGE_EXAMPLE = { target: 'user', keys: ['7', '8'], event: 'invoice-paid', data: { invoice: 1042, amount: '12.50' } };
const DURABLE_EXAMPLE = {
  target: 'user',
  keys: ['7'],
  event: 'invoice-paid',
  data: { invoice: 1042 },
  durable: true,
  ttlMs: 86400000,
  idempotencyKey: 'invoice-1042-paid',
};

const SCHEMAS = {
  PublishMessage: {
    type: 'object',
    description: 'One message: whom it is for, the event and its data.',
    required: ['target', 'event'],
    additionalProperties: false,
    properties: {
      target: { type: 'string', enum: ['user', 'token', 'tenant', 'channel', 'all'], description: 'The kind of the keys' },
      keys: {
        type: 'array',
        minItems: 1,
        maxItems: 10000,
        items: { type: ['string', 'number'] },
        description: 'User ids, access tokens, tenant ids or channel names; none for `all`',
      },
      event: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\r\\n\\u0000]+$', description: 'The SSE event name' },
      data: { description: 'The payload, any JSON (a string is sent verbatim). Default null.' },
      durable: { type: 'boolean', default: false, description: 'Stored and delivered at least once (needs the `qos` option)' },
      listening: { type: 'boolean', default: false, description: 'Only to connections listening to `event`' },
      ttlMs: { type: 'integer', minimum: 1, description: 'Durable only: how long it is kept. Default: the `qos.ttlMs` option' },
      idempotencyKey: {
        type: 'string',
        minLength: 1,
        maxLength: 200,
        pattern: '^[\\x21-\\x7e]+$',
        description:
          'Durable only: a retry with a key the store holds, within the first message’s ttlMs, stores and delivers nothing and answers the first messageId (delivered: 0). SQLite: kept by the node that took the first message; Redis: by the store all nodes share',
      },
    },
  },
  PublishResult: {
    type: 'object',
    required: ['delivered'],
    additionalProperties: false,
    properties: {
      delivered: { type: 'integer', minimum: 0, description: 'Connections written to, cluster-wide' },
      messageId: { type: 'string', description: 'A durable message id (its SSE `id:`)' },
      copies: {
        type: 'integer',
        minimum: 1,
        description: 'A durable message: the nodes that hold it committed (qos.replication; 1 with a Redis store)',
      },
    },
  },
  PublishFailure: {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
  },
  PublishBatch: {
    type: 'object',
    required: ['messages'],
    additionalProperties: false,
    properties: { messages: { type: 'array', minItems: 1, items: ref('PublishMessage'), description: 'At most `publish.maxBatch` (default 1000)' } },
  },
  PublishBatchResult: {
    type: 'object',
    required: ['delivered', 'failed', 'results'],
    additionalProperties: false,
    properties: {
      delivered: { type: 'integer', minimum: 0 },
      failed: { type: 'integer', minimum: 0, description: 'Messages the server failed to send (their result is an error; the others were sent)' },
      results: { type: 'array', items: { oneOf: [ref('PublishResult'), ref('PublishFailure')] } },
    },
  },
  Online: {
    type: 'object',
    required: ['online'],
    additionalProperties: false,
    properties: { online: { type: 'object', additionalProperties: { type: 'boolean' } } },
  },
  Presence: {
    type: 'object',
    required: ['channel', 'users', 'total'],
    additionalProperties: false,
    properties: {
      channel: { type: 'string' },
      users: {
        type: 'array',
        items: {
          type: 'object',
          required: ['userId', 'connections'],
          additionalProperties: false,
          properties: { userId: { type: 'string' }, connections: { type: 'integer', minimum: 1 } },
        },
      },
      total: { type: 'integer', minimum: 0, description: 'Distinct users in the channel' },
    },
  },
  Error: {
    type: 'object',
    required: ['success', 'code', 'status', 'message'],
    properties: {
      success: { const: false },
      code: { type: 'string', description: 'A stable ERR_SSE_* code' },
      status: { type: 'integer' },
      message: { type: 'string' },
      errorMessage: { type: 'string' },
      error: { type: 'string' },
      data: { type: 'object', properties: { error: { type: 'string' }, retryAfter: { type: 'integer' } } },
    },
  },
  Envelope: {
    type: 'object',
    description: 'The default `wrapOkResponse` envelope (an app may replace it)',
    required: ['success', 'code', 'data'],
    properties: { success: { const: true }, code: { const: 200 }, data: {}, message: { type: 'null' }, errorMessage: { type: 'null' } },
  },
  Page: {
    type: 'object',
    required: ['pageNum', 'pageSize', 'total', 'list'],
    properties: {
      pageNum: { type: 'integer', minimum: 1 },
      pageSize: { type: 'integer', minimum: 1 },
      total: { type: 'integer', minimum: 0 },
      list: { type: 'array', items: { type: 'object' } },
      partial: { type: 'boolean' },
      timeout: { type: 'boolean', description: 'The Java name of `partial`' },
    },
  },
  AdminStats: {
    type: 'object',
    required: ['name', 'time', 'users', 'connections', 'partial', 'local', 'qos', 'cluster'],
    properties: {
      name: { type: 'string' },
      time: { type: 'integer' },
      users: { type: 'integer', minimum: 0 },
      connections: { type: 'integer', minimum: 0 },
      partial: { type: 'boolean' },
      local: {
        type: 'object',
        required: ['connections', 'eventsSent'],
        properties: { connections: { type: 'integer' }, eventsSent: { type: 'integer' } },
      },
      qos: { oneOf: [{ type: 'null' }, { type: 'object', required: ['pending'], properties: { pending: { type: 'integer' } } }] },
      cluster: {
        oneOf: [
          { type: 'null' },
          { type: 'object', required: ['nodeId', 'peers'], properties: { nodeId: { type: 'string' }, peers: { type: 'array' } } },
        ],
      },
    },
  },
};

const PUBLISH_SECURITY = [{ apiKey: [] }];
const ADMIN_SECURITY = [{ app: [] }];

const PATHS = {
  '/publish': {
    post: {
      operationId: 'publish',
      summary: 'Publish one message',
      tags: ['publish'],
      security: PUBLISH_SECURITY,
      requestBody: { required: true, content: json(ref('PublishMessage'), { live: MESSAGE_EXAMPLE, durable: DURABLE_EXAMPLE }) },
      responses: {
        '200': ok(ref('PublishResult'), { live: { delivered: 3 }, durable: { delivered: 1, messageId: '0199f3a1c2d4-000001-a1b2c3', copies: 2 } }),
        '413': errorAnswer('The body is over `publish.maxBodyBytes` (`ERR_SSE_PAYLOAD_TOO_LARGE`).'),
        ...PUBLISH_ERRORS,
      },
    },
  },
  '/publish/batch': {
    post: {
      operationId: 'publishBatch',
      summary: 'Publish several messages, checked whole first, sent in order',
      tags: ['publish'],
      security: PUBLISH_SECURITY,
      requestBody: {
        required: true,
        content: json(ref('PublishBatch'), { batch: { messages: [MESSAGE_EXAMPLE, { target: 'all', event: 'maintenance', data: 'at 22:00' }] } }),
      },
      responses: {
        '200': ok(ref('PublishBatchResult'), { batch: { delivered: 40, failed: 0, results: [{ delivered: 3 }, { delivered: 37 }] } }),
        '413': errorAnswer(
          'The body is over `publish.maxBodyBytes`, or the batch over `publish.maxBatch` (`ERR_SSE_PAYLOAD_TOO_LARGE`); nothing was sent.',
        ),
        ...PUBLISH_ERRORS,
      },
    },
  },
  '/publish/online': {
    get: {
      operationId: 'online',
      summary: 'Which users are online, cluster-wide',
      tags: ['publish'],
      security: PUBLISH_SECURITY,
      parameters: [
        {
          name: 'userId',
          in: 'query',
          required: true,
          schema: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 100 },
          style: 'form',
          explode: true,
          description: 'Repeated, or comma-separated',
        },
      ],
      responses: { '200': ok(ref('Online'), { two: { online: { '7': true, '8': false } } }), ...PUBLISH_ERRORS },
    },
  },
  '/publish/presence': {
    get: {
      operationId: 'presence',
      summary: 'Who is in a channel, cluster-wide (as `hub.presence`)',
      tags: ['publish'],
      security: PUBLISH_SECURITY,
      parameters: [
        query('channel', { type: 'string', minLength: 1, maxLength: 256 }, 'The channel', true),
        query('limit', { type: 'integer', minimum: 0 }, 'Most users listed. Default `presence.maxListed`'),
      ],
      responses: {
        '200': ok(ref('Presence'), { room: { channel: 'room:1', users: [{ userId: '7', connections: 2 }], total: 1 } }),
        ...PUBLISH_ERRORS,
      },
    },
  },
  '/connect/users.json': {
    get: {
      operationId: 'users',
      summary: 'Online users, as `redactUser` shows them',
      tags: ['admin'],
      security: ADMIN_SECURITY,
      parameters: [...PAGING, query('name', { type: 'string', maxLength: 256 }, 'Part of the name')],
      responses: { '200': ok(enveloped(ref('Page'))), ...ADMIN_ERRORS },
    },
  },
  '/connect/connections.json': {
    get: {
      operationId: 'connections',
      summary: 'Connections, oldest first, as `mapToConnectionVO` shows them',
      tags: ['admin'],
      security: ADMIN_SECURITY,
      parameters: [
        ...PAGING,
        query('name', { type: 'string', maxLength: 256 }, "Part of the user's name"),
        query('clientId', { type: 'string', maxLength: 256 }, 'A browser'),
        query('id', { type: 'string', maxLength: 256 }, 'A connection id'),
      ],
      responses: { '200': ok(enveloped(ref('Page'))), ...ADMIN_ERRORS },
    },
  },
  '/connect/repositoryMessages.json': {
    get: {
      operationId: 'repositoryMessages',
      summary: "Stored durable messages of this node's store, oldest first",
      tags: ['admin'],
      security: ADMIN_SECURITY,
      parameters: [
        ...PAGING,
        query('userId', { type: 'string', maxLength: 256 }, 'A user target'),
        query('tenantId', { type: 'string', maxLength: 256 }, 'A tenant target'),
        query('channel', { type: 'string', maxLength: 256 }, 'A channel target'),
        query('accessToken', { type: 'string', maxLength: 256 }, 'A token target'),
      ],
      responses: { '200': ok(enveloped(ref('Page'))), '404': errorAnswer('No durable store (`ERR_SSE_NOT_FOUND`).'), ...ADMIN_ERRORS },
    },
  },
  '/connect/stats.json': {
    get: {
      operationId: 'stats',
      summary: 'Live figures for the dashboard',
      tags: ['admin'],
      security: ADMIN_SECURITY,
      responses: { '200': ok(enveloped(ref('AdminStats'))), ...ADMIN_ERRORS },
    },
  },
  '/connect/kick.do': {
    post: {
      operationId: 'kick',
      summary: 'Closes a connection or all of a user, cluster-wide',
      tags: ['admin'],
      security: ADMIN_SECURITY,
      requestBody: {
        required: true,
        content: json(
          {
            type: 'object',
            properties: {
              connectionId: { type: 'string', minLength: 1 },
              userId: { type: ['string', 'number'] },
              reconnect: { type: 'boolean', default: false },
            },
          },
          { user: { userId: '7' } },
        ),
      },
      responses: {
        '200': ok(enveloped({ type: 'object', required: ['closed'], properties: { closed: { type: 'integer', minimum: 0 } } })),
        ...ADMIN_ERRORS,
      },
    },
  },
};

/**
 * The description, with `base` (the plugin's base path) as its server: every path in it is
 * under the base path.
 */
export function openApiDocument(base: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'koa-sse-server publish and admin API',
      version: VERSION,
      description:
        'The publish API (`publish.keys`: off without keys) lets other processes and languages push to the streams of this system, cluster-wide. The admin endpoints serve the dashboard. Answers of the publish API are plain JSON; admin answers come in the `wrapOkResponse` envelope.',
    },
    servers: [{ url: base === '' ? '/' : base }],
    tags: [
      { name: 'publish', description: 'For backends: API keys as bearer tokens' },
      { name: 'admin', description: "For the dashboard: the app's login, `authorizeAdmin`, same site only" },
    ],
    paths: PATHS,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'A secret whose SHA-256 is in `publish.keys` (see `hashApiKey`)' },
        app: { type: 'apiKey', in: 'cookie', name: 'session', description: "Whatever the app's `authenticate` reads (cookie or header)" },
      },
    },
  };
}

/** The serialized document per base path: built once. */
const served = new Map<string, string>();

/** `GET {base}/openapi.json`: the OpenAPI 3.1 description of the publish and admin endpoints. */
export async function openApi({ ctx }: PublicCall): Promise<void> {
  const base = ctx.path.slice(0, -'/openapi.json'.length);
  let text = served.get(base);
  if (text === undefined) {
    text = JSON.stringify(openApiDocument(base));
    if (served.size < 16) served.set(base, text);
  }
  ctx.status = 200;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = text;
}

// The OpenAPI 3.1 description (`GET {base}/openapi.json`, lib/http/openapi.ts) checked against
// the implementation: valid by a maintained validator (@seriousme/openapi-schema-validator),
// its paths and methods the route table's publish and admin JSON routes (no more, no less),
// its examples valid by its own schemas, and the answers of a real server valid by them too.
import { Validator } from '@seriousme/openapi-schema-validator';
import test from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { openApiDocument } from '../lib/http/openapi.js';
import { ROUTES } from '../lib/http/routes.js';
import { hashApiKey } from '../lib/index.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const KEY = 'openapi-test-key-0123456789abcdef';
const doc = openApiDocument('/sse/test') as any;

/** A validator of the document's schemas, by `#/components/schemas/...` refs. */
function schemas(): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
  return ajv;
}

/** A schema of the document, its refs resolved against the document. */
function check(ajv: Ajv2020, schema: unknown, value: unknown): string | undefined {
  const validate = ajv.compile(rebase(schema) as object);
  return validate(value) ? undefined : ajv.errorsText(validate.errors);
}

/** Rewrites `#/components/...` refs to point into the document registered as `doc`. */
function rebase(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/'));
}

test('the description is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async (t) => {
  const validator = new Validator();
  const result = await validator.validate(doc);
  t.true(result.valid, JSON.stringify(result.errors, null, 2));
  t.is(validator.version, '3.1');
});

test('its paths and methods are the publish and admin JSON routes of the route table, no more, no less', (t) => {
  const described = Object.entries(doc.paths as Record<string, object>)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
  const routed = ROUTES.filter((r) => r.access === 'api-key' || (r.access === 'admin' && r.path !== '/dashboard'))
    .flatMap((r) => r.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${r.path}`))
    .sort();
  t.deepEqual(described, routed);
  for (const r of ROUTES.filter((r) => r.access === 'api-key')) {
    for (const m of r.methods) t.deepEqual(doc.paths[r.path][m.toLowerCase()].security, [{ apiKey: [] }], `${m} ${r.path}`);
  }
});

test('every example is valid by its schema', (t) => {
  const ajv = schemas();
  let examples = 0;
  for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const bodies: [string, any][] = [['request', op.requestBody?.content?.['application/json']]];
      for (const [status, answer] of Object.entries(op.responses as Record<string, any>)) bodies.push([status, answer.content?.['application/json']]);
      for (const [where, media] of bodies) {
        for (const [name, example] of Object.entries((media?.examples ?? {}) as Record<string, { value: unknown }>)) {
          examples++;
          t.is(check(ajv, media.schema, example.value), undefined, `${method} ${p} ${where} example ${name}`);
        }
      }
    }
  }
  t.true(examples >= 8, `${examples} examples`);
  // A schema that would take anything proves nothing: a wrong example is refused.
  t.not(check(ajv, { $ref: '#/components/schemas/PublishMessage' }, { target: 'nobody', event: 'x' }), undefined);
});

test('the served description, and real answers of each described operation valid by its schemas', async (t) => {
  const s = await startPlugin(t, { qos: { file: ':memory:' }, publish: { keys: [{ id: 'k', hash: hashApiKey(KEY) }] } });
  const served = await fetch(`${s.base}/openapi.json`);
  t.is(served.status, 200);
  t.deepEqual(await served.json(), doc);
  const conn = await RawStream.open(t, `${s.base}/connect?access-token=7`);
  await s.plugin.hub.joinChannel({ connectionId: conn.connectionId }, 'room:1');
  const ajv = schemas();
  const auth = { authorization: `Bearer ${KEY}` };
  const calls: [string, string, RequestInit, number][] = [
    [
      '/publish',
      'post',
      {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ target: 'user', keys: [7], event: 'e', durable: true }),
      },
      200,
    ],
    [
      '/publish/batch',
      'post',
      {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ target: 'channel', keys: ['room:1'], event: 'e' }] }),
      },
      200,
    ],
    ['/publish/online', 'get', { headers: auth }, 200],
    ['/publish/presence', 'get', { headers: auth }, 200],
    ['/publish', 'post', { method: 'POST', headers: { authorization: 'Bearer wrong' } }, 401],
    ['/publish/online', 'get', { headers: auth }, 400],
    ['/connect/users.json', 'get', {}, 200],
    ['/connect/connections.json', 'get', {}, 200],
    ['/connect/repositoryMessages.json', 'get', {}, 200],
    ['/connect/stats.json', 'get', {}, 200],
    ['/connect/kick.do', 'post', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 8 }) }, 200],
  ];
  const queries: Record<string, string> = { '/publish/online': '?userId=7,8', '/publish/presence': '?channel=room:1' };
  for (const [p, method, init, status] of calls) {
    const admin = p.startsWith('/connect/');
    const q = status === 400 ? '' : (queries[p] ?? '');
    const res = await fetch(`${s.base}${p}${q}${admin ? '?access-token=admin' : ''}`, init);
    t.is(res.status, status, `${method} ${p}`);
    const schema = doc.paths[p][method].responses[String(status)]?.content['application/json'].schema;
    t.truthy(schema, `${method} ${p} describes ${status}`);
    t.is(check(ajv, schema, await res.json()), undefined, `${method} ${p} ${status}`);
  }
});

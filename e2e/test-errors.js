// e2e/test-errors.js — bad input and limits over the wire: OpenAI error
// objects with the right status codes, the admin API, quotas (429 with
// Retry-After), disabled tenants (403), and a client that disconnects
// mid-stream, whose sequence must stop and give back its KV blocks.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startServer, requireWs } = require('./lib/server');

let srv;
before(async () => { srv = await startServer(['--max-body-bytes', '65536']); });
after(async () => { await srv.stop(); });

const chat = (extra = {}) => ({ model: 'default', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, ...extra });

async function expectError(r, status, re) {
  assert.equal(r.status, status);
  const j = await r.json();
  assert.ok(j.error && typeof j.error.message === 'string', JSON.stringify(j));
  if (re) assert.match(j.error.message, re);
  return j.error;
}

test('authentication: missing and unknown keys are 401', async () => {
  await expectError(await srv.post('/v1/chat/completions', chat(), { 'content-type': 'application/json' }), 401, /API key/);
  await expectError(await srv.post('/v1/chat/completions', chat(), { authorization: 'Bearer rk_wrong' }), 401);
});

test('validation names the field', async () => {
  let e = await expectError(await srv.post('/v1/chat/completions', chat({ temperature: 'hot' })), 400, /temperature/);
  assert.equal(e.param, 'temperature');
  await expectError(await srv.post('/v1/chat/completions', chat({ bogus: 1 })), 400, /bogus/);
  await expectError(await srv.post('/v1/chat/completions', chat({ n: 3 })), 400, /n=1/);
  await expectError(await srv.post('/v1/chat/completions', chat({ messages: [{ role: 'user' }] })), 400, /content/);
  await expectError(await srv.post('/v1/chat/completions', chat({ max_tokens: 100000 })), 400, /context length/);
  await expectError(await srv.post('/v1/chat/completions', chat({ logit_bias: { abc: 1 } })), 400, /logit_bias/);
  await expectError(await srv.post('/v1/chat/completions', chat({ model: 'gpt-4' })), 404, /does not exist/);
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: srv.headers, body: '{"model": ' });
  await expectError(r, 400, /invalid JSON/);
});

test('limits: body size (413), JSON depth, unknown route (404), wrong method (405)', async () => {
  const big = JSON.stringify(chat({ user: 'x'.repeat(100000) }));
  await expectError(await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: srv.headers, body: big }), 413);
  const deep = '{"model":"default","messages":' + '['.repeat(100) + ']'.repeat(100) + '}';
  await expectError(await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: srv.headers, body: deep }), 400, /nested/);
  await expectError(await fetch(srv.url + '/v1/nothing', { headers: srv.headers }), 404);
  await expectError(await fetch(srv.url + '/v1/chat/completions', { headers: srv.headers }), 405);
});

test('admin API, quotas (429 + Retry-After) and disabled tenants (403)', async () => {
  const admin = { 'content-type': 'application/json', authorization: `Bearer ${srv.adminKey}` };
  await expectError(await srv.post('/admin/tenants', { name: 'x' }), 401);
  let r = await srv.post('/admin/tenants', { name: 'limited', requests_per_min: 1 }, admin);
  assert.equal(r.status, 201);
  const t = await r.json();
  r = await srv.post(`/admin/tenants/${t.id}/keys`, { label: 'e2e' }, admin);
  assert.equal(r.status, 201);
  const { key } = await r.json();
  const h = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  assert.equal((await srv.post('/v1/chat/completions', chat(), h)).status, 200);
  r = await srv.post('/v1/chat/completions', chat(), h);
  await expectError(r, 429);
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.equal((await srv.post(`/admin/tenants/${t.id}/disable`, {}, admin)).status, 200);
  await expectError(await srv.post('/v1/chat/completions', chat(), h), 403);
  const list = await (await fetch(srv.url + '/admin/tenants', { headers: admin })).json();
  assert.ok(list.data.some((x) => x.name === 'limited' && !x.enabled));
});

test('a client that disconnects mid-stream frees its sequence and KV blocks', async () => {
  const u = new URL(srv.url + '/v1/chat/completions');
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no stream')), 120000);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: srv.headers }, (res) => {
      res.once('data', () => { req.destroy(); clearTimeout(timer); resolve(); }); // first bytes, then hang up
    });
    req.on('error', () => {});
    req.end(JSON.stringify(chat({ max_tokens: 1000, stream: true })));
  });
  let m;
  for (let i = 0; i < 100; i++) {
    m = await srv.metrics();
    if (m.realm_running_sequences === 0 && m.realm_kv_blocks_used === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(m.realm_running_sequences, 0);
  assert.equal(m.realm_kv_blocks_used, 0);
});

test('WebSocket: errors as frames, health, metadata, cancel', async () => {
  const WebSocket = requireWs();
  const ws = new WebSocket(srv.url.replace('http', 'ws') + '/v1/ws');
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  const frames = [];
  const waiters = [];
  ws.on('message', (m) => { frames.push(JSON.parse(m.toString())); waiters.splice(0).forEach((w) => w()); });
  const next = async (pred) => {
    for (;;) {
      const f = frames.find(pred);
      if (f) return f;
      await new Promise((r) => waiters.push(r));
    }
  };
  ws.send('{not json');
  assert.equal((await next((f) => f.status === 'error' && f.id === null)).error.code, 400);
  ws.send(JSON.stringify({ id: 1, function: 'generate', params: { prompt: 'x' } }));
  assert.equal((await next((f) => f.id === 1)).error.code, 401);
  ws.send(JSON.stringify({ id: 2, function: 'auth', params: { api_key: srv.key } }));
  assert.equal((await next((f) => f.id === 2)).status, 'complete');
  ws.send(JSON.stringify({ id: 3, function: 'health' }));
  assert.equal((await next((f) => f.id === 3)).data.status, 'ok');
  ws.send(JSON.stringify({ id: 4, function: 'metadata' }));
  assert.ok((await next((f) => f.id === 4)).data.max_context > 0);
  ws.send(JSON.stringify({ id: 'long', function: 'generate', params: { prompt: 'Once upon a time', max_tokens: 1000 } }));
  await next((f) => f.id === 'long' && f.status === 'streaming');
  ws.send(JSON.stringify({ id: 'long', function: 'cancel' }));
  const end = await next((f) => f.id === 'long' && f.status === 'complete' && f.data.usage);
  assert.ok(end.data.usage.completion_tokens < 1000);
  ws.send(JSON.stringify({ id: 5, function: 'nope' }));
  assert.equal((await next((f) => f.id === 5)).error.code, 404);
  ws.close();
});

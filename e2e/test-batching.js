// e2e/test-batching.js — continuous batching through the server: N different
// greedy requests sent at once all succeed, each gets exactly the text it
// gets alone, and /metrics shows forward passes that decoded several
// sequences together. Prints the throughput of the concurrent run against
// the same requests sent one after another.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./lib/server');

const N = Number(process.env.REALM_E2E_N || 6);
const MAX_TOKENS = 24;
const TOPICS = ['France', 'Japan', 'Italy', 'Canada', 'Egypt', 'Brazil', 'Spain', 'Kenya', 'Peru', 'Norway'];
const body = (i) => ({
  model: 'default', temperature: 0, max_tokens: MAX_TOKENS,
  messages: [{ role: 'user', content: `Tell me one fact about ${TOPICS[i % TOPICS.length]}.` }],
});

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

async function ask(i) {
  const r = await srv.post('/v1/chat/completions', body(i));
  assert.equal(r.status, 200, await r.clone().text());
  const j = await r.json();
  return { text: j.choices[0].message.content, tokens: j.usage.completion_tokens };
}

test(`${N} concurrent requests equal their solo greedy answers and share batches`, async () => {
  const solo = [];
  let t0 = performance.now();
  for (let i = 0; i < N; i++) solo.push(await ask(i));
  const tSeq = (performance.now() - t0) / 1000;

  const before = await srv.metrics();
  t0 = performance.now();
  const par = await Promise.all(Array.from({ length: N }, (_, i) => ask(i)));
  const tPar = (performance.now() - t0) / 1000;
  const after = await srv.metrics();

  for (let i = 0; i < N; i++) assert.equal(par[i].text, solo[i].text, `request ${i} differs when batched`);
  const tokens = par.reduce((a, r) => a + r.tokens, 0);
  const steps = after.realm_engine_steps_total - before.realm_engine_steps_total;
  const decodeRows = after.realm_engine_decode_rows_total - before.realm_engine_decode_rows_total;
  // Alone, every decode step carries one sequence; together they must share.
  assert.ok(after.realm_engine_max_decode_batch >= 2, 'some step decoded several sequences');
  // the backend the server runs on, as a label (cpu here; cuda where --device auto found a GPU)
  assert.equal((after['realm_backend_info{backend="cpu"}'] || 0) + (after['realm_backend_info{backend="cuda"}'] || 0), 1);
  assert.ok(decodeRows / steps > 1.5, `decode rows per step ${decodeRows}/${steps}`);
  const ratio = tSeq / tPar;
  console.log(`batching: N=${N} tokens=${tokens} sequential ${tSeq.toFixed(2)} s, concurrent ${tPar.toFixed(2)} s, ` +
    `throughput ratio ${ratio.toFixed(2)}x; ${(decodeRows / steps).toFixed(2)} decode rows/step, ` +
    `max decode batch ${after.realm_engine_max_decode_batch}`);
});

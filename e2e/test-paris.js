// e2e/test-paris.js — the default model answers "What is the capital of
// France?" with "Paris" over each API: OpenAI chat completions without and
// with streaming (SSE), and the WebSocket API. Greedy (temperature 0), with
// the system prompt of the golden test (tests/oracle/test_generate_golden.py).
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, parseSse, requireWs } = require('./lib/server');

const MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is the capital of France?' },
];
let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

test('chat completion (non-streaming) says Paris', async () => {
  const r = await srv.post('/v1/chat/completions', { model: 'default', messages: MESSAGES, temperature: 0, max_tokens: 16 });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.equal(j.object, 'chat.completion');
  assert.match(j.choices[0].message.content, /Paris/);
  assert.ok(['stop', 'length'].includes(j.choices[0].finish_reason));
  assert.ok(j.usage.prompt_tokens > 0 && j.usage.completion_tokens > 0);
  assert.equal(j.usage.total_tokens, j.usage.prompt_tokens + j.usage.completion_tokens);
});

test('chat completion (SSE) says Paris, with usage in the last chunk', async () => {
  const r = await srv.post('/v1/chat/completions', {
    model: 'default', messages: MESSAGES, temperature: 0, max_tokens: 16, stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const { events, done } = parseSse(await r.text());
  assert.ok(done, 'stream ends with data: [DONE]');
  const text = events.map((e) => (e.choices[0] && e.choices[0].delta.content) || '').join('');
  assert.match(text, /Paris/);
  assert.equal(events[0].choices[0].delta.role, 'assistant');
  const last = events[events.length - 1];
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens > 0);
  assert.ok(events.some((e) => e.choices[0] && e.choices[0].finish_reason));
});

test('WebSocket generate streams Paris', async () => {
  const WebSocket = requireWs();
  const ws = new WebSocket(srv.url.replace('http', 'ws') + '/v1/ws', { headers: { authorization: `Bearer ${srv.key}` } });
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  const frames = [];
  const complete = new Promise((res, rej) => {
    ws.on('message', (m) => {
      const f = JSON.parse(m.toString());
      frames.push(f);
      if (f.status === 'complete' && f.id === 'q1') res(f);
      if (f.status === 'error') rej(new Error(JSON.stringify(f)));
    });
  });
  ws.send(JSON.stringify({ id: 'q1', function: 'generate', params: { messages: MESSAGES, temperature: 0, max_tokens: 16 } }));
  const end = await complete;
  const text = frames.filter((f) => f.status === 'streaming').map((f) => f.data.text).join('');
  assert.match(text, /Paris/);
  assert.equal(end.data.text, text);
  assert.ok(frames.filter((f) => f.status === 'streaming').pop().data.is_final);
  assert.ok(end.data.usage.completion_tokens > 0);
  ws.close();
});

#!/usr/bin/env node
// bench/serve_load.js — hold many concurrent SSE streams against a real
// `realm serve` on loopback until every one completes; report errors,
// p50/p99 time to first token (first content chunk) and total, tokens/s, and
// the server's RSS before and after (a leak shows as growth that a second
// round does not explain). Starts and stops the server itself.
//
//   node bench/serve_load.js [--streams 1000] [--max-tokens 16] [--rounds 2]
//   env: REALM_BIN (default build/realm), REALM_MODEL_PATH
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { startServer } = require(path.join(__dirname, '..', 'e2e', 'lib', 'server'));

const arg = (name, def) => {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const STREAMS = arg('streams', 1000), MAX_TOKENS = arg('max-tokens', 16), ROUNDS = arg('rounds', 2);

const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) / 1024;
};
const pct = (xs, p) => xs.length ? xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN;

function stream(srv, agent, i) {
  const u = new URL(srv.url + '/v1/chat/completions');
  const body = JSON.stringify({
    model: 'default', temperature: 0, max_tokens: MAX_TOKENS, stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: `Count to ten, request ${i}.` }],
  });
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { ...srv.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let buf = '', ttft = null, tokens = 0, done = false;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        if (ttft === null && buf.includes('"content":"') && /"content":"[^"]/.test(buf)) ttft = performance.now() - t0;
      });
      res.on('end', () => {
        done = buf.includes('data: [DONE]');
        const m = /"completion_tokens":(\d+)/.exec(buf);
        if (m) tokens = Number(m[1]);
        resolve({ ok: res.statusCode === 200 && done, status: res.statusCode, ttft, tokens, total: performance.now() - t0 });
      });
      res.on('error', () => resolve({ ok: false, status: 'reset' }));
    });
    req.on('error', (e) => resolve({ ok: false, status: e.code }));
    req.end(body);
  });
}

(async () => {
  const srv = await startServer(['--max-queued', String(Math.max(1024, STREAMS + 64))]);
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  try {
    const rss0 = rssMiB(srv.proc.pid);
    for (let round = 1; round <= ROUNDS; round++) {
      const t0 = performance.now();
      const rs = await Promise.all(Array.from({ length: STREAMS }, (_, i) => stream(srv, agent, i)));
      const secs = (performance.now() - t0) / 1000;
      const errs = rs.filter((r) => !r.ok);
      const ttft = rs.filter((r) => r.ttft !== null).map((r) => r.ttft);
      const tokens = rs.reduce((a, r) => a + (r.tokens || 0), 0);
      const byStatus = {};
      for (const e of errs) byStatus[e.status] = (byStatus[e.status] || 0) + 1;
      await new Promise((r) => setTimeout(r, 500));
      console.log(`round ${round}: ${STREAMS} concurrent SSE streams, max_tokens ${MAX_TOKENS}: ` +
        `${errs.length} errors ${JSON.stringify(byStatus)}, TTFT p50 ${(pct(ttft, 0.5) / 1000).toFixed(2)} s ` +
        `p99 ${(pct(ttft, 0.99) / 1000).toFixed(2)} s, wall ${secs.toFixed(1)} s, ${tokens} tokens ` +
        `(${(tokens / secs).toFixed(1)} tok/s), server RSS ${rss0.toFixed(1)} → ${rssMiB(srv.proc.pid).toFixed(1)} MiB`);
    }
    const m = await srv.metrics();
    console.log(`after: running ${m.realm_running_sequences}, waiting ${m.realm_waiting_sequences}, ` +
      `kv blocks used ${m.realm_kv_blocks_used}, max decode batch ${m.realm_engine_max_decode_batch}`);
  } finally {
    await srv.stop();
  }
})().catch((e) => { console.error(e); process.exit(1); });

// e2e/lib/server.js — start a real `realm serve` for a test and stop it again.
//
// Each server gets its own temporary database with one tenant and one API key
// (made with `realm tenant`), listens on a free port (--port 0; the chosen
// port is read from the "listening on" line on stdout), and is stopped with
// SIGTERM, which must drain and exit 0. Environment: REALM_BIN (default
// build/realm), REALM_MODEL_PATH (default the SmolLM2 Q4_1 in ~/.cache/realm).
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.REALM_BIN || path.join(ROOT, 'build', 'realm');
const MODEL = process.env.REALM_MODEL_PATH ||
  path.join(os.homedir(), '.cache', 'realm', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');

function realm(args) {
  return execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// The WebSocket client: Debian's node-ws lives outside Node's default paths.
function requireWs() {
  try { return require('ws'); } catch { return require('/usr/share/nodejs/ws'); }
}

async function startServer(extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'realm-e2e-'));
  const db = path.join(dir, 'tenants.db');
  realm(['tenant', '--db', db, 'create', 'e2e']);
  const key = realm(['tenant', '--db', db, 'key-create', 'e2e']).trim().split('\n').pop().trim();
  const adminKey = 'rk_admin_e2e_' + Math.random().toString(36).slice(2) + 'xxxxxxxxxxxxxxxx';
  const proc = spawn(BIN, ['serve', '--model', MODEL, '--db', db, '--port', '0', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, REALM_ADMIN_KEY: adminKey },
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start in 120 s:\n' + stderr)), 120000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+) \(model ([^)]+)\)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then(({ code }) => reject(new Error(`server exited (${code}) before listening:\n${stderr}`)));
  });
  const model = /\(model ([^)]+)\)/.exec(url) ? null : null;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  return {
    url, key, adminKey, db, dir, headers, proc, model: model || 'default',
    stderr: () => stderr,
    async post(p, body, h = headers) {
      const r = await fetch(url + p, { method: 'POST', headers: h, body: JSON.stringify(body) });
      return r;
    },
    async metrics() {
      const text = await (await fetch(url + '/metrics')).text();
      const m = {};
      for (const line of text.split('\n')) {
        if (!line || line[0] === '#') continue;
        const i = line.lastIndexOf(' ');
        m[line.slice(0, i)] = Number(line.slice(i + 1));
      }
      return m;
    },
    // SIGTERM: the server drains and must exit 0.
    async stop() {
      const t0 = Date.now();
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 60000);
      const r = await exited;
      clearTimeout(t);
      if (process.env.REALM_E2E_VERBOSE) console.log(`server stopped in ${Date.now() - t0} ms:\n${stderr}`);
      fs.rmSync(dir, { recursive: true, force: true });
      if (r.code !== 0) throw new Error(`server exit ${r.code} ${r.sig}:\n${stderr.slice(-4000)}`);
    },
  };
}

// The events of an SSE body: the parsed JSON of each `data:` line, and
// whether `data: [DONE]` ended it.
function parseSse(text) {
  const events = [];
  let done = false;
  for (const block of text.split('\n\n')) {
    const line = block.trim();
    if (!line) continue;
    if (!line.startsWith('data: ')) throw new Error('not an SSE data line: ' + line);
    const data = line.slice(6);
    if (data === '[DONE]') { done = true; continue; }
    events.push(JSON.parse(data));
  }
  return { events, done };
}

module.exports = { startServer, parseSse, requireWs, BIN, MODEL };

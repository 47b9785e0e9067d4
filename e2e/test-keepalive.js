// e2e/test-keepalive.js — HTTP/1.1 keep-alive over a raw socket, as httpx
// (the openai client) uses it: the next request is sent the moment the last
// response byte is read. Issue 7: a request that reached the server before it
// had completed the previous transaction was parsed by lws against the stale
// header table; the loop thread then spun on BODY_COMPLETION (dispatching the
// same request for ever, never answering, never draining on SIGTERM).
// Pipelined requests may close the connection (the client retries), but the
// server must stay responsive and SIGTERM must still drain and exit 0.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startServer } = require('./lib/server');

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

function request(path, body) {
  const { host } = new URL(srv.url);
  return `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${srv.key}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// One connection; reads whole Content-Length responses. next() resolves with
// {head, body}, or null when the server closed the connection.
function connect() {
  const u = new URL(srv.url);
  const sock = net.connect(Number(u.port), u.hostname);
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0), closed = false, wake = null;
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); if (wake) wake(); });
  sock.on('close', () => { closed = true; if (wake) wake(); });
  sock.on('error', () => {});
  const next = async () => {
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = buf.subarray(0, end).toString();
        const m = /content-length:\s*(\d+)/i.exec(head);
        assert.ok(m, head);
        const n = end + 4 + Number(m[1]);
        if (buf.length >= n) {
          const body = buf.subarray(end + 4, n).toString();
          buf = buf.subarray(n);
          return { head, body };
        }
      }
      if (closed) return null;
      await new Promise((resolve) => { wake = resolve; });
      wake = null;
    }
  };
  return { sock, next, ready: new Promise((resolve) => sock.once('connect', resolve)) };
}

const withTimeout = (p, ms, what) => Promise.race([p, new Promise((_, reject) =>
  setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

test('back-to-back requests on one keep-alive connection are all answered', async () => {
  const c = connect();
  await c.ready;
  const req = request('/tokenize', JSON.stringify({ prompt: 'hello world' }));
  for (let i = 0; i < 200; i++) {
    c.sock.write(req);
    const r = await withTimeout(c.next(), 10000, `request ${i}`);
    assert.ok(r, `the server closed the connection after ${i} responses`);
    assert.match(r.head, /^HTTP\/1\.1 200/);
    assert.equal(JSON.parse(r.body).count > 0, true);
  }
  c.sock.destroy();
});

test('a pipelined request does not wedge the server', async () => {
  const c = connect();
  await c.ready;
  const req = request('/tokenize', JSON.stringify({ prompt: 'hello world' }));
  c.sock.write(req + req);
  // Answered, or closed (RFC 9112 9.3.2: the client retries); never left hanging.
  for (let i = 0; i < 2; i++) {
    const r = await withTimeout(c.next(), 10000, `pipelined request ${i}`);
    if (!r) break;
    assert.match(r.head, /^HTTP\/1\.1 200/);
  }
  c.sock.destroy();
  const r = await withTimeout(srv.post('/tokenize', { prompt: 'still alive' }), 10000, 'a fresh request');
  assert.equal(r.status, 200);
});

// The 413 goes out as soon as the headers are read, with most of the body
// still unread. A server that then closes resets the connection (unread bytes
// turn the close into a reset), and the reset drops the response from the
// client's receive queue if the client has not read it yet: here the client
// reads only after a pause (this file's next test failed about 1 run in 20
// that way, when its read came late).
test('a refused body gets its 413 even when the client reads late', async () => {
  const c = connect();
  await c.ready;
  c.sock.pause();
  // more than the socket buffers hold: the write is still going when the
  // server answers
  c.sock.write(request('/tokenize', JSON.stringify({ prompt: 'x'.repeat(8 << 20) })));
  await new Promise((resolve) => setTimeout(resolve, 500));
  c.sock.resume();
  const r = await withTimeout(c.next(), 10000, 'oversized body, read late');
  assert.ok(r, 'the connection was reset before the response was read');
  assert.match(r.head, /^HTTP\/1\.1 413/);
  c.sock.destroy();
});

test('a response that ends by closing says Connection: close', async () => {
  const c = connect();
  await c.ready;
  const big = 'x'.repeat((1 << 20) + 10);
  c.sock.write(request('/tokenize', JSON.stringify({ prompt: big })));
  const r = await withTimeout(c.next(), 10000, 'oversized body');
  assert.ok(r);
  assert.match(r.head, /^HTTP\/1\.1 413/);
  assert.match(r.head, /connection: close/i);
  c.sock.destroy();
});

// An error sent before the request's body is read (404 here; 405 and the
// draining server's 503 take the same path) says Connection: close, and the
// server reads that body before it closes: parsed, it would be taken for the
// next request; unread at the close, the client's write would be reset and it
// could lose the response. (Kept alive, lws 4.1 loses a next request that
// arrives in one read with the body's end.)
test('a response sent before its request body was read closes after reading it', async () => {
  const c = connect();
  await c.ready;
  let reset = false;
  c.sock.on('error', () => { reset = true; });
  const body = JSON.stringify({ prompt: 'y'.repeat(3000) });
  const req = request('/v1/no-such-endpoint', body);
  const cut = req.indexOf('\r\n\r\n') + 4;
  c.sock.write(req.slice(0, cut)); // the headers alone: the 404 goes out now
  const r1 = await withTimeout(c.next(), 10000, 'refused request');
  assert.ok(r1, 'the server closed the connection before the 404');
  assert.match(r1.head, /^HTTP\/1\.1 404/);
  assert.match(r1.head, /connection: close/i);
  c.sock.write(req.slice(cut) + request('/tokenize', JSON.stringify({ prompt: 'hello world' })));
  const r2 = await withTimeout(c.next(), 10000, 'the close');
  assert.equal(r2, null, 'the server answered on a connection it said it would close');
  assert.equal(reset, false, 'the connection was reset');
});

// Where the body came with the headers, the error is sent after it was read
// and the connection stays open.
test('a refused request whose body came with it keeps the connection', async () => {
  const c = connect();
  await c.ready;
  c.sock.write(request('/v1/no-such-endpoint', JSON.stringify({ prompt: 'y'.repeat(100) })));
  const r1 = await withTimeout(c.next(), 10000, 'refused request');
  assert.ok(r1, 'the server closed the connection before the 404');
  assert.match(r1.head, /^HTTP\/1\.1 404/);
  assert.doesNotMatch(r1.head, /connection: close/i);
  c.sock.write(request('/tokenize', JSON.stringify({ prompt: 'hello world' })));
  const r2 = await withTimeout(c.next(), 10000, 'the request after it');
  assert.ok(r2, 'the server closed the connection');
  assert.match(r2.head, /^HTTP\/1\.1 200/);
  assert.equal(JSON.parse(r2.body).count > 0, true);
  c.sock.destroy();
});

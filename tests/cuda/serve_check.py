#!/usr/bin/env python3
"""tests/cuda/serve_check.py — `realm serve` on a chosen backend, checked from
an OpenAI client: the server actually runs on that backend, and the default
model answers Paris, streamed and not, alone and among concurrent requests.

    serve_check.py --bin build/realm --model SmolLM2.gguf --device cuda
        [--streams 32] [--tokens 64]

bench/cuda/device_run.sh's serve phase runs it on the GPU machine, which has
no Node for e2e/ (whose test-paris.js is the CPU's version of the first two
checks); the standard library only, so it runs on that machine's Python. It
starts the server as e2e/lib/server.js does (its own tenants database, a key
made with `realm tenant`, --port 0) and checks:
  1. the server's log and /metrics name the backend asked for (never a silent
     fallback);
  2. greedy chat completion of "What is the capital of France?" says Paris;
  3. the same request streamed (SSE) gives the same text, ends with [DONE]
     and reports usage;
  4. --streams concurrent greedy requests (the Paris one among varied
     prompts) all succeed and the Paris ones still say Paris; prints the
     aggregate completion tokens/s of the HTTP clients, and notes where the
     Paris texts differ between batches (on the GPU a row's last bits may
     depend on the rows around it: not a failure);
  5. --streams concurrent sampled requests (temperature 0.8, a seed each)
     all succeed; prints their tokens/s, and one of them again alone;
  6. SIGTERM drains and the server exits 0.
Exit status 1 on the first failed check, with what was seen.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SYSTEM = "You are a helpful assistant."
PARIS = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is the capital of France?"}]
OTHERS = [
    "Write a short poem about the sea.",
    "List three colours.",
    "What is 12 times 12?",
    "Tell me a fact about cats.",
    "Name a planet in the solar system.",
    "How do you say hello in Spanish?",
    "Describe a tree in one sentence.",
]


def fail(msg):
    print(f"serve_check: FAIL: {msg}")
    sys.exit(1)


def realm(binary, *args):
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout


class Server:
    def __init__(self, a):
        self.dir = tempfile.mkdtemp(prefix="realm-serve-check-")
        db = os.path.join(self.dir, "tenants.db")
        realm(a.bin, "tenant", "--db", db, "create", "check")
        self.key = realm(a.bin, "tenant", "--db", db, "key-create", "check").strip().split("\n")[-1].strip()
        self.log = open(os.path.join(self.dir, "serve.log"), "w+")
        self.proc = subprocess.Popen(
            [a.bin, "serve", "--model", a.model, "--db", db, "--port", "0", "--device", a.device,
             "--max-running", str(max(a.streams, 1))],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        t0 = time.time()
        self.url = None
        for line in self.proc.stdout:  # the "listening on" line comes once ready
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        if not self.url:
            fail(f"server exited ({self.proc.wait()}) before listening:\n{self.stderr()}")
        self.start_s = time.time() - t0

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def post(self, path, body, stream=False):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json",
                                              "authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(req, timeout=300) as r:
            if r.status != 200:
                fail(f"{path}: HTTP {r.status}")
            raw = r.read().decode()
        return raw if stream else json.loads(raw)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def chat(srv, messages, tokens, temperature=0.0, seed=None):
    body = {"model": "default", "messages": messages, "temperature": temperature, "max_tokens": tokens}
    if seed is not None:
        body["seed"] = seed
    j = srv.post("/v1/chat/completions", body)
    return j["choices"][0]["message"]["content"], j["usage"]["completion_tokens"]


def concurrently(request, n, what):
    """request(i) for i < n, each on its own thread at once; (results, wall
    seconds); fails on any exception, naming the first"""
    results = [None] * n
    def run(i):
        try:
            results[i] = request(i)
        except Exception as e:  # reported below, with the others
            results[i] = e
    t0 = time.time()
    th = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    wall = time.time() - t0
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        fail(f"{len(errors)} of {n} {what} requests failed: {errors[0]!r}")
    return results, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64)
    a = ap.parse_args()
    srv = Server(a)
    try:
        # 1. the backend asked for, named by the server itself
        m = re.search(r"serve: backend (\w+)", srv.stderr())
        if not m or m.group(1) != a.device:
            fail(f"the server did not report backend {a.device}:\n{srv.stderr()}")
        print(f"serve_check: {a.device}: listening after {srv.start_s:.1f} s")
        with urllib.request.urlopen(srv.url + "/metrics", timeout=30) as r:
            metrics = r.read().decode()
        if f'realm_backend_info{{backend="{a.device}"}} 1' not in metrics:
            fail(f"/metrics does not name backend {a.device}")

        # 2. Paris, greedy
        text, n = chat(srv, PARIS, 16)
        print(f"serve_check: {a.device}: Paris request -> {text!r} ({n} tokens)")
        if "Paris" not in text:
            fail(f"no Paris in {text!r}")

        # 3. the same, streamed
        raw = srv.post("/v1/chat/completions", {"model": "default", "messages": PARIS, "temperature": 0,
                                                "max_tokens": 16, "stream": True,
                                                "stream_options": {"include_usage": True}}, stream=True)
        events = [l[6:] for l in raw.split("\n") if l.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            fail(f"the stream does not end with [DONE]: {raw[-200:]!r}")
        chunks = [json.loads(e) for e in events[:-1]]
        streamed = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
        if streamed != text:
            fail(f"streamed {streamed!r} != non-streamed {text!r}")
        if not chunks[-1].get("usage", {}).get("completion_tokens"):
            fail("no usage in the stream's last chunk")

        # 4. concurrent requests: Paris among others
        def greedy(i):
            if i % 4 == 0:
                return chat(srv, PARIS, 16)
            return chat(srv, [{"role": "system", "content": SYSTEM},
                              {"role": "user", "content": OTHERS[i % len(OTHERS)]}], a.tokens)
        results, wall = concurrently(greedy, a.streams, "concurrent")
        paris = {results[i][0] for i in range(0, a.streams, 4)}
        if any("Paris" not in p for p in paris):
            fail(f"a concurrent Paris request said {paris!r}")
        tokens = sum(r[1] for r in results)
        print(f"serve_check: {a.device}: {a.streams} concurrent requests, {tokens} completion tokens in "
              f"{wall:.2f} s: {tokens / wall:.0f} tok/s through HTTP; Paris answers {sorted(paris)!r}")
        if len(paris) != 1:
            print(f"serve_check: {a.device}: note: the Paris answers differ between batches")

        # 5. concurrent sampled requests (temperature 0.8: every pick runs a
        # request's own sampler, several at once on the engine's pick threads)
        def sampled(i):
            return chat(srv, [{"role": "system", "content": SYSTEM},
                              {"role": "user", "content": OTHERS[i % len(OTHERS)]}],
                        a.tokens, temperature=0.8, seed=1000 + i)
        results, wall = concurrently(sampled, a.streams, "sampled")
        if any(not r[0] or r[1] <= 0 for r in results):
            fail("a sampled request came back empty")
        tokens = sum(r[1] for r in results)
        print(f"serve_check: {a.device}: {a.streams} concurrent sampled requests (temperature 0.8), "
              f"{tokens} completion tokens in {wall:.2f} s: {tokens / wall:.0f} tok/s through HTTP")
        # the same seed and prompt again, alone: the same text (a sampler's
        # draws depend on its seed, not on which thread ran them)
        again = chat(srv, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": OTHERS[0]}],
                     a.tokens, temperature=0.8, seed=1000)
        print(f"serve_check: {a.device}: seed 1000 alone -> {again[0][:60]!r}; among {a.streams}: "
              f"{results[0][0][:60]!r}")
    finally:
        rc = srv.stop()
    if rc != 0:
        fail(f"the server exited {rc} after SIGTERM:\n{srv.stderr()[-2000:]}")
    print(f"serve_check: {a.device}: PASS")


if __name__ == "__main__":
    main()

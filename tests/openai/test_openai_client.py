"""Conformance of `realm serve` with the official OpenAI Python client.

Starts a real server (REALM_BIN, default build/realm; REALM_MODEL_PATH, default
the SmolLM2 Q4_1 in ~/.cache/realm) on a free port with a fresh tenant
database, then drives it only through `openai.OpenAI`: chat and legacy
completions, streaming, usage (also stream_options.include_usage), stop
sequences, finish_reason, error classes for bad requests, and a bad key.
Run: python tests/openai/test_openai_client.py  (unittest; exit 0 = pass)
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import openai

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("REALM_BIN", os.path.join(ROOT, "build", "realm"))
MODEL = os.environ.get("REALM_MODEL_PATH",
                       os.path.expanduser("~/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"}]


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="realm-openai-")
        db = os.path.join(self.dir, "t.db")
        subprocess.run([BIN, "tenant", "--db", db, "create", "oai"], check=True, capture_output=True)
        out = subprocess.run([BIN, "tenant", "--db", db, "key-create", "oai"], check=True,
                             capture_output=True, text=True).stdout
        self.key = out.strip().splitlines()[-1].strip()
        self.proc = subprocess.Popen([BIN, "serve", "--model", MODEL, "--db", db, "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            raise RuntimeError("server did not start: %r" % line)
        self.url = m.group(1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class OpenAIClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.client = openai.OpenAI(base_url=cls.srv.url + "/v1", api_key=cls.srv.key, max_retries=0,
                                   timeout=600)

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0, "SIGTERM must drain and exit 0"

    def test_models(self):
        ids = [m.id for m in self.client.models.list()]
        self.assertEqual(len(ids), 1)

    def test_chat(self):
        r = self.client.chat.completions.create(model="default", messages=MESSAGES, temperature=0,
                                                max_tokens=16)
        self.assertIn("Paris", r.choices[0].message.content)
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)

    def test_chat_stream_usage(self):
        chunks = list(self.client.chat.completions.create(
            model="default", messages=MESSAGES, temperature=0, max_tokens=16, stream=True,
            stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertIn("Paris", text)
        self.assertEqual(chunks[-1].choices, [])
        self.assertGreater(chunks[-1].usage.completion_tokens, 0)

    def test_completions_length(self):
        r = self.client.completions.create(model="default", prompt="The capital of France is",
                                           temperature=0, max_tokens=5)
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertEqual(r.usage.completion_tokens, 5)
        self.assertTrue(r.choices[0].text)

    def test_completions_stream(self):
        text = "".join(c.choices[0].text for c in self.client.completions.create(
            model="default", prompt="The capital of France is", temperature=0, max_tokens=5,
            stream=True) if c.choices)
        solo = self.client.completions.create(model="default", prompt="The capital of France is",
                                              temperature=0, max_tokens=5)
        self.assertEqual(text, solo.choices[0].text)

    def test_stop(self):
        full = self.client.chat.completions.create(model="default", messages=MESSAGES, temperature=0,
                                                   max_tokens=16).choices[0].message.content
        word = "Paris"
        r = self.client.chat.completions.create(model="default", messages=MESSAGES, temperature=0,
                                                max_tokens=16, stop=[word])
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertEqual(r.choices[0].message.content, full[:full.index(word)])

    def test_bad_requests(self):
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model="default", messages=MESSAGES, temperature=5)
        self.assertIn("temperature", str(e.exception))
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model="default", messages=MESSAGES, n=2)
        self.assertIn("n=1", str(e.exception))
        with self.assertRaises(openai.BadRequestError):
            self.client.chat.completions.create(model="default", messages=[])
        with self.assertRaises(openai.NotFoundError):
            self.client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    def test_bad_key(self):
        bad = openai.OpenAI(base_url=self.srv.url + "/v1", api_key="rk_nope", max_retries=0)
        with self.assertRaises(openai.AuthenticationError):
            bad.chat.completions.create(model="default", messages=MESSAGES, max_tokens=2)


if __name__ == "__main__":
    unittest.main(verbosity=2)

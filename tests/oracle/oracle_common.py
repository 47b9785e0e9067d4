"""Shared by the oracle tests: where Realm and the default model are, running
`realm`, and collecting failures so a test reports all of them, then exits 1."""
import os
import subprocess
import sys

REALM = os.environ.get("REALM_BIN", "build/realm")
MODEL = os.environ.get("REALM_MODEL_PATH",
                       os.path.expanduser("~/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf"))

failures = []


def check(cond, msg):
    """Record a failed expectation (and print it) without stopping the test."""
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def realm(*args):
    """Run `realm ARGS`; a failure ends the test with realm's stderr."""
    r = subprocess.run([REALM, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"realm {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r.stdout


def finish(name):
    """Exit 1 when anything failed, else print that the test passed."""
    if failures:
        print(f"\n{name}: {len(failures)} failure(s)")
        sys.exit(1)
    print(f"{name}: all passed")

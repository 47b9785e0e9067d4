#!/usr/bin/env python3
"""Golden test for `realm generate` on the default model (SmolLM2-135M-Instruct
Q4_1): the exact token stream at temperature 0, prompt token counts of raw and
chat mode, seeded determinism, and clear errors.

Golden ids, recorded from Realm and cross-checked:
  * GOLDEN_PARIS — chat template with the system message "You are a helpful
    assistant.", user "What is the capital of France?": "The capital of France
    is Paris.<|im_end|>". Identical to what `realm logits --greedy` decodes from
    the forward-oracle prompt (no system turn), whose logits the NumPy oracle
    (test_forward_oracle.py) checks step by step.
  * GOLDEN_DEFAULT — the same question with no --system: SmolLM2's template
    then inserts its default system prompt ("You are a helpful AI assistant
    named SmolLM, trained by Hugging Face"), exactly as HF apply_chat_template
    does, and this 4-bit 135M model answers "L'Étoile, la ..." (not Paris;
    llama.cpp's llama-simple gives the same text on the same prompt). Only the
    first 7 ids are pinned: at the 8th the top two logits are so close that
    correct kernels differing only in f32 summation order pick differently
    (the scalar reference and llama.cpp continue "Marseillaise", the AVX2
    kernels "Cité"). A regression guard for template + tokenizer + forward.
Prompt token counts: raw "What is the capital of France?" is 7 tokens (no BOS:
SmolLM2 sets add_bos false); the chat renderings are 27 and 37 tokens (the
16-token user/assistant part is the forward oracle's list).

Env: REALM_BIN, REALM_MODEL_PATH. Exits non-zero on any failure; skips when
the model is absent.
"""
import os
import re
import subprocess
import sys

REALM = os.environ.get("REALM_BIN", "build/realm")
MODEL = os.environ.get("REALM_MODEL_PATH",
                       os.path.expanduser("~/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
QUESTION = "What is the capital of France?"
SYSTEM = "You are a helpful assistant."
GOLDEN_PARIS = [504, 3575, 282, 4649, 314, 7042, 30, 2]
GOLDEN_DEFAULT = [60, 23, 39614, 1141, 552, 28, 2618]  # "L'Étoile, la"
N = 16

failures = []


def check(cond, msg):
    print(("ok    " if cond else "FAIL  ") + msg)
    if not cond:
        failures.append(msg)


def generate(*args):
    r = subprocess.run([REALM, "generate", MODEL, *args], capture_output=True, timeout=900)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def parse(stderr):
    m = re.search(r"^prompt_tokens: (\d+)$", stderr, re.M)
    ids = re.search(r"^ids: ([\d,]*)$", stderr, re.M)
    n_prompt = int(m.group(1)) if m else -1
    return n_prompt, [int(x) for x in ids.group(1).split(",") if x] if ids else None


def main():
    if not os.path.exists(MODEL):
        print(f"SKIP: {MODEL} not found")
        return
    rc, out, err = generate("--chat", "--system", SYSTEM, "-p", QUESTION, "--temp", "0",
                            "-n", str(N), "--show-ids")
    n_prompt, ids = parse(err)
    check(rc == 0, f"chat with system: exit 0 (got {rc}) {err.strip()[-300:]}")
    check("Paris" in out, f"chat with system: answer contains Paris: {out.strip()!r}")
    check(ids == GOLDEN_PARIS, f"chat with system: ids {ids} == golden {GOLDEN_PARIS}")
    check(n_prompt == 27, f"chat with system: 27 prompt tokens (got {n_prompt})")
    check(re.search(r"stop: EOT|stop: EOS", err) is not None, "chat with system: stops at <|im_end|>")
    check(re.search(r"prompt \d+ tokens in [\d.]+ s \([\d.]+ tok/s\); generated \d+ tokens, \d+ "
                    r"decode steps in [\d.]+ s \([\d.]+ tok/s\); time to first token [\d.]+ s",
                    err) is not None, "timing line on stderr")

    # A stop string ends generation before it; the text before it is kept.
    rc, out, err = generate("--chat", "--system", SYSTEM, "-p", QUESTION, "--temp", "0",
                            "-n", str(N), "--stop", " Paris", "--stop", "never-seen")
    check(rc == 0 and out.rstrip("\n") == "The capital of France is" and "stop: stop string" in err,
          f"--stop ' Paris': text cut before it ({out!r})")

    rc, out, err = generate("--chat", "-p", QUESTION, "--temp", "0", "-n", str(N), "--show-ids",
                            "--chunk", "5")
    n_prompt, ids = parse(err)
    check(rc == 0, f"chat, default system prompt: exit 0 (got {rc})")
    check(ids is not None and ids[:len(GOLDEN_DEFAULT)] == GOLDEN_DEFAULT,
          f"chat, default system prompt (prefill in chunks of 5): ids {ids} start with {GOLDEN_DEFAULT}")
    check(n_prompt == 37, f"chat, default system prompt: 37 prompt tokens (got {n_prompt})")
    check(out.startswith("L'Étoile, la"), f"chat, default: text {out.strip()!r}")

    rc, out, err = generate("-p", QUESTION, "-n", "0", "--show-ids")
    n_prompt, ids = parse(err)
    check(rc == 0 and n_prompt == 7 and ids == [], f"raw: 7 prompt tokens, -n 0 generates none ({n_prompt}, {ids})")
    # Raw mode keeps control-token text as text; chat mode parses it.
    rc, out, err = generate("-p", "<|im_start|>", "-n", "0", "--show-ids")
    check(rc == 0 and parse(err)[0] > 1, f"raw: '<|im_start|>' is several tokens (got {parse(err)[0]})")

    runs = [generate("-p", "Once upon a time", "--temp", "0.8", "--seed", "7", "-n", "8",
                     "--show-ids") for _ in range(2)]
    ids0, ids1 = parse(runs[0][2])[1], parse(runs[1][2])[1]
    check(runs[0][0] == 0 and ids0 is not None and len(ids0) > 0,
          f"--temp 0.8 --seed 7: generates ({ids0})")
    check(ids0 == ids1 and runs[0][1] == runs[1][1],
          f"--temp 0.8 --seed 7 twice: identical ({ids0} vs {ids1})")

    rc, out, err = generate("--chat", "-p", QUESTION, "--max-ctx", "20")
    check(rc == 1 and "prompt has 37 tokens" in err and "--max-ctx" in err,
          f"too-long prompt: clear error ({rc}, {err.strip()!r})")
    r = subprocess.run([REALM, "generate", "/nonexistent/model.gguf", "-p", "hi"],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "/nonexistent/model.gguf" in r.stderr,
          f"missing model: clear error ({r.returncode}, {r.stderr.strip()!r})")
    r = subprocess.run([REALM, "generate", MODEL], capture_output=True, text=True)
    check(r.returncode == 2 and "--prompt" in r.stderr, "no prompt: usage error")
    r = subprocess.run([REALM, "generate", MODEL, "-p", "x", "--top-p", "0"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "top_p" in r.stderr, f"--top-p 0: rejected ({r.stderr.strip()!r})")

    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("generate golden: all passed")


if __name__ == "__main__":
    main()

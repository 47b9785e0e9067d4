#!/usr/bin/env python3
"""Oracle test for tokenizer/chat_template: Realm's Jinja subset against the real
`jinja2`, configured the way Hugging Face transformers' apply_chat_template
configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, the
loopcontrols extension, raise_exception, tojson without HTML escaping,
strftime_now; bos_token/eos_token from the special-tokens map, tools and
documents passed as None).

Every template under tests/data/chat_templates/ (see its README) and the
default model's own template (read by `realm template MODEL.gguf`) renders a
set of conversations, with and without the generation prompt. Realm's output
(`realm template ... --messages - --prompt-only`, one process per render) must
be byte-identical to Jinja2's; where Jinja2 raises (a template rejecting a
system role or broken alternation), Realm must fail too and print the
template's message.

Env: REALM_BIN (the realm executable), REALM_MODEL_PATH (the default model).
Prints a table template x case and exits non-zero on any mismatch.
"""
import json
import os
import subprocess
import sys
from datetime import datetime

import jinja2
from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

REALM = os.environ.get("REALM_BIN", "build/realm")
MODEL = os.environ.get(
    "REALM_MODEL_PATH",
    os.path.expanduser("~/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "..", "data", "chat_templates")

# bos/eos token strings of each fixture's model (its special_tokens_map);
# None: the model defines none, so the template sees it undefined.
TOKENS = {
    "smollm2-135m-instruct": ("<|im_start|>", "<|im_end|>"),
    "qwen2-7b-instruct": (None, "<|im_end|>"),
    "qwen2.5-7b-instruct": (None, "<|im_end|>"),
    "llama3-8b-instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3.1-8b-instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama2-7b-chat": ("<s>", "</s>"),
    "mixtral-8x7b-instruct-v0.1": ("<s>", "</s>"),
    "mistral-7b-instruct-v0.2": ("<s>", "</s>"),
    "gemma-2b-it": ("<bos>", "<eos>"),
    "gemma-3-4b-it": ("<bos>", "<eos>"),
    "zephyr-7b-beta": ("<s>", "</s>"),
    "phi-3-mini-4k-instruct": ("<s>", "<|endoftext|>"),
}

# The family `realm template` must report for each fixture.
FAMILY = {
    "smollm2-135m-instruct": "chatml", "qwen2-7b-instruct": "chatml",
    "qwen2.5-7b-instruct": "chatml", "llama3-8b-instruct": "llama3",
    "llama3.1-8b-instruct": "llama3", "llama2-7b-chat": "llama2",
    "mixtral-8x7b-instruct-v0.1": "mistral", "mistral-7b-instruct-v0.2": "mistral",
    "gemma-2b-it": "gemma", "gemma-3-4b-it": "gemma", "zephyr-7b-beta": "zephyr",
    "phi-3-mini-4k-instruct": "phi3",
}

TRICKY = ("  Line one\nline two\r\n\ttabbed {{ x }} {% if %} {# c #} "
          "\"double\" 'single' \\backslash {braces} [INST] <|im_end|>\n"
          "unicode: héllo wörld — ñ 日本語 Привет مرحبا 🎉👩‍👩‍👧\u00a0nbsp  \n\n")

CASES = {
    "sys+user": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "user": [{"role": "user", "content": "Hello!"}],
    "multi": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "sys+multi": [
        {"role": "system", "content": "Be kind.\nAlways."},
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": " Two "},
        {"role": "user", "content": "Three"},
    ],
    "tricky": [
        {"role": "user", "content": TRICKY},
        {"role": "assistant", "content": "{{ '}}' }} %} " + TRICKY},
        {"role": "user", "content": "{% endfor %}{{ raise_exception('no') }}"},
    ],
    "bad-roles": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ],
}


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' own tojson: json.dumps without Jinja's HTML escaping.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def jinja_render(env, source, bos, eos, messages, gen):
    """(text, None) or (None, error message) as transformers would give."""
    kwargs = {"messages": messages, "tools": None, "documents": None,
              "add_generation_prompt": gen}
    if bos is not None:
        kwargs["bos_token"] = bos
    if eos is not None:
        kwargs["eos_token"] = eos
    try:
        return env.from_string(source).render(**kwargs), None
    except TemplateError as e:
        return None, str(e)


def realm_render(target, bos, eos, messages, gen):
    cmd = [REALM, "template"] + target
    from_model = target[0] != "--template-file"  # bos/eos then come from the GGUF
    if bos is not None and not from_model:
        cmd += ["--bos", bos]
    if eos is not None and not from_model:
        cmd += ["--eos", eos]
    cmd += ["--messages", "-", "--prompt-only"]
    if not gen:
        cmd.append("--no-generation-prompt")
    p = subprocess.run(cmd, input=json.dumps(messages).encode(), capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def check(name, source, target, bos, eos, env, failures):
    row = []
    for case, messages in CASES.items():
        marks = []
        for gen in (True, False):
            want, raised = jinja_render(env, source, bos, eos, messages, gen)
            rc, out, err = realm_render(target, bos, eos, messages, gen)
            label = f"{name} / {case} / gen={gen}"
            if raised is not None:
                if rc == 0:
                    failures.append(f"{label}: jinja2 raised {raised!r}, realm rendered {out!r}")
                    marks.append("FAIL")
                elif raised not in err:
                    failures.append(f"{label}: jinja2 raised {raised!r}, realm said {err.strip()!r}")
                    marks.append("FAIL")
                else:
                    marks.append("raise")
            elif rc != 0:
                failures.append(f"{label}: realm failed: {err.strip()}")
                marks.append("FAIL")
            elif out != want.encode():
                failures.append(f"{label}: output differs\n  jinja2: {want!r}\n  realm:  "
                                f"{out.decode(errors='replace')!r}")
                marks.append("FAIL")
            else:
                marks.append("ok")
        row.append(marks[0] if marks[0] == marks[1] else "/".join(marks))
    return row


def check_info(name, target, failures):
    """`realm template` without messages: the family, and that the model's own
    template (not a built-in fallback) renders."""
    p = subprocess.run([REALM, "template"] + target, capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    want = FAMILY.get(name)
    if p.returncode != 0 or (want and f"family: {want} " not in out) or \
            "the model's own" not in out:
        failures.append(f"{name}: expected family {want} and the model's own template, got "
                        f"rc={p.returncode}: {out.strip()!r} {p.stderr.decode()!r}")
        return "FAIL"
    return out.split("family: ", 1)[1].split(" ", 1)[0]


def main():
    env = make_env()
    failures = []
    rows = []
    names = sorted(f[:-6] for f in os.listdir(TEMPLATES) if f.endswith(".jinja"))
    missing = set(TOKENS) - set(names)
    if missing:
        failures.append(f"fixtures missing: {sorted(missing)}")
    for name in names:
        path = os.path.join(TEMPLATES, name + ".jinja")
        with open(path, encoding="utf-8") as f:
            source = f.read()
        bos, eos = TOKENS.get(name, (None, None))
        family = check_info(name, ["--template-file", path], failures)
        rows.append((f"{name} [{family}]", check(name, source, ["--template-file", path], bos, eos, env,
                                 failures)))
    # The default model: its template and bos/eos come from the GGUF.
    import gguf  # only here: the fixtures need nothing but jinja2
    r = gguf.GGUFReader(MODEL)

    def field_str(key):
        f = r.fields[key]
        return bytes(f.parts[f.data[0]]).decode()

    toks = r.fields["tokenizer.ggml.tokens"]

    def token(key):
        f = r.fields[key]
        i = int(f.parts[f.data[0]][0])
        return bytes(toks.parts[toks.data[i]]).decode()

    src = field_str("tokenizer.chat_template")
    family = check_info("smollm2-135m-instruct", [MODEL], failures)
    rows.append((f"default model GGUF [{family}]",
                 check("default model", src, [MODEL], token("tokenizer.ggml.bos_token_id"),
                       token("tokenizer.ggml.eos_token_id"), env, failures)))

    width = max(len(n) for n, _ in rows)
    print(f"{'template':<{width}}  " + "  ".join(f"{c:<10}" for c in CASES))
    for name, row in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{m:<10}" for m in row))
    print(f"(each cell: with and without the generation prompt; 'raise' = both "
          f"refused the conversation with the same message; jinja2 {jinja2.__version__})")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

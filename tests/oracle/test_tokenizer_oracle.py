#!/usr/bin/env python3
"""Oracle test for tokenizer/: Realm's token ids against implementations we did
not write, on a corpus of hard strings plus seeded random ones.

1. Byte-level BPE, the default model (SmolLM2, pre = smollm): the oracle is HF
   `tokenizers` (Rust) given the GGUF's vocabulary and merges (read with the
   PyPI `gguf` package) and SmolLM2's own pre-tokenizer from its
   tokenizer.json — Sequence[Digits(individual_digits), ByteLevel(gpt-2
   regex)] — with the control tokens as special added tokens. (transformers'
   GGUF loader is not used: it needs torch, and it gives "smollm" files the
   plain GPT-2 split, without SmolLM2's digit splitting.) Raw text is compared
   with special-token parsing off on both sides (`encode_special_tokens`), and
   a chat-shaped subset with it on.
2. SentencePiece: the `sentencepiece` library trains a small BPE model here
   (identity normalizer, dummy prefix, whitespace-only pieces; one with byte
   fallback, one without), the model is written as a GGUF with llama-style
   metadata by gguf-py's writer, and Realm must give the ids the library's own
   encoder gives. (sentencepiece's test/test_model.model is a unigram model,
   which GGUF "llama" vocabularies never are, so it is not used.)

Every text whose ids match must also decode back to exactly itself.
Env: REALM_BIN (the realm executable), REALM_MODEL_PATH (the default model).
Exits non-zero on any mismatch.
"""
import io
import os
import random
import subprocess
import sys
import tempfile

import gguf
import sentencepiece as spm
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

REALM = os.environ.get("REALM_BIN", "build/realm")
MODEL = os.environ.get(
    "REALM_MODEL_PATH",
    os.path.expanduser("~/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf"))

HARD = [
    "", " ", "  ", "   ", "\t", "\t\t", " \t ", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r",
    "a\r\nb", "hello world", "Hello World", " hello", "  hello", "hello ", "hello  ", "hello\n",
    "a  b   c    d", "a\tb\t\tc", "line1\nline2\n\nline4", "  \n  \n", " \n", "\n ", "x \n y",
    "0", "12", "123", "1234", "12345", "3.14159", "1,000,000", "-42", "+1e-10", "2024-06-01",
    "31415926535897932384626433832795028841971693993751", "v1.2.3", "0x1F", "1st 2nd 3rd",
    "I'm", "I'M", "you're YOU'RE", "we've WE'VE", "he'll HE'LL", "she'd SHE'D", "it's IT'S",
    "don't DON'T", "'s 't 're 've 'm 'll 'd", "''", "'", "rock 'n' roll", "O'Neil's",
    "café", "naïve", "résumé", "Ångström", "e\u0301", "n\u0303o", "a\u0308\u0304", "\u0301",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319", "ﬁ ﬂ", "ｆｕｌｌｗｉｄｔｈ",
    "東京", "日本語のテキスト", "你好，世界！", "中文 English 混合", "한국어 텍스트", "ภาษาไทย",
    "Привет, мир!", "ПРИВЕТ", "Ёлка", "Україна", "مرحبا بالعالم", "שלום עולם", "हिन्दी",
    "😀", "😀😀😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇩🇪", "❤️", "a😀b", " 😀 ", "\u200d", "\ufeff",
    "def f(x):\n    return x ** 2\n", "    if (a) {\n        b();\n    }\n",
    "\tint main(void)\n\t{\n\t\treturn 0;\n\t}\n", "x = [1, 2, 3]  # list",
    "<div class=\"a\">text</div>", "SELECT * FROM t WHERE id = 1;", "a->b && c || !d",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>",
    "<|im_start", "im_start|>", "< |im_end| >", "<|IM_START|>", "<<|im_end|>>", "<s>", "</s>",
    "<unk>", "<0x41>", "[INST]", "<file_sep><filename>", "<|endoftext|><|endoftext|>",
    "a" * 300, "ab" * 200, "9" * 120, " " * 50, "\n" * 30, "supercalifragilisticexpialidocious",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3, "🙂" * 40, "東" * 100,
    "\u00a0", "a\u00a0b", "\u2003x", "\u3000", "a\u3000b", "\u0085", "a\u2028b", "\u000b\u000c",
    "\x00", "a\x00b", "\x01\x02\x1f\x7f", "\u00ad", "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./",
    "...", "!!!", "???", "---", "___", "a.b.c", "e.g. i.e. etc.", "http://x.y/z?a=1&b=2",
    "MiXeD CaSe WoRdS", "ǅungla", "ß ẞ", "İstanbul ıi", "ſ'S", "K'S",
]

POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
        [" "] * 8 + ["\t", "\n", "\n", "\r\n", "\r", "'", "'s", "'LL", "\"", ".", ",", "!", "?",
                     "-", "_", "(", ")", "{", "}", "<", ">", "|", "/", "\\", "#", "$", "%"] +
        list("éèàüöäçñßøåœ") + ["e\u0301", "\u0308"] + list("東京日本語中文字한국") +
        list("пРивЕтмир") + list("مرحبا") + ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "\u200d"] +
        ["\u00a0", "\u3000", "\u2009", "\x00", "½", "²", "٣", "Ⅻ"] +
        ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "<0x0A>"])


def random_texts(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.choice([1, 2, 3, 5, 8, 13, 21, 40])
        out.append("".join(rng.choice(POOL) for _ in range(k)))
    return out


def realm_batch(model, texts, special=False, add_special=False):
    args = [REALM, "tokenize", model, "--batch"]
    if special:
        args.append("--special")
    if not add_special:
        args.append("--no-bos")
    inp = "".join(t.encode("utf-8").hex() + "\n" for t in texts)
    r = subprocess.run(args, input=inp.encode(), capture_output=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"realm tokenize --batch failed ({r.returncode}): {r.stderr.decode()[:2000]}")
    lines = r.stdout.decode().split("\n")
    if len(lines) != len(texts) + 1 or lines[-1] != "":
        sys.exit(f"realm tokenize --batch: {len(lines) - 1} lines for {len(texts)} texts")
    res = []
    for line in lines[:-1]:
        if line.startswith("ERR"):
            res.append((None, line))
            continue
        ids_s, _, dec = line.partition("\t")
        ids = [int(x) for x in ids_s.split()] if ids_s else []
        res.append((ids, bytes.fromhex(dec)))
    return res


class Check:
    def __init__(self, name):
        self.name, self.n, self.bad = name, 0, []

    def compare(self, text, want, got, decoded, roundtrip=True):
        self.n += 1
        if got != want:
            self.bad.append(f"{text!r}: oracle {want} realm {got}")
        elif roundtrip and decoded != text.encode("utf-8"):
            self.bad.append(f"{text!r}: decodes to {decoded!r}")

    def report(self):
        print(f"{self.name}: {self.n} strings, {len(self.bad)} mismatches")
        for b in self.bad[:15]:
            print("   ", b[:300])
        return not self.bad


def gguf_str_array(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def bpe_oracle(path):
    r = gguf.GGUFReader(path)
    tokens = gguf_str_array(r, "tokenizer.ggml.tokens")
    merges = gguf_str_array(r, "tokenizer.ggml.merges")
    f = r.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    pre = bytes(r.fields["tokenizer.ggml.pre"].parts[-1]).decode()
    assert pre == "smollm", f"default model pre-tokenizer is {pre!r}; the oracle encodes smollm's"
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                              merges=[tuple(m.split(" ", 1)) for m in merges]))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(tokens, types) if ty == 3])
    return tk


def test_bpe(texts):
    tk = bpe_oracle(MODEL)
    ok = True
    for special in (False, True):
        tk.encode_special_tokens = not special
        chk = Check(f"BPE smollm ({'special tokens parsed' if special else 'raw text'})")
        sub = texts if not special else [t for t in texts if "<" in t] + [
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?"
            "<|im_end|>\n<|im_start|>assistant\n"]
        got = realm_batch(MODEL, sub, special=special)
        for t, (ids, dec) in zip(sub, got):
            want = tk.encode(t, add_special_tokens=False).ids
            chk.compare(t, want, ids, dec)
        ok = chk.report() and ok
    return ok


def train_spm(byte_fallback, seed):
    rng = random.Random(seed)
    words = ("the of and to in is was he for it with as his on be at by had are but from or "
             "have an they which one you were her all she there would their we him been has "
             "when who will more no if out so said what up its about into than them can only "
             "other new some could time these two may then do first any my now such like our "
             "über café naïve größe привет мир дела хорошо 東京 日本 1234 56 789 0 "
             "I'm don't it's we'll they've").split()
    lines = []
    for _ in range(4000):
        sep = rng.choice([" ", " ", " ", "  ", "\t", ", ", ". "])
        lines.append(sep.join(rng.choice(words) for _ in range(rng.randint(3, 14))))
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf, model_type="bpe", vocab_size=600 if byte_fallback else 340,
        byte_fallback=byte_fallback, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
        allow_whitespace_only_pieces=True, character_coverage=0.995, num_threads=1,
        minloglevel=2, bos_id=1, eos_id=2, unk_id=0)
    return buf.getvalue()


def spm_to_gguf(sp, path):
    def piece_type(i):  # GGUF's numbering: normal 1, unknown 2, control 3, unused 5, byte 6
        if sp.is_unknown(i):
            return 2
        if sp.is_control(i):
            return 3
        if sp.is_unused(i):
            return 5
        if sp.is_byte(i):
            return 6
        return 1

    n = sp.get_piece_size()
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list([sp.id_to_piece(i) for i in range(n)])
    w.add_token_scores([sp.get_score(i) for i in range(n)])
    w.add_token_types([piece_type(i) for i in range(n)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_spm(texts, tmp):
    ok = True
    for byte_fallback in (True, False):
        proto = train_spm(byte_fallback, seed=7)
        sp = spm.SentencePieceProcessor(model_proto=proto)
        path = os.path.join(tmp, f"spm_bf{int(byte_fallback)}.gguf")
        spm_to_gguf(sp, path)
        name = f"SPM BPE ({'byte fallback' if byte_fallback else 'no byte fallback: unk'})"
        chk = Check(name)
        got = realm_batch(path, texts)
        for t, (ids, dec) in zip(texts, got):
            want = sp.encode(t)
            # Without byte fallback, text outside the vocabulary becomes <unk>:
            # no round trip to demand there.
            chk.compare(t, want, ids, dec, roundtrip=byte_fallback or 0 not in want)
        ok = chk.report() and ok
        if byte_fallback:
            chk = Check("SPM BPE with bos (add_special)")
            sub = ["", "hello", " hi there"]
            got = realm_batch(path, sub, add_special=True)
            for t, (ids, dec) in zip(sub, got):
                chk.compare(t, sp.encode(t, add_bos=True), ids, dec)
            ok = chk.report() and ok
    return ok


def main():
    texts = HARD + random_texts(2000, seed=1234)
    ok = test_bpe(texts)
    with tempfile.TemporaryDirectory() as tmp:
        ok = test_spm(texts, tmp) and ok
    if not ok:
        sys.exit("tokenizer oracle: FAILED")
    print("tokenizer oracle: all ids and round trips match")


if __name__ == "__main__":
    main()

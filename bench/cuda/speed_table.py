#!/usr/bin/env python3
"""bench/cuda/speed_table.py — the speed table of issue 8 from the output of
`device_run.sh all` (or `speed`): per model, batch-1 decode with its share of
the bandwidth roofline (copy bandwidth BW_GBs over the weight bytes a decode
step reads: device_run.sh's "model bytes", the file's tensors less an untied
token_embd), 512-row prefill and aggregate decode at 1/8/32/64 streams, beside
llama-bench (pp512, tg128) and llama-batched-bench (S_TG at npp 16, ntg 64)
from the same run, with ratios; then the separate 64-stream runs.
    usage: device_run.sh all > all.log 2>&1; speed_table.py all.log
"""
import re
import sys

STREAMS = (1, 8, 32, 64)


def model_name(path):
    """llama-3-8b-q4_k_m.gguf -> 8B Q4_K_M"""
    base = path.rsplit("/", 1)[-1].removesuffix(".gguf")
    m = re.match(r".*-(\d+(?:\.\d+)?)b-(.+)$", base)
    return f"{m.group(1)}B {m.group(2).upper()}" if m else base


def parse(lines):
    bw, models, order = None, {}, []
    llama_blocks = []  # one per llama-bench table, in the models' order
    cur = None  # the llama-bench block being read
    for ln in lines:
        if m := re.match(r"BW_GBs=(\d+)", ln):
            bw = float(m.group(1))
        elif m := re.match(r"model bytes (\d+) (\S+)", ln):
            order.append(m.group(2))
            models[m.group(2)] = {"bytes": int(m.group(1))}
        elif ln.startswith("BENCH model="):
            kv = dict(re.findall(r"(\w+)=(\S+)", ln))
            rec = models.setdefault(kv["model"], {})
            if "decode1_tok_s" in kv:
                rec.update({k: float(v) for k, v in kv.items() if k.endswith("_tok_s")})
            elif "agg64_tok_s" in kv:
                rec["sep64"] = float(kv["agg64_tok_s"])
        elif re.match(r"\|.*\|\s*(pp512|tg128)\s*\|", ln):  # a llama-bench row
            cells = [c.strip() for c in ln.strip().strip("|").split("|")]
            if cur is None or cur.get("_done"):
                cur = {}
                llama_blocks.append(cur)
            val = cells[-1].split("±")
            cur[cells[-2]] = (float(val[0]), val[1].strip() if len(val) > 1 else None)
        elif re.match(r"\|\s*16\s*\|\s*64\s*\|", ln) and cur is not None:
            cells = [c.strip() for c in ln.strip().strip("|").split("|")]
            cur.setdefault("tg", {})[int(cells[2])] = float(cells[7])  # B, S_TG
            cur["_done"] = True
    return bw, models, order, llama_blocks


def fmt(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


def table(bw, models, order, llama_blocks):
    out = ["| model | metric | Realm | llama.cpp | ratio |", "|---|---|---:|---:|---:|"]
    for i, path in enumerate(order):
        r, ll = models[path], llama_blocks[i] if i < len(llama_blocks) else {}
        name = model_name(path)
        d1 = r.get("decode1_tok_s")
        if d1 is None:
            out.append(f"| {name} | (no BENCH line) | | | |")
            continue
        roof = bw * 1e9 / r["bytes"] if bw and r.get("bytes") else None
        share = f" ({100 * d1 / roof:.0f}% of {roof:.0f})" if roof else ""
        tg, pp = ll.get("tg128"), ll.get("pp512")
        out.append(f"| {name} | decode1 (tg128) | {d1:.1f}{share} | "
                   f"{tg[0]:.1f} | {ratio(d1, tg[0])} |" if tg else
                   f"| {name} | decode1 (tg128) | {d1:.1f}{share} | — | — |")
        p512 = r.get("prefill512_tok_s")
        if p512:
            lp = f"{pp[0]:.0f}" + (f" ± {float(pp[1]):.0f}" if pp and pp[1] else "") if pp else "—"
            out.append(f"| {name} | prefill512 | {p512:.0f} | {lp} | "
                       f"{ratio(p512, pp[0]) if pp else '—'} |")
        agg = [r.get(f"agg{s}_tok_s") for s in STREAMS]
        lagg = [ll.get("tg", {}).get(s) for s in STREAMS]
        rs = "—" if not any(lagg) else \
            "/".join(ratio(a, b).rstrip("×") for a, b in zip(agg, lagg)) + "×"
        out.append(f"| {name} | agg {'/'.join(map(str, STREAMS))} | "
                   + "/".join(fmt(a) if a else "—" for a in agg) + " | "
                   + ("/".join(fmt(a) if a else "—" for a in lagg) if any(lagg) else "—")
                   + f" | {rs} |")
    seps = [(model_name(p), models[p]["sep64"], llama_blocks[i].get("tg", {}).get(64)
             if i < len(llama_blocks) else None)
            for i, p in enumerate(order) if "sep64" in models[p]]
    if seps:
        out.append("")
        out.append("Separate 64-stream runs: " + "; ".join(
            f"{n} {v:.0f} tok/s ({ratio(v, l)})" for n, v, l in seps))
    if bw:
        out.append(f"Roofline: the weight bytes a decode step reads at the measured copy "
                   f"bandwidth, {bw:.0f} GB/s.")
    return "\n".join(out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
            bw, models, order, llama_blocks = parse(f.read().splitlines())
    except OSError as e:
        sys.exit(f"{sys.argv[1]}: {e.strerror}")
    if not order:
        sys.exit(f"{sys.argv[1]}: no 'model bytes' lines (not a device_run.sh all/speed log?)")
    print(table(bw, models, order, llama_blocks))


if __name__ == "__main__":
    main()

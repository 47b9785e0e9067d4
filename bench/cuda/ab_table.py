#!/usr/bin/env python3
"""bench/cuda/ab_table.py — the A/B of a `device_run.sh ab` run, summed up:
per model, each variant's decode1 runs (rotating order) with their median
and its ratio to old's median, then each variant's single prefill and
aggregate-decode figures as ratios to old's. Only a within-call comparison
means anything (machines differ by a few percent from call to call).
    usage: device_run.sh ab > ab.log 2>&1; ab_table.py ab.log
"""
import re
import statistics
import sys

HEAD = re.compile(r"A/B (\S+): (decode1 x3|prefill and aggregate decode) per variant")
VALUE = re.compile(r"(\w+)_tok_s=([0-9.]+)")


def parse(lines):
    """{model: {"decode": {variant: [tok/s]}, "other": {variant: {metric: tok/s}}}}, order"""
    res, order, model, part = {}, [], None, None
    for ln in lines:
        if m := HEAD.match(ln):
            model, part = m.group(1), "decode" if m.group(2).startswith("decode") else "other"
            if model not in res:
                res[model] = {"decode": {}, "other": {}}
                order.append(model)
            continue
        if model is None or not ln.strip() or ln.startswith(("A/B", "==", "cuda ", "total")):
            if ln.startswith(("==", "total")):
                model = None
            continue
        variant, _, rest = ln.partition(" ")
        vals = VALUE.findall(rest)
        if not vals:
            continue
        if part == "decode":
            res[model]["decode"].setdefault(variant, []).extend(
                float(v) for k, v in vals if k == "decode1")
        else:
            res[model]["other"].setdefault(variant, {}).update({k: float(v) for k, v in vals})
    return res, order


def ordered(d):
    """old, new, then the variants of $AB_ENVS as they first came"""
    return sorted(d.items(), key=lambda kv: {"old": 0, "new": 1}.get(kv[0], 2))


def table(res, order):
    out = []
    for model in order:
        dec, oth = res[model]["decode"], res[model]["other"]
        out.append(f"{model}")
        if dec:
            base = statistics.median(dec["old"]) if dec.get("old") else None
            out.append("| variant | decode1 tok/s | median | vs old |")
            out.append("|---|---|---:|---:|")
            for v, xs in ordered(dec):
                med = statistics.median(xs)
                rel = f"{100 * (med / base - 1):+.1f}%" if base and v != "old" else "—"
                out.append(f"| {v} | {'/'.join(f'{x:.1f}' for x in xs)} | {med:.1f} | {rel} |")
        if oth:
            metrics = sorted({k for d in oth.values() for k in d},
                             key=lambda k: (not k.startswith("prefill"), int(re.sub(r"\D", "", k) or 0)))
            old = oth.get("old", {})
            out.append("| variant | " + " | ".join(metrics) + " |")
            out.append("|---|" + "---:|" * len(metrics))
            for v, d in ordered(oth):
                cells = []
                for k in metrics:
                    x = d.get(k)
                    if x is None:
                        cells.append("—")
                    elif v == "old" or not old.get(k):
                        cells.append(f"{x:.0f}")
                    else:
                        cells.append(f"{x:.0f} ({100 * (x / old[k] - 1):+.1f}%)")
                out.append(f"| {v} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
            res, order = parse(f.read().splitlines())
    except OSError as e:
        sys.exit(f"{sys.argv[1]}: {e.strerror}")
    if not order:
        sys.exit(f"{sys.argv[1]}: no 'A/B <model>: ...' sections (not a device_run.sh ab log?)")
    print(table(res, order))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Oracle test for quant/: Realm's quantizers and dequantizers against the
PyPI `gguf` package (NumPy), an implementation we did not write.

For every type Realm implements:
  1. Dequantization, bit-exact: a GGUF of random *block bytes* (every scale
     and bit pattern, written by gguf-py) and a GGUF of Realm-quantized data
     are dequantized by Realm (`realm quantize X F32`) and by gguf-py; the
     float32 bit patterns must be identical (NaN matches NaN).
  2. Round trip: data with realistic ranges plus hard cases (all-zero blocks,
     single outliers, negative-only blocks, tiny and huge values) is quantized
     by Realm (`realm quantize IN TYPE`) and the error is bounded per type;
     the normalized RMSE table is printed.
  3. F16/BF16 conversion of special values (subnormals, infinities, NaN, -0)
     equals NumPy's float16 cast / gguf-py's bf16 rounding bit for bit.

gguf-py has no dequantizer for Q8_1 and Q8_K (activation formats); those are
decoded here with a few lines of NumPy written from the format description.
gguf-py's size table gives Q8_1 40 bytes (a historical layout); GGML's real
block is 36 bytes (two halves + 32 int8), which Realm writes, so the table
is corrected in this process before reading.

Env: REALM_BIN (the realm executable). Exits non-zero on any failure.
"""
import os
import tempfile

from oracle_common import check, finish, realm
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.constants import GGML_QUANT_SIZES

GGML_QUANT_SIZES[Q.Q8_1] = (32, 36)

TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
         "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS"]
COLS = 512  # a multiple of every block size
# Upper bounds on RMSE / RMS(x) for N(0,1) data. A round-to-nearest quantizer
# with step s has RMSE s/sqrt(12): Q8_0 (s = amax/127, amax of 32 normals
# ~2.3) gives ~0.0052, Q8_K (amax of 256 ~3) ~0.0068; F16/BF16 are relative
# rounding (2^-11, 2^-8 times ~0.58). The 4- and fewer-bit types use searched
# scales; their bounds sit ~20 % above what Realm measured when written, so a
# regression in a quantizer fails here.
NRMSE_MAX = {"F32": 0.0, "F16": 3e-4, "BF16": 2.5e-3, "Q8_0": 0.0065, "Q8_1": 0.0065,
             "Q8_K": 0.0085, "Q6_K": 0.021, "Q5_0": 0.05, "Q5_1": 0.044, "Q5_K": 0.041,
             "Q4_0": 0.10, "Q4_1": 0.093, "Q4_K": 0.083, "IQ4_NL": 0.088, "IQ4_XS": 0.088,
             "Q3_K": 0.17, "Q2_K": 0.31}

ZERO_ROW, SUBNORMAL_ROW = 22, 27  # indices into test_data()'s rows





def write_gguf(path, tensors):
    """tensors: name -> (array, raw_dtype or None)."""
    w = gguf.GGUFWriter(path, arch="oracle")
    for name, (arr, raw) in tensors.items():
        if raw is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_tensors(path):
    r = gguf.GGUFReader(path)
    return {t.name: t for t in r.tensors}


def oracle_dequant(t):
    """Dequantize a gguf-py ReaderTensor with NumPy (gguf-py or our own decoder)."""
    qt = t.tensor_type
    raw = np.asarray(t.data)
    if qt == Q.Q8_1:
        b = raw.reshape(-1).view(np.uint8).reshape(-1, 36)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        q = b[:, 4:].view(np.int8).astype(np.float32)
        return (d * q).reshape(-1)
    if qt == Q.Q8_K:
        b = raw.reshape(-1).view(np.uint8).reshape(-1, 292)
        d = b[:, 0:4].copy().view(np.float32)
        q = b[:, 4:260].view(np.int8).astype(np.float32)
        return (d * q).reshape(-1)
    return gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(-1)


def same_bits(a, b):
    a = np.asarray(a, np.float32).reshape(-1)
    b = np.asarray(b, np.float32).reshape(-1)
    if a.shape != b.shape:
        return False, f"shape {a.shape} vs {b.shape}"
    both_nan = np.isnan(a) & np.isnan(b)
    diff = (a.view(np.uint32) != b.view(np.uint32)) & ~both_nan
    if diff.any():
        i = int(np.flatnonzero(diff)[0])
        return False, f"{int(diff.sum())} elements differ, first at {i}: realm {a[i]!r} oracle {b[i]!r}"
    return True, ""


def test_data(rng):
    """Rows of realistic and hard data, all finite, COLS wide."""
    rows = []
    for scale in (1e-3, 0.02, 1.0, 30.0):
        rows += [rng.standard_normal(COLS) * scale for _ in range(4)]
    rows += [rng.standard_t(3, COLS) for _ in range(4)]        # heavy tails
    rows += [rng.uniform(-1, 1, COLS) for _ in range(2)]
    rows.append(np.zeros(COLS))                                 # all-zero blocks
    z = np.zeros(COLS); z[5] = 7.0; z[300] = -9.0; rows.append(z)  # single outliers
    o = rng.standard_normal(COLS) * 0.01; o[::97] = 50.0; rows.append(o)
    rows.append(-np.abs(rng.standard_normal(COLS)))             # negative-only
    rows.append(np.abs(rng.standard_normal(COLS)) + 3.0)        # positive, offset
    rows.append(rng.standard_normal(COLS) * 1e-6)               # F16 subnormal range
    rows.append(rng.standard_normal(COLS) * 1e4)                # near F16 max after scaling
    rows.append(np.full(COLS, 0.5))                             # constant
    assert not rows[ZERO_ROW].any() and abs(rows[SUBNORMAL_ROW]).max() < 1e-4
    return np.stack(rows).astype(np.float32)


def special_values():
    """F16/BF16 hard cases: every fp16 bit pattern plus float32 edge values."""
    all_halves = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    extra = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65519.99, 65520.0, 1e-8,
                      -1e-8, 2.98e-8, 2.99e-8, 5.96e-8, 6.1e-5, 1e38, -1e38, 1.4e-45,
                      3.4028235e38], np.float32)
    pad = (-(len(all_halves) + len(extra))) % COLS
    return np.concatenate([all_halves, extra, np.zeros(pad, np.float32)]).reshape(-1, COLS)


def main():
    rng = np.random.default_rng(20261123)
    data = test_data(rng)
    specials = special_values()
    rmse_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.gguf")
        write_gguf(src, {"data.weight": (data, None), "special.weight": (specials, None)})

        for name in TYPES:
            qt = Q[name]
            block, size = GGML_QUANT_SIZES[qt]
            # (1) random block bytes -> dequantize both ways
            n_blocks = 64 * COLS // block
            raw = rng.integers(0, 256, size=(64, COLS // block * size), dtype=np.uint8)
            rnd = os.path.join(tmp, f"rand_{name}.gguf")
            write_gguf(rnd, {"rand.weight": (raw, qt)})
            rnd_f32 = os.path.join(tmp, f"rand_{name}_f32.gguf")
            realm("quantize", rnd, rnd_f32, "F32")
            mine = np.asarray(read_tensors(rnd_f32)["rand.weight"].data)
            ok, why = same_bits(mine, oracle_dequant(read_tensors(rnd)["rand.weight"]))
            check(ok, f"{name}: dequantization of random blocks ({n_blocks} blocks): {why}")

            # (2) Realm's quantizer: dequantize both ways, then the round-trip error
            out = os.path.join(tmp, f"q_{name}.gguf")
            realm("quantize", src, out, name)
            qt_read = read_tensors(out)
            check(qt_read["data.weight"].tensor_type == qt,
                  f"{name}: realm quantize wrote {qt_read['data.weight'].tensor_type.name}")
            out_f32 = os.path.join(tmp, f"q_{name}_f32.gguf")
            realm("quantize", out, out_f32, "F32")
            deq = read_tensors(out_f32)
            for tname in ("data.weight", "special.weight"):
                mine = np.asarray(deq[tname].data).reshape(-1)
                oracle = oracle_dequant(qt_read[tname])
                ok, why = same_bits(mine, oracle)
                check(ok, f"{name}: dequantization of Realm-quantized {tname}: {why}")
            y = np.asarray(deq["data.weight"].data).reshape(data.shape)
            check(np.isfinite(y).all(), f"{name}: non-finite values from finite input")
            gauss = slice(8, 12)  # the N(0,1) rows
            err = y[gauss] - data[gauss]
            nrmse = float(np.sqrt(np.mean(err ** 2)) / np.sqrt(np.mean(data[gauss] ** 2)))
            # worst row relative to its own RMS; the 1e-6-scale row is left out:
            # there every fp16 scale is subnormal and loses relative precision.
            worst = 0.0
            for i in range(len(data)):
                scale = np.sqrt(np.mean(data[i] ** 2))
                if scale > 0 and i != SUBNORMAL_ROW:
                    worst = max(worst, float(np.sqrt(np.mean((y[i] - data[i]) ** 2)) / scale))
            check(np.all(y[ZERO_ROW] == 0), f"{name}: all-zero row does not round-trip to zeros")
            check(nrmse <= NRMSE_MAX[name], f"{name}: N(0,1) normalized RMSE {nrmse:.5f} > {NRMSE_MAX[name]}")
            rmse_rows.append((name, nrmse, worst))

            # (3) exact conversions of special values
            if name in ("F16", "BF16", "F32"):
                got = np.asarray(qt_read["special.weight"].data)
                if name == "F16":
                    want = specials.astype(np.float16).view(np.uint16)
                elif name == "BF16":
                    want = gguf.quants.quantize(specials, Q.BF16).view(np.uint16)
                else:
                    want = specials.view(np.uint32)
                got = got.reshape(-1).view(want.dtype)
                want = want.reshape(-1)
                nan = np.isnan(specials.reshape(-1))
                bad = (got != want) & ~nan
                check(not bad.any(), f"{name}: conversion of special values differs at "
                      f"{np.flatnonzero(bad)[:5].tolist()}")
                if name != "F32":
                    back = np.asarray(deq["special.weight"].data).reshape(-1)
                    check(bool(np.all(np.isnan(back[nan]))), f"{name}: NaN did not stay NaN")

    print(f"\n{'type':8} {'NRMSE N(0,1)':>13} {'worst row':>10}")
    for name, nrmse, worst in rmse_rows:
        print(f"{name:8} {nrmse:13.6f} {worst:10.6f}")
    finish(f"quant oracle ({len(TYPES)} types, dequantization bit-exact with gguf-py/NumPy)")


if __name__ == "__main__":
    with np.errstate(all="ignore"):  # random blocks hold NaN/inf scales on purpose
        main()

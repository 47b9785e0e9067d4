#!/usr/bin/env python3
"""Write the GGUF seed corpus for fuzz_gguf into tests/fuzz/corpus/gguf/.

Standard library only, and independent of Realm's writer: the seeds are built
byte by byte, so a writer bug cannot hide in them. Valid files of several
shapes (every value kind, arrays of strings, nested arrays, tensors of block
types, a custom alignment, a miniature llama header) plus truncated and
corrupted variants that land just past each validation rule. Deterministic;
the seeds stay tiny (the whole set is a few KB).

Usage: tests/fuzz/make_corpus.py [OUT_DIR]
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FIXED = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f',
         BOOL: '<?', U64: '<Q', I64: '<q', F64: '<d'}
F32_T, F16_T, Q4_0, Q8_0, Q4_K, Q6_K, I8_T = 0, 1, 2, 8, 12, 14, 24
TYPE_BYTES = {F32_T: (1, 4), F16_T: (1, 2), Q4_0: (32, 18), Q8_0: (32, 34), Q4_K: (256, 144),
              Q6_K: (256, 210), I8_T: (1, 1)}


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack('<Q', len(b)) + b


def val(kind, v):
    """Encode a value; arrays are (elem_kind, [items])."""
    if kind == STR:
        return s(v)
    if kind == ARR:
        ek, items = v
        return struct.pack('<IQ', ek, len(items)) + b''.join(val(ek, x) for x in items)
    return struct.pack(FIXED[kind], v)


def gguf(kvs, tensors=(), version=3, align=32, tail=b''):
    """kvs: [(key, kind, value)]; tensors: [(name, type, ne)], data filled with a pattern."""
    out = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs))
    for key, kind, v in kvs:
        out += s(key) + struct.pack('<I', kind) + val(kind, v)
    data, offsets = b'', []
    for name, t, ne in tensors:
        bs, ts = TYPE_BYTES[t]
        n = 1
        for d in ne:
            n *= d
        size = n // bs * ts
        offsets.append(len(data))
        data += bytes((i * 37 + len(offsets)) & 0xff for i in range(size))
        data += b'\0' * (-len(data) % align)
    for (name, t, ne), off in zip(tensors, offsets):
        out += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', d) for d in ne)
        out += struct.pack('<IQ', t, off)
    if tensors:
        out += b'\0' * (-len(out) % align)
    return out + data + tail


def nested(depth):
    return (U8, [7]) if depth == 1 else (ARR, [nested(depth - 1)])


def seeds():
    every_kind = [('k.u8', U8, 200), ('k.i8', I8, -5), ('k.u16', U16, 60000), ('k.i16', I16, -300),
                  ('k.u32', U32, 4000000000), ('k.i32', I32, -70000), ('k.f32', F32, 1.5),
                  ('k.bool', BOOL, True), ('k.str', STR, 'hello'), ('k.u64', U64, 2**64 - 1),
                  ('k.i64', I64, -2**63), ('k.f64', F64, -2.5)]
    arrays = [('a.' + str(k), ARR, (k, [1, 0, 1])) for k in FIXED if k not in (F32, F64)]
    arrays += [('a.f32', ARR, (F32, [0.5, -1.0])), ('a.f64', ARR, (F64, [1e300])),
               ('a.str', ARR, (STR, ['a', '', 'ccc'])), ('a.empty', ARR, (U32, [])),
               ('a.nested', ARR, (ARR, [(U16, [1, 2]), (STR, ['x', 'yz']), (F32, [])])),
               ('a.deep', ARR, nested(8))]
    tensors = [('a.f32', F32_T, [4, 2]), ('b.q8_0', Q8_0, [64]), ('c.f16', F16_T, [2, 3, 2]),
               ('d.q4_0', Q4_0, [32, 1, 1, 2])]
    tokens = ['<unk>', '<s>', '</s>'] + ['tok%d' % i for i in range(17)]
    llama = [('general.architecture', STR, 'llama'), ('general.name', STR, 'tiny'),
             ('llama.block_count', U32, 1), ('llama.context_length', U32, 64),
             ('llama.embedding_length', U32, 256), ('llama.feed_forward_length', U32, 512),
             ('llama.attention.head_count', U32, 4), ('llama.rope.freq_base', F32, 10000.0),
             ('llama.attention.layer_norm_rms_epsilon', F32, 1e-5),
             ('tokenizer.ggml.model', STR, 'gpt2'),
             ('tokenizer.ggml.tokens', ARR, (STR, tokens)),
             ('tokenizer.ggml.token_type', ARR, (I32, [1] * len(tokens))),
             ('tokenizer.ggml.merges', ARR, (STR, ['t o', 'to k'])),
             ('tokenizer.ggml.bos_token_id', U32, 1), ('general.alignment', U32, 64)]
    llama_t = [('token_embd.weight', Q4_K, [256, 2]), ('output_norm.weight', F32_T, [256]),
               ('blk.0.attn_q.weight', Q6_K, [256, 1])]

    good = {
        'minimal': gguf([]),
        'v2_scalars': gguf(every_kind[:6], version=2),
        'every_kind': gguf(every_kind),
        'arrays': gguf(arrays),
        'tensors': gguf([('general.architecture', STR, 'x')], tensors),
        'tensors_only': gguf([], [('t', I8_T, [3])]),
        'llama_like': gguf(llama, llama_t, align=64),
    }
    out = dict(good)
    t = good['tensors']
    hdr = 24
    # truncated: inside the kv, inside the tensor infos, inside the data
    for cut in (hdr + 10, hdr + 40, len(t) // 2, len(t) - 40):
        out['trunc_%d' % cut] = t[:cut]
    # corrupted: one rule each
    out['bad_magic'] = b'GGUL' + t[4:]
    out['v1'] = t[:4] + struct.pack('<I', 1) + t[8:]
    out['big_endian'] = t[:4] + struct.pack('>I', 3) + t[8:]
    out['kv_count_huge'] = t[:16] + struct.pack('<Q', 1 << 60) + t[24:]
    out['tensor_count_huge'] = t[:8] + struct.pack('<Q', 2**64 - 1) + t[16:]
    one_kv = b'GGUF' + struct.pack('<IQQ', 3, 0, 1) + s('k')
    out['kind_unknown'] = one_kv + struct.pack('<I', 13) + b'\0' * 8
    out['bool_2'] = one_kv + struct.pack('<IB', BOOL, 2)
    out['dup_key'] = gguf([('k', U32, 1), ('k', U32, 2)])
    out['align_48'] = gguf([('general.alignment', U32, 48)])
    out['align_u64'] = gguf([('general.alignment', U64, 32)])
    out['deep_9'] = gguf([('d', ARR, nested(9))])
    out['str_len_huge'] = gguf([('k', STR, 'abc')]).replace(s('abc'), struct.pack('<Q', 2**63) + b'abc')
    out['dup_tensor'] = gguf([], [('t', F32_T, [8]), ('t', F32_T, [8])])
    out['ne_zero'] = gguf([], [('t', F32_T, [8, 0])])
    out['ne0_not_block'] = gguf([], [('t', F32_T, [40])]).replace(
        struct.pack('<Q', 40) + struct.pack('<I', F32_T), struct.pack('<Q', 40) + struct.pack('<I', Q8_0))
    out['type_unknown'] = gguf([], [('t', F32_T, [8])]).replace(
        struct.pack('<QI', 8, F32_T), struct.pack('<QI', 8, 4))
    two = gguf([], [('x', F32_T, [16]), ('y', F32_T, [16])])
    out['overlap'] = two.replace(struct.pack('<QIQ', 16, F32_T, 64), struct.pack('<QIQ', 16, F32_T, 32))
    out['misaligned'] = two.replace(struct.pack('<QIQ', 16, F32_T, 64), struct.pack('<QIQ', 16, F32_T, 72))
    out['past_eof'] = two[:-8]
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'corpus', 'gguf')
    os.makedirs(outdir, exist_ok=True)
    total = 0
    for name, data in sorted(seeds().items()):
        with open(os.path.join(outdir, name), 'wb') as f:  # no .gguf: .gitignore drops those
            f.write(data)
        total += len(data)
    print('%d seeds, %d bytes in %s' % (len(seeds()), total, outdir))


if __name__ == '__main__':
    main()

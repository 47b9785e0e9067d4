#!/usr/bin/env python3
"""tests/cuda/check_pdl_sass.py — no kernel of the CUDA backend reads through
the non-coherent path (ld.global.nc: LDG ... .CONSTANT in SASS) before its
griddepcontrol.wait (ACQBULK).

Under programmatic dependent launch a kernel starts while the one ahead is
still writing; only what comes after griddepcontrol.wait may read its output.
ld.global.nc promises the bytes stay constant for the kernel's lifetime, so
ptxas may schedule such loads above the wait, and did (k_mmv_ring's
activation loads, NOTES round 22). Kernels therefore read what a kernel ahead
wrote with ld_prior (cuda_quant.cuh); this check reads the SASS ptxas made
and fails on any .nc load that sits before a kernel's first wait (weights
read before the wait must use coherent loads or cp.async too, which costs
nothing and keeps the rule checkable).

    check_pdl_sass.py OBJ...          check the sm_90 SASS of the objects
    check_pdl_sass.py --self-test     the parser against a recorded fixture

cuobjdump (and the nvdisasm it runs) come from PATH, the CUDA toolkit, or
the nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm wheels in the running
Python environment (tests/requirements.txt).
"""
import glob
import os
import re
import shutil
import subprocess
import sys

INSN = re.compile(r"/\*([0-9a-f]{4,})\*/\s+((?:@!?U?P\w+\s+)?)([A-Z][A-Z0-9_.]*)([^;]*);")


def functions(sass):
    """(name, [(address, opcode, text)]) for each function of a SASS dump."""
    parts = re.split(r"\n\s*Function : ", "\n" + sass)[1:]
    for part in parts:
        name, _, body = part.partition("\n")
        insns = [(int(a, 16), op, op + rest) for a, _, op, rest in INSN.findall(body)]
        yield name.strip(), insns


def early_nc_loads(insns):
    """The .nc loads placed before the first griddepcontrol.wait, or None
    when the function never waits."""
    waits = [a for a, op, _ in insns if op == "ACQBULK"]
    if not waits:
        return None
    first = min(waits)
    return [(a, t) for a, op, t in insns if a < first and op.startswith("LDG") and ".CONSTANT" in op]


def check(sass, where):
    """Problems found, and how many waiting kernels were read."""
    problems, n_wait = [], 0
    for name, insns in functions(sass):
        early = early_nc_loads(insns)
        if early is None:
            continue
        n_wait += 1
        for a, t in early:
            problems.append(f"{where}: {name}: /*{a:04x}*/ {t.strip()} before griddepcontrol.wait")
    return problems, n_wait


def find_cuobjdump():
    found = shutil.which("cuobjdump")
    if found:
        return found
    cands = ["/usr/local/cuda/bin/cuobjdump"]
    for p in sys.path:
        cands += sorted(glob.glob(os.path.join(p, "nvidia", "*", "bin", "cuobjdump")))
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit("check_pdl_sass: no cuobjdump (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")


def self_test():
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ring_prewait.sass")
    with open(fixture) as f:
        sass = f.read()
    problems, n_wait = check(sass, "fixture")
    # the fixture holds two instances of one ring kernel: the one without work
    # before the wait (clean) and the one whose activation loads ptxas put
    # above the wait (8 of its int4 activation loads, recorded from a real build)
    assert n_wait == 2, n_wait
    assert len(problems) == 8, problems
    assert all("ELb1E" in p for p in problems), problems
    assert "LDG.E.128.CONSTANT" in problems[0], problems[0]
    print("check_pdl_sass self-test: ok (8 early .nc loads found in the bad instance, none in the good)")


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    if not argv:
        print(__doc__)
        return 2
    tool = find_cuobjdump()
    # cuobjdump runs nvdisasm, which the wheels install beside it
    env = dict(os.environ, PATH=os.path.dirname(tool) + os.pathsep + os.environ.get("PATH", ""))
    problems, n_wait = [], 0
    for obj in argv:
        run = subprocess.run([tool, "-sass", obj], capture_output=True, text=True, env=env)
        if run.returncode:
            print(f"check_pdl_sass: cuobjdump -sass {obj}: {run.stderr.strip()}")
            return 1
        sass = run.stdout
        p, n = check(sass, os.path.basename(obj))
        problems += p
        n_wait += n
    if n_wait == 0:
        print("check_pdl_sass: no kernel with griddepcontrol.wait found (wrong objects or SASS format?)")
        return 1
    for p in problems:
        print(p)
    print(f"check_pdl_sass: {n_wait} waiting kernels, {len(problems)} .nc loads before a wait")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

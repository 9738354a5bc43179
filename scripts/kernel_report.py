#!/usr/bin/env python3
"""kernel_report.py - what ptxas and the SASS say about each CUDA kernel, without a GPU.

Compiles kernels/cuda/*.cu (or the files given) for one architecture (sm_90
by default) to cubins, then prints one line per kernel:

  regs      registers per thread (ptxas)
  smem      static shared memory as cuobjdump reports it (including the 1 KB
            sm_80+ reserves per block when the kernel uses any); +dyn is the
            dynamic shared memory of the launch the occupancy assumes (DYN_SMEM
            below, mirrored from the launchers)
  spill     bytes of spill stores + loads (ptxas); anything but 0 is a problem
  threads   the block size from __launch_bounds__ (EIATTR_MAX_THREADS); "-" when
            the kernel declares none (then no occupancy)
  occ       theoretical occupancy: resident warps per SM of 64, limited by
            registers, shared memory and the 32-block limit (sm_80/sm_90 rules)
  ldg128    16-byte global loads (LDG.E.128) in the whole kernel
  inflight  the most global loads (any width) outstanding when the hot loop
            first waits on one: walking the loop body twice (so loads issued at
            the bottom for the next iteration count), a load is outstanding from
            its issue until an instruction reads one of its registers. The hot
            loop is the backward branch whose body has the most FFMA/HFMA2; a
            kernel without loops is walked whole. 1 means load, use, load, use:
            one load in flight per thread.
  minfl     the least of the same over every loop that loads from global memory
            (a loop that serializes its loads shows 1 here)
  maxfl     the most global loads outstanding at a wait anywhere, the kernel
            walked once top to bottom (unrolled code that has no loop)
  ffma      FFMA + HFMA2 instructions in that hot loop
  hmma      tensor-core instructions (HMMA, HGMMA) in the whole kernel
  ldgsts    16-byte asynchronous global-to-shared copies (LDGSTS .128, cp.async)
            in the whole kernel

The CUDA toolkit may lack cuobjdump (this project's build machine does): the
script then installs NVIDIA's PyPI wheels, pinned, into .cache/cudatools once.

Usage: scripts/kernel_report.py [--arch 90] [--filter REGEX] [file.cu ...]
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, ".cache", "cudatools")
WHEELS = ["nvidia-cuda-cuobjdump==13.4.92", "nvidia-cuda-nvdisasm==13.5.37"]

# Dynamic shared memory of a representative launch, by kernel-name regex (the
# occupancy column counts it). Keep in step with the launchers.
DYN_SMEM = [
    (r"^gemv_kernel", 32 * 1024),  # cuda_matmul.cu: GEMV_SMEM_BYTES
    (r"^gemv_scalar_kernel", 32 * 1024),  # cuda_matmul.cu: GEMV_SMEM_BYTES
    (r"^attn_prefill_kernel", 0),  # head_dim dependent: not counted
    # cuda_prefill_attention.cu: tc_shape<HD>::smem
    (r"^attn_prefill_tc_kernel<\w+, 64>", 45568),
    (r"^attn_prefill_tc_kernel<\w+, 128>", 78336),
]

# sm_80 / sm_90 occupancy rules
REGS_PER_SM = 65536
REG_ALLOC_UNIT = 256  # registers, per warp
MAX_WARPS = 64
MAX_BLOCKS = 32
SMEM_PER_SM = {80: 167936, 86: 102400, 89: 102400, 90: 233472}
SMEM_RESERVED = 1024  # per block, sm_80 and later

NO_DEST = re.compile(r"^(ST|RED|BAR|BRA|EXIT|RET|CALL|BSYNC|BSSY|WARPSYNC|NOP|MEMBAR|ERRBAR|"
                     r"CCTL|DEPBAR|YIELD|BREAK|SYNCS|ARRIVES|FENCE)")


def tool(name):
    """Path of a CUDA binary tool: the toolkit's, else the pinned wheel's (installed once)."""
    found = shutil.which(name)
    if found:
        return found
    path = os.path.join(TOOLS, "nvidia", "cu13", "bin", name)
    if not os.path.exists(path):
        print(f"kernel_report: installing {' '.join(WHEELS)} into {TOOLS}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--target", TOOLS] + WHEELS, check=True)
    return path


def demangle(names):
    if not names:
        return {}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout
    return dict(zip(names, out.splitlines()))


def short(demangled):
    """gemv_kernel<__nv_bfloat16, 8, ...>(args) -> gemv_kernel<__nv_bfloat16, 8, ...>"""
    s = demangled.split("(")[0] if "(" in demangled else demangled
    return s.replace("void ", "").replace("__nv_bfloat16", "bf16").replace("__half", "f16") \
            .replace("signed char", "i8")


def compile_cubin(src, arch, outdir):
    cubin = os.path.join(outdir, os.path.basename(src) + ".cubin")
    cmd = ["nvcc", "-std=c++17", "-O2", "-cubin", f"-arch=sm_{arch}", "-Xptxas", "-v",
           "-I" + os.path.join(ROOT, "common"), "-I" + os.path.join(ROOT, "kernels"),
           "-I" + os.path.join(ROOT, "kernels", "cuda"), "-DLLM_CUDA=1", src, "-o", cubin]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"kernel_report: nvcc failed on {src}:\n{r.stderr}")
    spills, fn = {}, None
    for line in r.stderr.splitlines():
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            fn = m.group(1)
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and fn:
            spills[fn] = int(m.group(1)) + int(m.group(2))
    return cubin, spills


def resources(cubin):
    out = subprocess.run([tool("cuobjdump"), "-res-usage", cubin], capture_output=True,
                         text=True, check=True).stdout
    res, fn = {}, None
    for line in out.splitlines():
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            fn = m.group(1)
            continue
        m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", line)
        if m and fn:
            res[fn] = tuple(int(v) for v in m.groups())
    return res


def max_threads(cubin):
    out = subprocess.run([tool("cuobjdump"), "-elf", cubin], capture_output=True, text=True,
                         check=True).stdout
    mt, fn, want = {}, None, False
    for line in out.splitlines():
        m = re.match(r"^\.nv\.info\.(\S+)", line)
        if m:
            fn = m.group(1)
        if "EIATTR_MAX_THREADS" in line:
            want = True
        elif want and line.strip().startswith("Value:"):
            mt[fn] = int(line.split()[1], 16)
            want = False
    return mt


def sass_functions(cubin):
    out = subprocess.run([tool("cuobjdump"), "-sass", cubin], capture_output=True, text=True,
                         check=True).stdout
    funcs, fn = {}, None
    for line in out.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            fn = m.group(1)
            funcs[fn] = []
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
        if m and fn:
            funcs[fn].append((int(m.group(1), 16), m.group(2)))
    return funcs


def regs_of(operand, width=1):
    """Registers named by one operand: R8 -> {8}; R8.64 -> {8, 9}; [R8.64+0x10] -> {8, 9}."""
    regs = set()
    for m in re.finditer(r"\bR(\d+)(\.64)?\b", operand):
        base = int(m.group(1))
        n = 2 if m.group(2) else width
        regs.update(range(base, base + n))
    return regs


def parse(ins):
    """(opcode, dest registers, source registers) of one SASS instruction."""
    body = re.sub(r"^@!?U?P\w+\s+", "", ins)
    parts = body.split(None, 1)
    op = parts[0]
    operands = [o.strip() for o in parts[1].split(",")] if len(parts) > 1 else []
    if op.startswith("LDG") or op.startswith("LDS") or op.startswith("LD."):
        width = 4 if ".128" in op else 2 if ".64" in op else 1
        dest = regs_of(operands[0], width) if operands else set()
        return op, dest, set().union(*(regs_of(o) for o in operands[1:])) if operands else set()
    if NO_DEST.match(op) or not operands:
        return op, set(), set().union(*(regs_of(o) for o in operands)) if operands else set()
    return op, regs_of(operands[0]), set().union(*(regs_of(o) for o in operands[1:]))


def loops_of(code):
    """The bodies of the backward branches."""
    loops = []
    for i, (addr, ins) in enumerate(code):
        m = re.search(r"\bBRA\s+(?:`\(\.L_x_\d+\)\s*)?0x([0-9a-f]+)", ins)
        if m and int(m.group(1), 16) <= addr:
            start = int(m.group(1), 16)
            body = [c for c in code if start <= c[0] <= addr]
            loops.append(body)
    return loops


def hot_loop(code):
    """The instructions of the loop with the most FFMA/HFMA2 (whole body if none)."""
    loops = loops_of(code)
    if not loops:
        return code, False

    def fmas(body):
        return sum(1 for _, ins in body if re.search(r"\b(FFMA|HFMA2)\b", ins))

    best = max(loops, key=lambda b: (fmas(b), -len(b)))
    return best, True


def in_flight(body, twice):
    """Most global loads outstanding when an instruction waits on one."""
    outstanding, best = [], 0
    for _, ins in (body + body if twice else body):
        op, dest, src = parse(ins)
        waited = [ld for ld in outstanding if ld & src]
        if waited:
            best = max(best, len(outstanding))
            outstanding = [ld for ld in outstanding if not (ld & src)]
        if op.startswith("LDG"):
            outstanding.append(dest)
        elif dest:  # a register rewritten is no longer the load's
            outstanding = [ld - dest for ld in outstanding if ld - dest]
    return max(best, len(outstanding))


def occupancy(arch, regs, smem, threads):
    if not threads:
        return None
    warps = (threads + 31) // 32
    per_warp = (regs * 32 + REG_ALLOC_UNIT - 1) // REG_ALLOC_UNIT * REG_ALLOC_UNIT
    by_regs = (REGS_PER_SM // max(per_warp, 1)) // warps
    if smem < SMEM_RESERVED:  # cuobjdump's figure includes the reserve when it is there
        smem += SMEM_RESERVED
    by_smem = SMEM_PER_SM.get(arch, 233472) // smem
    blocks = min(by_regs, by_smem, MAX_BLOCKS, MAX_WARPS // warps)
    return blocks * warps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", type=int, default=90)
    ap.add_argument("--filter", default="", help="only kernels whose name matches this regex")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = a.files or sorted(glob.glob(os.path.join(ROOT, "kernels", "cuda", "*.cu")))
    print(f"sm_{a.arch}; occupancy in resident warps per SM of {MAX_WARPS}")
    hdr = f"{'kernel':<52} {'regs':>4} {'smem':>12} {'spill':>5} {'thr':>4} {'occ':>9} " \
          f"{'ldg128':>6} {'inflight':>8} {'minfl':>5} {'maxfl':>5} {'ffma':>5} {'hmma':>5} " \
          f"{'ldgsts':>6}"
    with tempfile.TemporaryDirectory() as tmp:
        for src in files:
            cubin, spills = compile_cubin(src, a.arch, tmp)
            res, mt, funcs = resources(cubin), max_threads(cubin), sass_functions(cubin)
            names = demangle(sorted(funcs))
            rows = []
            for fn in sorted(funcs, key=lambda f: names[f]):
                name = short(names[fn])
                if a.filter and not re.search(a.filter, name):
                    continue
                regs, _, static, _ = res.get(fn, (0, 0, 0, 0))
                dyn = next((b for rx, b in DYN_SMEM if re.search(rx, name)), 0)
                thr = mt.get(fn)
                occ = occupancy(a.arch, regs, static + dyn, thr)
                code = funcs[fn]
                loop, is_loop = hot_loop(code)
                ldg128 = sum(1 for _, i in code if re.search(r"\bLDG\S*\.128", i))
                ldg_loops = [b for b in loops_of(code) if any("LDG" in i for _, i in b)]
                minfl = min((in_flight(b, True) for b in ldg_loops), default=None)
                ffma = sum(1 for _, i in loop if re.search(r"\b(FFMA|HFMA2)\b", i))
                hmma = sum(1 for _, i in code if re.search(r"\bH(G)?MMA\b", i))
                ldgsts = sum(1 for _, i in code if re.search(r"\bLDGSTS\S*\.128", i))
                smem = f"{static}" + (f"+{dyn // 1024}K" if dyn else "")
                occ_s = f"{occ:>2} ({100 * occ // MAX_WARPS:>3}%)" if occ is not None else "-"
                rows.append(f"{name[:52]:<52} {regs:>4} {smem:>12} {spills.get(fn, 0):>5} "
                            f"{thr or '-':>4} {occ_s:>9} {ldg128:>6} "
                            f"{in_flight(loop, is_loop):>8} {minfl if minfl is not None else '-':>5} "
                            f"{in_flight(code, False):>5} "
                            f"{ffma:>5} {hmma:>5} {ldgsts:>6}")
            if rows:
                print(f"\n{os.path.relpath(src, ROOT)}\n{hdr}")
                print("\n".join(rows))


if __name__ == "__main__":
    main()

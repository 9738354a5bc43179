"""Rewrites a kernels/cuda .cu file into C++ for the CPU emulation (emu.h):
kernel<<<grid, block, smem, stream>>>(args) becomes emu::launch(...) (with the
kernel's name, which the emulator counts launches by), an
extern __shared__ array a pointer to the launch's dynamic shared memory, and
NULL nullptr (launch arguments pass through a template). Usage: translate.py IN OUT
"""
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r'extern __shared__ (\w+) (\w+)\[\];', r'\1 *\2 = (\1 *)emu::dyn_smem();', s)
s = re.sub(r'([A-Za-z_]\w*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\(',
           lambda m: 'emu::launch(emu::Cfg(%s), "%s", [&](auto &&...a_) { %s(a_...); }, ' % (
               m.group(2), m.group(1).split('<')[0], m.group(1)), s, flags=re.S)
s = re.sub(r'\bNULL\b', 'nullptr', s)
open(sys.argv[2], 'w').write(s)

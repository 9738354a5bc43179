// cublas_v2.h - stands in for the CUDA header under the CPU emulation (see emu.h).
#include "emu.h"

// Files compiled twice: once for the baseline ISA and, with GCC on x86-64, once more for AVX2
// (CMakeLists.txt: PYQUIRK_AVX2_SOURCES, built with PYQUIRK_ISA_AVX2 defined). Such a file includes
// this header LAST, puts its code in namespace PYQUIRK_ISA (`base` or `avx2`), and its baseline copy
// defines the public functions, which call PYQUIRK_PICK(fn): the AVX2 copy when avx2_loops().
//
// The `#pragma GCC target` below comes after every other #include, so only the file's own
// functions get AVX2 code; inline and template code from headers stays baseline in both copies (no
// AVX2 instruction can land in a definition the linker shares between them), though it is compiled
// for AVX2 where it is inlined into the file's functions. AVX2 has no FMA, so neither copy
// contracts a product and a sum, and both give the same bits (tests/test_cpu_backend.py).
#pragma once

#include "cpu/common.h"  // avx2_loops()

#ifdef PYQUIRK_ISA_AVX2
#pragma GCC target("avx2")
#define PYQUIRK_ISA avx2
#else
#define PYQUIRK_ISA base
#endif

#ifdef PYQUIRK_AVX2_LOOPS
#define PYQUIRK_PICK(fn) (avx2_loops() ? avx2::fn : base::fn)
#else
#define PYQUIRK_PICK(fn) base::fn
#endif

/* Which compiled CPU variants this processor can run, asked of the CPU itself (cpuid through the
 * compiler's builtins, which also check that the OS saves the wider registers; F16C, which clang's builtin
 * does not know, from cpuid leaf 1 directly: its AVX, which the builtin checks, covers the registers). */
#include "internal.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static int has_f16c(void) {
    unsigned eax, ebx, ecx, edx;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

int bq_cpu_supports(const char *variant) {
    __builtin_cpu_init();
    if (strcmp(variant, "sse41") == 0) return __builtin_cpu_supports("sse4.1") != 0; /* the builtin returns a bit */
    if (strcmp(variant, "avx2") == 0) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    }
    if (strcmp(variant, "avx512") == 0) {
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && bq_cpu_supports("avx2");
    }
    return 0;
}
#else
int bq_cpu_supports(const char *variant) { return strcmp(variant, "neon") == 0; }
#endif

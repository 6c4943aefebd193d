# The CPU variants bitquant compiles its kernels for, as Halide target strings, and the single Halide
# runtime they share. A variant's name is what BITQUANT_CPU selects and what runtime/cpu.c checks.
set(BITQUANT_KERNEL_FEATURES "no_runtime-user_context-strict_float")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(BITQUANT_ALL_CPU_VARIANTS sse41 avx2 avx512)
  set(BITQUANT_TARGET_sse41 "x86-64-linux-sse41")
  set(BITQUANT_TARGET_avx2 "x86-64-linux-sse41-avx-avx2-fma-f16c")
  set(BITQUANT_TARGET_avx512 "x86-64-linux-sse41-avx-avx2-fma-f16c-avx512-avx512_skylake")
  set(BITQUANT_RUNTIME_TARGET "x86-64-linux")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  # Advanced SIMD (NEON) is part of every AArch64 CPU, so the baseline target uses it throughout.
  set(BITQUANT_ALL_CPU_VARIANTS neon)
  set(BITQUANT_TARGET_neon "arm-64-linux")
  set(BITQUANT_RUNTIME_TARGET "arm-64-linux")
else()
  message(FATAL_ERROR "bitquant: no CPU variants defined for processor '${CMAKE_SYSTEM_PROCESSOR}'")
endif()

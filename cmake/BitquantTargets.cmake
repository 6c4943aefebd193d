# The targets bitquant compiles its kernels for, as Halide target strings, and the single Halide runtime
# they share. A CPU variant's name is what BITQUANT_CPU selects and what runtime/cpu.c checks; a GPU
# backend's name is what the device API and `bitquant list` report.
set(BITQUANT_KERNEL_FEATURES "no_runtime-user_context")
# Every kernel is compiled with the strict_float target feature (IEEE NaN, infinities, signed zeros and
# rounding in the order written), but for the families listed here on CPU targets: their generators wrap
# every operation in strict_float() themselves but for what they put in Funcs of their own (a polynomial whose
# input is always finite, a multiply-add), which LLVM may then contract into FMA (generators/quantize_math.cpp,
# swish_grad_core; generators/elementwise_generator.cpp, WeightDoReFaEstimate). Both are within a tolerance.
set(BITQUANT_CPU_RELAXED_FAMILIES swishsign weightdorefa_estimate)
# The CPU kernels of these signatures are compiled without Halide's checks of their arguments (no_asserts,
# no_bounds_query): the runtime is their one caller and describes every buffer itself (runtime/exec.c), after
# checking the call, so the checks are repeated work on every call (190 of the 250 instructions of a
# 16-element sign forward). Their kernels allocate nothing on the heap, so no allocation check goes with them
# (the `unchecked.*` tests read their assembly for a halide_malloc call).
set(BITQUANT_CPU_UNCHECKED_SIGNATURES MAP GRAD CUSTOM_MAP CUSTOM_GRAD)
set(BITQUANT_UNCHECKED_FEATURES "no_asserts-no_bounds_query")

# The target string of one family's kernel: `kind` is cpu or gpu. The family's signature is
# BITQUANT_SIGNATURE_<family> (bitquant_read_families sets it).
function(bitquant_kernel_target out variant kind family)
  set(target "${BITQUANT_TARGET_${variant}}-${BITQUANT_KERNEL_FEATURES}")
  if(NOT (kind STREQUAL "cpu" AND family IN_LIST BITQUANT_CPU_RELAXED_FAMILIES))
    string(APPEND target "-strict_float")
  endif()
  if(NOT BITQUANT_SIGNATURE_${family})
    message(FATAL_ERROR "bitquant_kernel_target: no signature known for family '${family}'")
  endif()
  if(kind STREQUAL "cpu" AND BITQUANT_SIGNATURE_${family} IN_LIST BITQUANT_CPU_UNCHECKED_SIGNATURES)
    string(APPEND target "-${BITQUANT_UNCHECKED_FEATURES}")
  endif()
  set(${out} "${target}" PARENT_SCOPE)
endfunction()

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

# GPU backends: the host half of each kernel is baseline code for this processor; the device half is PTX
# or OpenCL C, which the driver compiles when the kernel first runs.
# - CUDA: capability 8.0 (PTX ISA 7.0, sm_80) is the newest that Ampere A100 can load; Halide 21's only
#   newer one, 8.6, would exclude it and gains nothing for these kernels. sm_90 GPUs JIT the same PTX.
# - OpenCL: cl_doubles for WeightDoReFa's correctly rounded tanh, which needs float64.
set(BITQUANT_ALL_GPU_BACKENDS cuda opencl)
set(BITQUANT_TARGET_cuda "${BITQUANT_RUNTIME_TARGET}-cuda-cuda_capability_80")
set(BITQUANT_TARGET_opencl "${BITQUANT_RUNTIME_TARGET}-opencl-cl_doubles")

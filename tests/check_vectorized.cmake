# A test that fails when a kernel silently fell back to scalar code, read from the assembly the build emits
# beside each kernel object. Each file must hold at least MIN_COUNT matches of its kind's pattern for the
# variant:
#   FILES   float32 kernels: floating-point vector instructions on the variant's vector registers
#   PACKED  bit-packing kernels: vector compares, into AVX-512 k-mask registers on avx512 (LLVM then sums
#           the 32 lanes' bits with a horizontal add; it emits no movemask for that)
#   HALF    float16 kernels: the hardware conversions, F16C's vcvtph2ps and vcvtps2ph on avx2 and avx512;
#           on SSE4.1 and NEON (generators/quantize_math.h, native_f16) the integer conversion, vectorized
#   BFLOAT  bfloat16 kernels: no CPU here converts in hardware, so vector integer code on the registers
#   cmake -DVARIANT=<name> -DFILES=<a.s;b.s> [-DPACKED=...] [-DHALF=...] [-DBFLOAT=...] [-DMIN_COUNT=8]
#         -P check_vectorized.cmake
if(NOT MIN_COUNT)
  set(MIN_COUNT 8)
endif()
if(VARIANT STREQUAL "neon")
  set(FILES_pattern "[ \t](f[a-z]+|bsl|bif|bit)[ \t]+v[0-9]+\\.(4s|16b)") # fcmlt, fmul, bsl ... on 128-bit v-registers
  set(PACKED_pattern "[ \t](fcm[a-z]+|cm[a-z]+)[ \t]+v[0-9]+\\.4s")
  set(HALF_pattern "[ \t][a-z]+[ \t]+v[0-9]+\\.(4s|8h|16b)")
  set(BFLOAT_pattern "[ \t][a-z]+[ \t]+v[0-9]+\\.(4s|8h|16b)")
elseif(VARIANT STREQUAL "sse41")
  set(FILES_pattern "[ \t][a-z]+ps[ \t][^\n]*%xmm")                      # cmpltps, blendvps, mulps ... on xmm
  set(PACKED_pattern "[ \t]cmp[a-z]*ps[ \t][^\n]*%xmm")
  set(HALF_pattern "[ \t]p[a-z]+[ \t][^\n]*%xmm")
  set(BFLOAT_pattern "[ \t]p[a-z]+[ \t][^\n]*%xmm")
elseif(VARIANT STREQUAL "avx2")
  set(FILES_pattern "[ \t]v[a-z]+ps[ \t][^\n]*%ymm")                     # vcmpltps, vblendvps ... on ymm
  set(PACKED_pattern "[ \t]vcmp[a-z]*ps[ \t][^\n]*%ymm")
  set(HALF_pattern "[ \t]vcvt(ph2ps|ps2ph)[ \t][^\n]*%ymm")
  set(BFLOAT_pattern "[ \t]vp[a-z]+[ \t][^\n]*%ymm")
elseif(VARIANT STREQUAL "avx512")
  set(FILES_pattern "[ \t]v[a-z]+ps[ \t][^\n]*%zmm")                     # ... on zmm
  set(PACKED_pattern "[ \t]vcmp[a-z]*ps[ \t][^\n]*%zmm[^\n]*%k[0-7]")
  set(HALF_pattern "[ \t]vcvt(ph2ps|ps2ph)[ \t][^\n]*%(ymm|zmm)")
  set(BFLOAT_pattern "[ \t]vp[a-z]+[ \t][^\n]*%zmm")
else()
  message(FATAL_ERROR "check_vectorized: no vector-register pattern for variant '${VARIANT}'")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/count_asm.cmake")
foreach(kind IN ITEMS FILES PACKED HALF BFLOAT)
  foreach(file IN LISTS ${kind})
    bq_count_asm("${file}" "${${kind}_pattern}" count)
    get_filename_component(name "${file}" NAME)
    if(count LESS MIN_COUNT)
      message(FATAL_ERROR "${name}: ${count} matches of '${${kind}_pattern}' for ${VARIANT} (want >= ${MIN_COUNT}): the kernel did not vectorize as expected")
    endif()
    message(STATUS "${name}: ${count} ${kind} vector instructions for ${VARIANT}")
  endforeach()
endforeach()

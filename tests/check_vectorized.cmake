# A test that fails when a kernel silently fell back to scalar code: each given assembly file (emitted by
# the build beside each kernel object) must hold at least MIN_COUNT floating-point vector instructions
# on the variant's vector registers.
#   cmake -DVARIANT=<name> -DFILES=<a.s;b.s> [-DMIN_COUNT=8] -P check_vectorized.cmake
if(NOT MIN_COUNT)
  set(MIN_COUNT 8)
endif()
if(VARIANT STREQUAL "neon")
  set(pattern "[ \t](f[a-z]+|bsl|bif|bit)[ \t]+v[0-9]+\\.(4s|16b)") # fcmlt, fmul, bsl ... on 128-bit v-registers
elseif(VARIANT STREQUAL "sse41")
  set(pattern "[ \t][a-z]+ps[ \t][^\n]*%xmm")                      # cmpltps, blendvps, mulps ... on xmm
elseif(VARIANT STREQUAL "avx2")
  set(pattern "[ \t]v[a-z]+ps[ \t][^\n]*%ymm")                     # vcmpltps, vblendvps ... on ymm
elseif(VARIANT STREQUAL "avx512")
  set(pattern "[ \t]v[a-z]+ps[ \t][^\n]*%zmm")                     # ... on zmm
else()
  message(FATAL_ERROR "check_vectorized: no vector-register pattern for variant '${VARIANT}'")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/count_asm.cmake")
foreach(file IN LISTS FILES)
  bq_count_asm("${file}" "${pattern}" count)
  get_filename_component(name "${file}" NAME)
  if(count LESS MIN_COUNT)
    message(FATAL_ERROR "${name}: ${count} vector instructions for ${VARIANT} (want >= ${MIN_COUNT}): the kernel did not vectorize")
  endif()
  message(STATUS "${name}: ${count} vector instructions for ${VARIANT}")
endforeach()

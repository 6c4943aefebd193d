# Which kernels may use fused multiply-add: only the families built without the strict_float target feature
# on CPUs (BITQUANT_CPU_RELAXED_FAMILIES, whose polynomial LLVM contracts), never a strict one, where a
# fused operation would change a result. Each file of WITH must hold an FMA instruction, each of WITHOUT none.
#   cmake -DVARIANT=<avx2|avx512|neon> -DWITH=<a.s;...> -DWITHOUT=<b.s;...> -P check_fma.cmake
if(VARIANT STREQUAL "neon")
  set(pattern "[ \t]f(mla|mls|madd|msub|nmadd|nmsub)[ \t]")
elseif(VARIANT STREQUAL "avx2" OR VARIANT STREQUAL "avx512")
  set(pattern "[ \t]vfn?m(add|sub)[0-9]+[ps][sd][ \t]")
else()
  message(FATAL_ERROR "check_fma: variant '${VARIANT}' has no FMA instructions to look for")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/count_asm.cmake")
foreach(kind IN ITEMS WITH WITHOUT)
  foreach(file IN LISTS ${kind})
    bq_count_asm("${file}" "${pattern}" count)
    get_filename_component(name "${file}" NAME)
    if(kind STREQUAL "WITH" AND count EQUAL 0)
      message(FATAL_ERROR "${name}: no FMA instruction, but its family is built to allow them")
    elseif(kind STREQUAL "WITHOUT" AND count GREATER 0)
      message(FATAL_ERROR "${name}: ${count} FMA instructions in a kernel built with strict_float")
    endif()
    message(STATUS "${name}: ${count} FMA instructions")
  endforeach()
endforeach()

# The CPU kernels compiled without Halide's argument checks (BITQUANT_CPU_UNCHECKED_SIGNATURES): each must call
# no halide_malloc (an unchecked kernel would use a failed allocation: they must allocate nothing on the heap),
# and none may reach a Halide error function (the checks are gone, as the target asks).
#   cmake -DFILES=<a.s;...> -P check_unchecked.cmake
include("${CMAKE_CURRENT_LIST_DIR}/count_asm.cmake")
list(LENGTH FILES count)
if(count EQUAL 0)
  message(FATAL_ERROR "check_unchecked: no kernels given")
endif()
foreach(file IN LISTS FILES)
  get_filename_component(name "${file}" NAME)
  bq_count_asm("${file}" "halide_malloc" allocations)
  bq_count_asm("${file}" "halide_error_[a-z_]+" errors)
  if(allocations GREATER 0)
    message(FATAL_ERROR "${name}: calls halide_malloc, but it is compiled without checks (no_asserts)")
  endif()
  if(errors GREATER 0)
    message(FATAL_ERROR "${name}: ${errors} calls of Halide error functions: its argument checks are still there")
  endif()
endforeach()
message(STATUS "${count} unchecked kernels: no heap allocation, no argument checks")

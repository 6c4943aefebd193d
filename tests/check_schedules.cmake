# The schedule files as data (cmake -P script).
#   MODE=read: reads schedules/<TARGET>.sched from SCHEDULE_DIR as the build does and prints the sign
#              family's arguments (run by MODE=all, once per case).
#   MODE=all:  every shipped schedule file reads without error; each kind of mistake (an unknown family,
#              an unknown parameter, a value out of range or not an integer, a duplicate, a missing
#              default, a block size that is not a multiple of 32) fails with its file, line and message;
#              a family line overrides the default for that family only; and the generator turns
#              different values into different code (GENERATOR: the bq_generators executable).
cmake_minimum_required(VERSION 3.28)
if(MODE STREQUAL "read")
  set(PROJECT_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/..")
  set(BITQUANT_SCHEDULE_DIR "${SCHEDULE_DIR}")
  include("${PROJECT_SOURCE_DIR}/cmake/BitquantKernels.cmake")
  include("${PROJECT_SOURCE_DIR}/cmake/BitquantSchedules.cmake")
  bitquant_read_families(families signatures)
  bitquant_read_schedule(${TARGET} ${KIND} "${families}" schedule)
  message("sign: ${schedule_sign}")
  message("copy: ${schedule_copy}")
  return()
endif()

set(root "${CMAKE_CURRENT_LIST_DIR}/..")
set(failures 0)
set(work "${CMAKE_CURRENT_BINARY_DIR}/check_schedules")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

# Runs the reader on `content` as target `name`; expects success (want = "") or a failure whose message
# contains `want`. Leaves the output in `last_output`.
function(read_case name kind content want)
  file(WRITE "${work}/${name}.sched" "${content}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -DMODE=read "-DSCHEDULE_DIR=${work}" -DTARGET=${name} -DKIND=${kind}
                          -P "${CMAKE_CURRENT_LIST_FILE}"
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REGEX REPLACE "[ \n]+" " " message "${err}")
  set(last_output "${message}" PARENT_SCOPE)
  if(want STREQUAL "" AND NOT result EQUAL 0)
    message("FAIL ${name}: should read, but: ${message}")
    math(EXPR failures "${failures} + 1")
  elseif(NOT want STREQUAL "" AND (result EQUAL 0 OR NOT message MATCHES "${want}"))
    message("FAIL ${name}: want a failure matching '${want}', got (${result}): ${message}")
    math(EXPR failures "${failures} + 1")
  else()
    message("ok   ${name}")
  endif()
  set(failures ${failures} PARENT_SCOPE)
endfunction()

set(cpu_defaults "default.vector_multiple = 4\ndefault.unroll = 1\ndefault.parallel_min = 0\ndefault.tasks = 16\ndefault.min_chunk = 65536\n")
read_case(good cpu "# a comment\n${cpu_defaults}sign.vector_multiple = 2   # tuned\n" "")
if(NOT last_output MATCHES "sign: vector_multiple=2;unroll=1;parallel_min=0;tasks=16;min_chunk=65536 copy: vector_multiple=4;")
  message("FAIL good: the family line must override the default for sign only: ${last_output}")
  math(EXPR failures "${failures} + 1")
endif()
read_case(family cpu "${cpu_defaults}sgn.unroll = 2\n" "family.sched:6: unknown kernel family 'sgn' \\(known: default, copy, sign")
read_case(param cpu "${cpu_defaults}sign.unrol = 2\n" "param.sched:6: unknown parameter 'unrol'")
read_case(gpu_param cpu "${cpu_defaults}sign.block_size = 64\n" "unknown parameter 'block_size' for a cpu target")
read_case(range cpu "${cpu_defaults}sign.unroll = 17\n" "range.sched:6: unroll = '17' must be an integer from 1 to 16")
read_case(integer cpu "${cpu_defaults}sign.tasks = 4.5\n" "tasks = '4.5' must be an integer")
read_case(syntax cpu "${cpu_defaults}sign tasks 4\n" "syntax.sched:6: cannot read 'sign tasks 4'")
read_case(twice cpu "${cpu_defaults}sign.tasks = 4\nsign.tasks = 8\n" "twice.sched:7: sign.tasks is set twice")
read_case(missing cpu "default.vector_multiple = 4\n" "default.unroll is missing")
read_case(warp gpu "default.block_size = 100\ndefault.unroll = 1\ndefault.reduction_blocks = 8\n"
          "block_size = 100 must be a multiple of 32")
file(GLOB shipped "${root}/schedules/*.sched")
foreach(path IN LISTS shipped)
  get_filename_component(name "${path}" NAME_WE)
  set(kind cpu)
  if(name MATCHES "^(cuda|opencl)$")
    set(kind gpu)
  endif()
  file(READ "${path}" content)
  read_case(${name} ${kind} "${content}" "")
endforeach()

# Different values, different code: sign's avx2 kernel at 1 x 8 and at 4 x 8 lanes per vector step.
foreach(multiple 1 4)
  execute_process(COMMAND "${GENERATOR}" -g sign -f sign_${multiple} -e assembly -o "${work}"
                          target=x86-64-linux-sse41-avx-avx2-fma-f16c-no_runtime-user_context-strict_float
                          vector_multiple=${multiple} unroll=1 parallel_min=262144 tasks=16 min_chunk=65536
                  RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message("FAIL the generator failed with vector_multiple=${multiple}")
    math(EXPR failures "${failures} + 1")
  endif()
endforeach()
file(READ "${work}/sign_1.s" one)
file(READ "${work}/sign_4.s" four)
string(REGEX MATCHALL "vmovups[^\n]*ymm" stores_1 "${one}")
string(REGEX MATCHALL "vmovups[^\n]*ymm" stores_4 "${four}")
list(LENGTH stores_1 count_1)
list(LENGTH stores_4 count_4)
if(NOT count_4 GREATER count_1)
  message("FAIL vector_multiple 4 should unroll sign's loop further than 1 (ymm moves: ${count_4} vs ${count_1})")
  math(EXPR failures "${failures} + 1")
else()
  message("ok   generated code follows vector_multiple (ymm moves: ${count_1} at 1, ${count_4} at 4)")
endif()

if(failures GREATER 0)
  message(FATAL_ERROR "schedules: ${failures} checks failed")
endif()

# Compiles every kernel of generators/kernels.def (each family at each of its type pairs) for every CPU
# variant and every GPU backend, ahead of time, with the generator executable and the schedule parameters of
# schedules/<variant>.sched; emits each kernel's object, C header, Halide statement
# listing and, for CPU variants, assembly into the build tree (look there to check what vectorized), the
# one Halide runtime (with the GPU backends' device APIs), and the registries that runtime/dispatch.c
# (CPU variants) and runtime/gpu.c (GPU backends) include: per variant, each kernel's _argv entry point
# (the generic form Halide emits, args[] in the signature's order) at [family][input type][output type].
# Sets BITQUANT_KERNELS_<variant> to the variant's kernels as "family:function" (for the tests).
#
#   bitquant_add_kernels(GENERATOR <target> VARIANTS <names...> BACKENDS <names...> OUT_DIR <dir>
#                        OBJECTS_VAR <var> AUTOSCHEDULED_VAR <var>)
#
# Also the autoscheduled variants (BITQUANT_AUTOSCHEDULERS x BITQUANT_AUTOSCHEDULED_FAMILIES x CPU variants),
# for comparison, into AUTOSCHEDULED_VAR, with their registry bq_autoscheduled.inc.

# Halide's autoschedulers, shown beside the hand schedules, on a MAP and a GRAD family each of a cheap and
# an expensive kind. They are told to expect 2^16 elements: Adams2019's schedule then applies from 2^15 up.
set(BITQUANT_AUTOSCHEDULERS Adams2019 Mullapudi2016)
set(BITQUANT_AUTOSCHEDULED_FAMILIES sign inputdorefa approxsign swishsign)
set(BITQUANT_AUTOSCHEDULE_N 65536)

function(bitquant_read_families out_families out_signatures)
  set(table "${PROJECT_SOURCE_DIR}/generators/kernels.def")
  if(NOT CMAKE_SCRIPT_MODE_FILE) # tests/check_schedules.cmake reads the table in script mode
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${table}")
  endif()
  file(STRINGS "${table}" lines REGEX "^BQ_FAMILY\\(")
  set(families "")
  set(signatures "")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^BQ_FAMILY\\(([a-z0-9_]+), *([A-Z_]+), *([A-Z0-9]+)\\)")
      message(FATAL_ERROR "kernels.def: cannot read '${line}'")
    endif()
    list(APPEND families "${CMAKE_MATCH_1}")
    list(APPEND signatures "${CMAKE_MATCH_2}")
    set(BITQUANT_SIGNATURE_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}" PARENT_SCOPE)
  endforeach()
  set(${out_families} "${families}" PARENT_SCOPE)
  set(${out_signatures} "${signatures}" PARENT_SCOPE)
endfunction()

# The typed kernels of the table: sets <prefix>_<family> to that family's kernels as "IN:OUT" type pairs,
# and for each pair <prefix>_<family>_<IN>_<OUT>_name (the kernel's name without its variant, for example
# bq_k_sign_f32_b1) and <prefix>_<family>_<IN>_<OUT>_args (the generator arguments that set its element
# types: in_type and out_type, in kernels.def's spellings).
function(bitquant_read_kernels prefix)
  set(table "${PROJECT_SOURCE_DIR}/generators/kernels.def")
  file(STRINGS "${table}" dtype_lines REGEX "^BQ_DTYPE\\(")
  foreach(line IN LISTS dtype_lines)
    if(NOT line MATCHES "^BQ_DTYPE\\(([A-Z0-9]+), *([a-z0-9]+),")
      message(FATAL_ERROR "kernels.def: cannot read '${line}'")
    endif()
    set(spelling_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
  endforeach()
  file(STRINGS "${table}" type_lines REGEX "^BQ_TYPES\\(")
  foreach(line IN LISTS type_lines)
    if(NOT line MATCHES "^BQ_TYPES\\(([A-Z0-9]+), *\"([A-Z0-9: ]+)\"\\)")
      message(FATAL_ERROR "kernels.def: cannot read '${line}'")
    endif()
    string(REPLACE " " ";" pairs_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
    set(set_name ${CMAKE_MATCH_1})
    set(one_type_${set_name} ON) # kernels named by one type: every pair of the set has IN == OUT
    foreach(pair IN LISTS pairs_${set_name})
      string(REPLACE ":" ";" io "${pair}")
      list(GET io 0 in)
      list(GET io 1 out)
      if(NOT in STREQUAL out)
        set(one_type_${set_name} OFF)
      endif()
    endforeach()
  endforeach()
  file(STRINGS "${table}" family_lines REGEX "^BQ_FAMILY\\(")
  foreach(line IN LISTS family_lines)
    string(REGEX MATCH "^BQ_FAMILY\\(([a-z0-9_]+), *([A-Z_]+), *([A-Z0-9]+)\\)" matched "${line}")
    set(family ${CMAKE_MATCH_1})
    set(set ${CMAKE_MATCH_3})
    if(NOT DEFINED pairs_${set})
      message(FATAL_ERROR "kernels.def: '${line}' names an unknown type set")
    endif()
    set(${prefix}_${family} ${pairs_${set}} PARENT_SCOPE)
    foreach(pair IN LISTS pairs_${set})
      string(REPLACE ":" ";" io "${pair}")
      list(GET io 0 in)
      list(GET io 1 out)
      set(name "bq_k_${family}_${spelling_${in}}")
      if(NOT one_type_${set})
        string(APPEND name "_${spelling_${out}}")
      endif()
      set(args "in_type=${spelling_${in}}" "out_type=${spelling_${out}}")
      set(${prefix}_${family}_${in}_${out}_name "${name}" PARENT_SCOPE)
      set(${prefix}_${family}_${in}_${out}_args "${args}" PARENT_SCOPE)
    endforeach()
  endforeach()
endfunction()

function(bitquant_add_kernels)
  cmake_parse_arguments(ARG "" "GENERATOR;OUT_DIR;OBJECTS_VAR;AUTOSCHEDULED_VAR" "VARIANTS;BACKENDS" ${ARGN})
  cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
  bitquant_read_families(families signatures)
  bitquant_read_kernels(kernel)
  set(host_generators "")
  if(TARGET bitquant_host_generators)
    set(host_generators bitquant_host_generators)
  endif()
  file(MAKE_DIRECTORY "${ARG_OUT_DIR}")
  set(objects "")
  set(includes "")
  set(tables "")
  set(variant_rows "")
  set(gpu_includes "")
  set(gpu_tables "")
  set(backend_rows "")
  foreach(variant IN LISTS ARG_VARIANTS ARG_BACKENDS)
    set(emit object,c_header,assembly,stmt)
    set(suffixes .o .h .s .stmt)
    set(kind cpu)
    if(variant IN_LIST ARG_BACKENDS)
      set(emit object,c_header,stmt) # the assembly would be the host half only
      set(suffixes .o .h .stmt)
      set(kind gpu)
    endif()
    # A changed schedule file reconfigures; only the kernels whose arguments changed are generated again.
    bitquant_read_schedule(${variant} ${kind} "${families}" schedule)
    set(variant_includes "")
    set(variant_kernels "")
    set(table "static const bq_kernel_fn kernels_${variant}[BQ_FAMILY_COUNT][BQ_DTYPE_COUNT][BQ_DTYPE_COUNT] = {\n")
    foreach(family IN LISTS families)
      bitquant_kernel_target(target_string ${variant} ${kind} ${family})
      foreach(pair IN LISTS kernel_${family})
        string(REPLACE ":" ";" io "${pair}")
        list(GET io 0 in)
        list(GET io 1 out)
        set(fn "${kernel_${family}_${in}_${out}_name}_${variant}")
        list(TRANSFORM suffixes PREPEND "${ARG_OUT_DIR}/${fn}" OUTPUT_VARIABLE outputs)
        add_custom_command(
          OUTPUT ${outputs}
          COMMAND ${ARG_GENERATOR} -g ${family} -f ${fn} -e ${emit}
                  -o "${ARG_OUT_DIR}" target=${target_string} ${kernel_${family}_${in}_${out}_args} ${schedule_${family}}
          DEPENDS ${ARG_GENERATOR} "$<TARGET_FILE:${ARG_GENERATOR}>" ${host_generators}
          COMMENT "Generating ${fn} (${target_string})"
          VERBATIM)
        list(APPEND objects "${ARG_OUT_DIR}/${fn}.o")
        list(APPEND variant_kernels "${family}:${fn}")
        string(APPEND variant_includes "#include \"${fn}.h\"\n")
        string(APPEND table "    [BQ_FAMILY_${family}][BQ_${in}][BQ_${out}] = ${fn}_argv,\n")
      endforeach()
    endforeach()
    set(BITQUANT_KERNELS_${variant} "${variant_kernels}" PARENT_SCOPE)
    string(APPEND table "};\n")
    if(variant IN_LIST ARG_BACKENDS)
      string(APPEND gpu_includes "${variant_includes}")
      string(APPEND gpu_tables "${table}")
      string(TOUPPER "${variant}" upper)
      string(APPEND backend_rows "    {BQ_BACKEND_${upper}, &kernels_${variant}, &bq_${variant}_device},\n")
    else()
      string(APPEND includes "${variant_includes}")
      string(APPEND tables "${table}")
      string(APPEND variant_rows "    {\"${variant}\", &kernels_${variant}},\n")
    endif()
  endforeach()

  # One runtime for everything, with the device API of each GPU backend compiled in.
  set(runtime_target "${BITQUANT_RUNTIME_TARGET}")
  foreach(backend IN LISTS ARG_BACKENDS)
    string(APPEND runtime_target "-${backend}")
  endforeach()
  set(runtime_object "${ARG_OUT_DIR}/bq_halide_runtime.o")
  add_custom_command(
    OUTPUT "${runtime_object}"
    COMMAND ${ARG_GENERATOR} -r bq_halide_runtime -e object -o "${ARG_OUT_DIR}" target=${runtime_target}
    DEPENDS ${ARG_GENERATOR} "$<TARGET_FILE:${ARG_GENERATOR}>" ${host_generators}
    COMMENT "Generating the Halide runtime (${runtime_target})"
    VERBATIM)
  list(APPEND objects "${runtime_object}")

  set(registry "${ARG_OUT_DIR}/bq_registry.inc")
  file(CONFIGURE OUTPUT "${registry}" CONTENT
"/* Generated by cmake/BitquantKernels.cmake from generators/kernels.def: do not edit. */
${includes}
${tables}
static const bq_variant bq_variants[] = {
${variant_rows}};
")
  # Autoscheduled variants, for comparison only (bitquant bench, and a conformance test): Halide's
  # autoschedulers on a few elementwise families, per CPU variant, in a library of their own.
  set(auto_objects "")
  set(auto_includes "")
  set(auto_rows "")
  foreach(variant IN LISTS ARG_VARIANTS)
    bitquant_read_schedule(${variant} cpu "${families}" schedule)
    foreach(scheduler IN LISTS BITQUANT_AUTOSCHEDULERS)
      string(TOLOWER "${scheduler}" lower)
      foreach(family IN LISTS BITQUANT_AUTOSCHEDULED_FAMILIES)
        bitquant_kernel_target(target_string ${variant} cpu ${family})
        set(fn "${kernel_${family}_F32_F32_name}_${variant}_${lower}")
        add_custom_command(
          OUTPUT "${ARG_OUT_DIR}/${fn}.o" "${ARG_OUT_DIR}/${fn}.h" "${ARG_OUT_DIR}/${fn}.s" "${ARG_OUT_DIR}/${fn}.stmt"
          COMMAND ${ARG_GENERATOR} -p "$<TARGET_FILE:Halide::${scheduler}>" -g ${family} -f ${fn}
                  -e object,c_header,assembly,stmt -o "${ARG_OUT_DIR}" target=${target_string}
                  ${kernel_${family}_F32_F32_args} ${schedule_${family}}
                  autoschedule=${scheduler} n_estimate=${BITQUANT_AUTOSCHEDULE_N} autoschedule_parallelism=${cores}
          DEPENDS ${ARG_GENERATOR} "$<TARGET_FILE:${ARG_GENERATOR}>" ${host_generators}
          COMMENT "Generating ${fn} (${scheduler}, ${target_string})"
          VERBATIM)
        list(APPEND auto_objects "${ARG_OUT_DIR}/${fn}.o")
        string(APPEND auto_includes "#include \"${fn}.h\"\n")
        string(APPEND auto_rows "    {\"${variant}\", \"${family}\", \"${scheduler}\", ${fn}_argv},\n")
      endforeach()
    endforeach()
  endforeach()
  file(CONFIGURE OUTPUT "${ARG_OUT_DIR}/bq_autoscheduled.inc" CONTENT
"/* Generated by cmake/BitquantKernels.cmake: do not edit. */
${auto_includes}
static const bq_autoscheduled_kernel bq_autoscheduled[] = {
${auto_rows}    {NULL, NULL, NULL, NULL}, /* the end */
};
")
  set(${ARG_AUTOSCHEDULED_VAR} "${auto_objects}" PARENT_SCOPE)

  file(CONFIGURE OUTPUT "${ARG_OUT_DIR}/bq_gpu_registry.inc" CONTENT
"/* Generated by cmake/BitquantKernels.cmake from generators/kernels.def: do not edit. */
${gpu_includes}
${gpu_tables}
static const bq_gpu_backend bq_gpu_backends[] = {
${backend_rows}    {BQ_BACKEND_COUNT, NULL, NULL}, /* the end */
};
")
  set(${ARG_OBJECTS_VAR} "${objects}" PARENT_SCOPE)
endfunction()

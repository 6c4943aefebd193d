# Finds the pinned Halide wheel's CMake packages (Halide 21 from PyPI keeps them in lib64/cmake, where CMake does
# not search by itself): bitquant's own build and, installed, the build of a project that compiles its own
# quantizers (bitquant_add_quantizers) use it.
#
#   bitquant_locate_halide()
# sets Halide_DIR and HalideHelpers_DIR (cache) from Halide_ROOT (a variable or the environment) where they are
# not set already; without Halide_ROOT it asks BITQUANT_PYTHON (default: python3 on PATH) where its halide
# package is (the wheel that interpreter would import; it is not imported). Nothing is found here: find_package does that.
macro(bitquant_locate_halide)
  if(NOT Halide_ROOT AND DEFINED ENV{Halide_ROOT})
    set(Halide_ROOT "$ENV{Halide_ROOT}")
  endif()
  if(NOT Halide_ROOT AND NOT Halide_DIR)
    if(NOT BITQUANT_PYTHON)
      find_program(BITQUANT_PYTHON python3)
    endif()
    if(BITQUANT_PYTHON)
      execute_process(COMMAND "${BITQUANT_PYTHON}" -c
                      "import importlib.util; print(importlib.util.find_spec('halide').submodule_search_locations[0])"
                      OUTPUT_VARIABLE bq_python_halide OUTPUT_STRIP_TRAILING_WHITESPACE
                      RESULT_VARIABLE bq_python_result ERROR_QUIET)
      if(bq_python_result EQUAL 0)
        set(Halide_ROOT "${bq_python_halide}")
      endif()
    endif()
  endif()
  foreach(bq_package Halide HalideHelpers)
    if(NOT ${bq_package}_DIR AND Halide_ROOT)
      foreach(bq_libdir lib64 lib)
        if(EXISTS "${Halide_ROOT}/${bq_libdir}/cmake/${bq_package}/${bq_package}Config.cmake")
          set(${bq_package}_DIR "${Halide_ROOT}/${bq_libdir}/cmake/${bq_package}" CACHE PATH "Halide's ${bq_package} package")
          break()
        endif()
      endforeach()
    endif()
  endforeach()
endmacro()

# Configures <source> into <build> for the build machine, with the generator and make program of this build
# and the Halide packages found here, and without the cross toolchain that the environment may name (CC,
# CXX): the generators of a cross build run here. Extra arguments go to cmake; a failure stops with `what`.
function(bitquant_configure_host_build source build what)
  set(args -S "${source}" -B "${build}" -G "${CMAKE_GENERATOR}" -DCMAKE_BUILD_TYPE=Release
      "-DHalide_DIR=${Halide_DIR}" "-DHalideHelpers_DIR=${HalideHelpers_DIR}" ${ARGN})
  if(CMAKE_MAKE_PROGRAM)
    list(APPEND args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" -E env --unset=CC --unset=CXX "${CMAKE_COMMAND}" ${args}
                  RESULT_VARIABLE result OUTPUT_QUIET)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "bitquant: configuring ${what} for the build machine in ${build} failed")
  endif()
endfunction()

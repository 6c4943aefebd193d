# The Halide generators: built for and run on the build machine only. Halide comes from the pinned PyPI
# wheel: the building interpreter's under pip, else .venv's (scripts/bootstrap.sh), unless Halide_ROOT (or
# Halide_DIR and HalideHelpers_DIR) point elsewhere. A cross build (for example the aarch64 preset) cannot
# run generators built with its own compiler, so it first makes, or reuses, a host build of the generators
# alone in <build>/host-generators, and imports them from there (Halide's two-build flow).
#
# Defines BITQUANT_GENERATOR: the generator executable target for bitquant_add_kernels().

if(NOT Halide_ROOT AND DEFINED ENV{Halide_ROOT})
  set(Halide_ROOT "$ENV{Halide_ROOT}")
endif()
# Under pip (scikit-build-core) Halide is a build requirement, installed wherever the building interpreter
# finds it (an isolated build environment, not .venv). The wheel's own share/cmake shims would look in the
# target interpreter's site-packages instead, so ask that interpreter where the package is.
if(NOT Halide_ROOT AND SKBUILD)
  set(BITQUANT_PYTHON "${Python_EXECUTABLE}")
elseif(NOT Halide_ROOT AND EXISTS "${PROJECT_SOURCE_DIR}/.venv/bin/python3")
  set(BITQUANT_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python3")
endif()
include(cmake/BitquantHalide.cmake)
bitquant_locate_halide()
if(SKBUILD AND NOT Halide_DIR)
  message(FATAL_ERROR "bitquant: the building interpreter (${Python_EXECUTABLE}) has no halide package: "
                      "pyproject.toml's build requirements name halide==21.0.0")
endif()
find_package(HalideHelpers 21 REQUIRED)

set(generator_package bitquant-halide_generators)
# -Dbitquant-halide_generators_ROOT=<host build> uses generators built elsewhere instead.
if(CMAKE_CROSSCOMPILING AND NOT DEFINED CACHE{${generator_package}_ROOT})
  set(host_dir "${PROJECT_BINARY_DIR}/host-generators")
  message(STATUS "bitquant: building the Halide generators for the build machine in ${host_dir}")
  bitquant_configure_host_build("${PROJECT_SOURCE_DIR}" "${host_dir}" "the Halide generators"
                                -DBITQUANT_GENERATORS_ONLY=ON)
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${host_dir}" --target ${generator_package}
                  RESULT_VARIABLE host_result OUTPUT_QUIET)
  if(NOT host_result EQUAL 0)
    message(FATAL_ERROR "bitquant: building the host generators in ${host_dir} failed")
  endif()
  set(${generator_package}_ROOT "${host_dir}")
  # Rebuild them before any kernel when their sources change.
  add_custom_target(bitquant_host_generators
    COMMAND "${CMAKE_COMMAND}" --build "${host_dir}" --target ${generator_package}
    BYPRODUCTS "${host_dir}/bq_generators"
    COMMENT "Updating the host generators" VERBATIM)
endif()

add_halide_generator(bq_generators
  PACKAGE_NAME ${generator_package}
  SOURCES generators/elementwise_generator.cpp generators/quantize_math.cpp schedules/elementwise_schedule.cpp)
set(BITQUANT_GENERATOR bitquant::halide_generators::bq_generators)

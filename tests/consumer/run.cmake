# Installs gumbel from the build tree into a fresh prefix, then builds and runs the consumer
# program three ways: find_package against that prefix only, pkg-config against that prefix
# (compiled by hand), and FetchContent of the source tree. Variables: BUILD_DIR, SOURCE_DIR
# (this folder), GUMBEL_SOURCE_DIR, CXX, EXPECTED_VERSION, WORK_DIR, and WAYS (comma-separated
# find_package, pkg-config, fetchcontent; all three when unset).
cmake_minimum_required(VERSION 3.16)
file(REMOVE_RECURSE "${WORK_DIR}")
if(NOT DEFINED WAYS)
  set(WAYS "find_package,pkg-config,fetchcontent")
endif()
string(REPLACE "," ";" WAYS "${WAYS}")
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
if("find_package" IN_LIST WAYS)
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -DCMAKE_BUILD_TYPE=Release
      "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
  run("${WORK_DIR}/build/consumer")
endif()
# pkg-config: the flags of the installed gumbel.pc (and Eigen's), then a plain compile.
if("pkg-config" IN_LIST WAYS)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env
                          "PKG_CONFIG_PATH=${WORK_DIR}/prefix/share/pkgconfig"
                          pkg-config --cflags gumbel
                  OUTPUT_VARIABLE cflags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags gumbel failed (${rc})")
  endif()
  if(NOT cflags MATCHES "${WORK_DIR}/prefix/share/pkgconfig/../../include")
    message(FATAL_ERROR "pkg-config gives '${cflags}', not the installed prefix's include folder")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -E env
                          "PKG_CONFIG_PATH=${WORK_DIR}/prefix/share/pkgconfig"
                          pkg-config --modversion gumbel
                  OUTPUT_VARIABLE version OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT version STREQUAL EXPECTED_VERSION)
    message(FATAL_ERROR "pkg-config says version '${version}', the project ${EXPECTED_VERSION}")
  endif()
  # Eigen's headers as system headers (their own warnings are not ours); gumbel's stay -I.
  execute_process(COMMAND pkg-config --cflags-only-I eigen3 OUTPUT_VARIABLE eigen_flags
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  string(REPLACE "-I" "-isystem " eigen_system "${eigen_flags}")
  separate_arguments(cflags UNIX_COMMAND "${eigen_system} ${cflags}")
  run(${CXX} -std=c++17 -O1 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
      -Werror ${cflags} "${SOURCE_DIR}/main.cpp" -o "${WORK_DIR}/consumer_pkgconfig")
  run("${WORK_DIR}/consumer_pkgconfig")
endif()

# FetchContent of the source tree, as a subproject.
if("fetchcontent" IN_LIST WAYS)
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/fetchcontent" -B "${WORK_DIR}/fetchcontent"
      -DCMAKE_BUILD_TYPE=Release "-DGUMBEL_SOURCE_DIR=${GUMBEL_SOURCE_DIR}")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/fetchcontent")
  run("${WORK_DIR}/fetchcontent/consumer")
endif()

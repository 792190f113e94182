# The memory budget of the default VAE run: vae_mnist trains one epoch with its default settings
# on synthetic data of MNIST's sizes (60,000 + 10,000 images of 28 x 28, made by make_idx) under
# GNU time, and the test fails when the peak resident memory exceeds BUDGET_MIB.
#   cmake -DVAE=... -DMAKE_IDX=... -DWORK=... -DBUDGET_MIB=120 -P check_vae_memory.cmake
if(NOT EXISTS /usr/bin/time)
  message(FATAL_ERROR "/usr/bin/time (Debian package time) is needed to measure the peak memory")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/make_mnist.cmake)
file(REMOVE_RECURSE ${WORK})
make_mnist(${WORK}/data 60000 10000 28)
execute_process(COMMAND /usr/bin/time -f "peak %M KiB" ${VAE} --data-dir ${WORK}/data
                        --output-dir ${WORK}/out --epochs 1 --quiet
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "vae_mnist failed (${rc}):\n${out}\n${err}")
endif()
if(NOT err MATCHES "peak ([0-9]+) KiB")
  message(FATAL_ERROR "no peak memory in GNU time's output:\n${err}")
endif()
math(EXPR peak_mib "${CMAKE_MATCH_1} / 1024")
message(STATUS "vae_mnist, one epoch of MNIST's size: peak resident memory ${peak_mib} MiB "
               "(budget ${BUDGET_MIB} MiB)\n${out}")
if(peak_mib GREATER BUDGET_MIB)
  message(FATAL_ERROR "peak resident memory ${peak_mib} MiB is above the budget of "
                      "${BUDGET_MIB} MiB")
endif()
file(REMOVE_RECURSE ${WORK})

# vae_mnist_mpi end to end on small synthetic IDX files: the losses of 2 and 3 ranks equal
# those of one process with the same blocks (threads), bit for bit; a run resumed on another
# rank count continues exactly; a rank that fails makes the whole run stop with that rank's
# error (no rank left waiting), and the checkpoint of the last finished epoch stays whole.
#   cmake -DVAE=... -DVAE_MPI=... -DMAKE_IDX=... -DMPIEXEC=... -DMPIEXEC_FLAGS=a,b -DWORK=...
#         -P check_vae_mpi.cmake
string(REPLACE "," ";" MPIEXEC_FLAGS "${MPIEXEC_FLAGS}")
include(${CMAKE_CURRENT_LIST_DIR}/make_mnist.cmake)
file(REMOVE_RECURSE ${WORK})
make_mnist(${WORK}/data 300 60 8)
file(MAKE_DIRECTORY ${WORK}/bad)
# A data folder whose training images are cut short: the reader refuses it.
file(COPY ${WORK}/data/train-labels-idx1-ubyte ${WORK}/data/t10k-images-idx3-ubyte
          ${WORK}/data/t10k-labels-idx1-ubyte DESTINATION ${WORK}/bad)
execute_process(COMMAND head -c 1000 ${WORK}/data/train-images-idx3-ubyte
                OUTPUT_FILE ${WORK}/bad/train-images-idx3-ubyte)

set(common --latents 4 --classes 3 --batch-size 30 --lr 0.003 --quiet --threads 1)
set(ENV{OMP_NUM_THREADS} 1)

# Runs the program (with `ranks` > 0 under mpirun) and returns its output and exit code.
function(train out ranks)
  if(ranks EQUAL 0)
    set(command ${VAE})
  else()
    set(command ${MPIEXEC} ${MPIEXEC_FLAGS} -np ${ranks} ${VAE_MPI})
  endif()
  execute_process(COMMAND ${command} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE output
                  ERROR_VARIABLE errors TIMEOUT 120)
  set(${out}_rc "${rc}" PARENT_SCOPE)
  set(${out}_output "${output}\n${errors}" PARENT_SCOPE)
endfunction()

# The loss columns of a run's loss.csv (training seconds differ between runs).
function(losses out dir)
  file(STRINGS ${dir}/loss.csv lines)
  set(result "")
  foreach(line IN LISTS lines)
    string(REPLACE "," ";" fields "${line}")
    list(SUBLIST fields 0 4 kept)
    list(APPEND result "${kept}")
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

function(expect_ok name)
  if(NOT ${name}_rc EQUAL 0)
    message(FATAL_ERROR "${name} failed (${${name}_rc}):\n${${name}_output}")
  endif()
endfunction()

foreach(case "2;0;2" "2;2;2" "3;0;3" "3;3;3" "3;2;3u")
  list(GET case 0 blocks)
  list(GET case 1 ranks)
  list(GET case 2 tag)
  train(run ${ranks} ${common} --blocks ${blocks} --epochs 2 --data-dir ${WORK}/data
        --output-dir ${WORK}/out_${blocks}_${ranks})
  expect_ok(run)
  losses(got_${tag} ${WORK}/out_${blocks}_${ranks})
  if(ranks GREATER 0)
    string(REGEX REPLACE "u$" "" blocks_tag "${tag}")
    losses(expected ${WORK}/out_${blocks}_0)
    if(NOT got_${tag} STREQUAL expected)
      message(FATAL_ERROR "${ranks} ranks, ${blocks} blocks: losses ${got_${tag}}, one process: "
                          "${expected}")
    endif()
  endif()
endforeach()
message(STATUS "2 and 3 ranks (and 2 ranks over 3 blocks) give one process's losses: ${got_3u}")

# One epoch on 2 ranks, resumed to two on 3 ranks: the straight run's losses.
train(part 2 ${common} --blocks 3 --epochs 1 --data-dir ${WORK}/data --output-dir ${WORK}/resumed)
expect_ok(part)
train(rest 3 ${common} --blocks 3 --epochs 2 --data-dir ${WORK}/data --output-dir ${WORK}/resumed
      --resume)
expect_ok(rest)
losses(resumed ${WORK}/resumed)
if(NOT resumed STREQUAL got_3)
  message(FATAL_ERROR "resumed on 3 ranks: ${resumed}, straight: ${got_3}")
endif()

# More ranks than blocks: refused, on every rank, before any work.
train(few 3 ${common} --blocks 2 --epochs 1 --data-dir ${WORK}/data --output-dir ${WORK}/few)
if(few_rc EQUAL 0 OR NOT few_output MATCHES "blocks = 2 is below the number of ranks, 3")
  message(FATAL_ERROR "3 ranks over 2 blocks were not refused (${few_rc}):\n${few_output}")
endif()

# Ranks started with other settings: one message from rank 0 naming the setting and the ranks,
# every rank stopped before any work (different batch sizes used to wait for ever).
foreach(case "--seed;7;8" "--batch-size;30;20" "--blocks;2;3")
  list(GET case 0 option)
  list(GET case 1 first)
  list(GET case 2 second)
  execute_process(COMMAND ${MPIEXEC} ${MPIEXEC_FLAGS} -np 1 ${VAE_MPI} ${common} --blocks 2
                          --epochs 1 --data-dir ${WORK}/data --output-dir ${WORK}/mixed
                          ${option} ${first}
                          : -np 1 ${VAE_MPI} ${common} --blocks 2 --epochs 1
                          --data-dir ${WORK}/data --output-dir ${WORK}/mixed ${option} ${second}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE errors TIMEOUT 60)
  set(expected "${option} differs between the ranks: ${first} on rank 0; ${second} on rank 1")
  if(second LESS first)
    set(expected "${option} differs between the ranks: ${second} on rank 1; ${first} on rank 0")
  endif()
  string(FIND "${errors}" "${expected}" at)
  if(rc EQUAL 0 OR at EQUAL -1 OR EXISTS ${WORK}/mixed/checkpoint.npz)
    message(FATAL_ERROR "ranks with ${option} ${first} and ${second} were not stopped with one "
                        "message (${rc}):
${output}
${errors}")
  endif()
  string(REGEX MATCHALL "differs between the ranks" said "${errors}")
  list(LENGTH said times)
  if(NOT times EQUAL 1)
    message(FATAL_ERROR "the disagreement was reported ${times} times:
${errors}")
  endif()
endforeach()
message(STATUS "ranks started with other --seed, --batch-size or --blocks stop with one message")

# Rank 1 reads a corrupt file while rank 0 reads good data and resumes a finished epoch: the
# run stops with rank 1's error instead of waiting, the checkpoint of epoch 1 is left as it was,
# and a resume from it continues exactly.
train(first 2 ${common} --blocks 2 --epochs 1 --data-dir ${WORK}/data --output-dir ${WORK}/fail)
expect_ok(first)
file(SHA256 ${WORK}/fail/checkpoint.npz before)
execute_process(COMMAND ${MPIEXEC} ${MPIEXEC_FLAGS} -np 1 ${VAE_MPI} ${common} --blocks 2
                        --epochs 2 --data-dir ${WORK}/data --output-dir ${WORK}/fail --resume
                        : -np 1 ${VAE_MPI} ${common} --blocks 2 --epochs 2
                        --data-dir ${WORK}/bad --output-dir ${WORK}/fail --resume
                RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE errors TIMEOUT 120)
if(rc EQUAL 0 OR NOT errors MATCHES "vae_mnist_mpi \\(rank 1\\): [^\n]*train-images-idx3-ubyte")
  message(FATAL_ERROR "a failing rank did not stop the run with its error (${rc}):\n${output}\n"
                      "${errors}")
endif()
file(SHA256 ${WORK}/fail/checkpoint.npz after)
if(NOT before STREQUAL after)
  message(FATAL_ERROR "the checkpoint changed in a run that failed")
endif()
train(again 2 ${common} --blocks 2 --epochs 2 --data-dir ${WORK}/data --output-dir ${WORK}/fail
      --resume)
expect_ok(again)
losses(continued ${WORK}/fail)
if(NOT continued STREQUAL got_2)
  message(FATAL_ERROR "resumed after the failure: ${continued}, straight: ${got_2}")
endif()
message(STATUS "a failing rank stops every rank with its error; the checkpoint stays whole")
file(REMOVE_RECURSE ${WORK})

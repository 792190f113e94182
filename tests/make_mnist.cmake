# make_mnist(dir train test side): synthetic MNIST-like IDX files in `dir` (train-* and t10k-*,
# `train` and `test` images of side x side) made by ${MAKE_IDX}, for the cmake -P checks.
function(make_mnist dir train test side)
  file(MAKE_DIRECTORY ${dir})
  foreach(split "train;${train}" "t10k;${test}")
    list(GET split 0 prefix)
    list(GET split 1 count)
    execute_process(COMMAND ${MAKE_IDX} ${dir} ${prefix} ${count} ${side} ${side}
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "make_idx ${prefix} failed: ${rc}")
    endif()
  endforeach()
endfunction()

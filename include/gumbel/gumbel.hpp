// gumbel: reverse-mode automatic differentiation over Eigen matrices, with the Gumbel-Softmax
// family of discrete relaxations. Include this one header for everything.
#pragma once

#include "gumbel/core/arena.hpp"
#include "gumbel/core/error.hpp"
#include "gumbel/core/parameter.hpp"
#include "gumbel/core/tape.hpp"
#include "gumbel/core/types.hpp"

#include "gumbel/ops/activation.hpp"
#include "gumbel/ops/elementwise.hpp"
#include "gumbel/ops/indexing.hpp"
#include "gumbel/ops/linalg.hpp"
#include "gumbel/ops/loss.hpp"
#include "gumbel/ops/reduce.hpp"
#include "gumbel/ops/reshape.hpp"
#include "gumbel/ops/slice.hpp"
#include "gumbel/ops/softmax.hpp"

#include "gumbel/core/parallel.hpp"
#include "gumbel/random/generator.hpp"
#include "gumbel/random/gumbel_noise.hpp"
#include "gumbel/random/philox.hpp"

#include "gumbel/relax/binary_concrete.hpp"
#include "gumbel/relax/concrete.hpp"
#include "gumbel/relax/gumbel_rao.hpp"
#include "gumbel/relax/gumbel_softmax.hpp"
#include "gumbel/relax/hard_concrete.hpp"
#include "gumbel/relax/perturb.hpp"
#include "gumbel/relax/schedule.hpp"
#include "gumbel/relax/score_function.hpp"
#include "gumbel/relax/straight_through.hpp"
#include "gumbel/relax/subset.hpp"
#include "gumbel/relax/top_k.hpp"

#include "gumbel/eval/bounds.hpp"

#include "gumbel/nn/concrete_selector.hpp"
#include "gumbel/nn/dropout.hpp"
#include "gumbel/nn/l0_gate.hpp"
#include "gumbel/nn/linear.hpp"
#include "gumbel/nn/module.hpp"
#include "gumbel/nn/sequential.hpp"
#include "gumbel/optim/adam.hpp"
#include "gumbel/optim/clip.hpp"
#include "gumbel/optim/lr_scheduler.hpp"
#include "gumbel/optim/optimizer.hpp"
#include "gumbel/optim/sgd.hpp"
#include "gumbel/parallel/block_tree.hpp"
#include "gumbel/parallel/chunk_schedule.hpp"
#include "gumbel/parallel/data_parallel.hpp"

#include "gumbel/io/npz.hpp"
#include "gumbel/io/save.hpp"

#include "gumbel/check/gradcheck.hpp"

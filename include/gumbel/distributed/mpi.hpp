// Data-parallel training across processes on MPI: each rank computes some of the fixed blocks
// of every global batch (parallel/block_tree.hpp), the blocks' gradients are summed across
// ranks in buckets that start while backward still runs, and every rank ends with the same
// parameters. Not part of <gumbel/gumbel.hpp>: include it where MPI is linked (gumbel::mpi).
#pragma once

#include "gumbel/distributed/mpi_basics.hpp"
#include "gumbel/distributed/mpi_data_parallel.hpp"

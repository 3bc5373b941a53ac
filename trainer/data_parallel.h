// Data parallelism over c10d: GradientReducers backed by the process groups
// of model/parallel/communicator.h, ProcessGroupGloo (CPU tensors) or
// ProcessGroupNCCL (CUDA tensors, where LibTorch was built with NCCL and
// nccl.h is installed: LVS_HAVE_C10D_NCCL).
//
// Two shapes of group: one rank per process (JoinGlooGroup, rendezvous
// through a TCPStore hosted by rank 0; lvs-trainer's local mode), or all
// ranks in one process (CreateLocalGroup, a HashStore; each rank is driven
// by its own thread; how lvs-trainer runs a leased job with
// data_parallel > 1 on the devices of one node). Gradients are flattened into
// one buffer, summed with one all-reduce, divided by the group size and copied
// back, after the accumulation over tasks and micro-batches (once per optimiser
// step).
//
// Built only where LibTorch exposes c10d with Gloo and the Gloo headers are
// installed (Debian: libgloo-dev); LVS_HAVE_C10D_GLOO says so.
//
// Thread-safety: one thread per reducer; every rank calls AllReduceMean the
// same number of times with the same shapes.
#ifndef LVS_TRAINER_DATA_PARALLEL_H_
#define LVS_TRAINER_DATA_PARALLEL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer/trainer.h"

namespace lvs::trainer {

// Where the group meets.
struct DataParallelOptions {
  std::string host = "127.0.0.1";  // Rank 0's address (TCPStore host).
  uint16_t port = 29500;           // TCPStore port.
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{60000};
};

// Joins the group (blocks until every rank has joined or the timeout) and
// returns its gradient reducer. Errors: UNAVAILABLE when the rendezvous
// fails, INVALID_ARGUMENT for a bad rank/size.
absl::StatusOr<std::unique_ptr<GradientReducer>> JoinGlooGroup(
    const DataParallelOptions& options);

// Which collective library an in-process group uses.
enum class LocalBackend { kGloo, kNccl };

// Creates an in-process group of `world_size` ranks (reducer r is rank r).
// kGloo reduces CPU tensors (CUDA tensors are staged through the host);
// kNccl needs one CUDA device per rank. Every rank must be driven by its own
// thread: a collective returns when all ranks have called it or after
// `timeout`. Errors: INVALID_ARGUMENT for a size below 1, FAILED_PRECONDITION
// when the backend is not built in, UNAVAILABLE when the group cannot form.
absl::StatusOr<std::vector<std::unique_ptr<GradientReducer>>> CreateLocalGroup(
    int world_size, LocalBackend backend, std::chrono::milliseconds timeout);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_DATA_PARALLEL_H_

// Multi-process data parallelism over c10d: a GradientReducer backed by
// ProcessGroupGloo (CPU tensors; rendezvous through a TCPStore hosted by
// rank 0). Gradients are flattened into one buffer, summed with one
// all-reduce, divided by the group size and copied back, after the
// accumulation over tasks and micro-batches (once per optimiser step).
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

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_DATA_PARALLEL_H_

// Collectives over a c10d process group for the ranks of one model or one
// training job: ProcessGroupGloo (CPU tensors; CUDA tensors are staged
// through the host) or ProcessGroupNCCL (one CUDA device per rank, where
// LibTorch was built with NCCL and nccl.h is installed: LVS_HAVE_C10D_NCCL).
//
// Two shapes of group: ranks as threads of one process (CreateLocalGroup, a
// HashStore; lvs-worker --devices, the trainer's in-process ranks), or one
// rank per process (JoinGlooGroup, a TCPStore hosted by rank 0).
//
// Built where LibTorch exposes c10d with Gloo and the Gloo headers are
// installed (Debian: libgloo-dev); LVS_HAVE_C10D_GLOO says so. This header
// keeps c10d out of its includes.
//
// Thread-safety: one thread per Communicator; every rank of a group calls the
// same collectives in the same order with the same shapes. A collective
// returns when every rank has called it, or fails after the group's timeout.
#ifndef LVS_MODEL_PARALLEL_COMMUNICATOR_H_
#define LVS_MODEL_PARALLEL_COMMUNICATOR_H_

#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lvs::parallel {

// Which collective library a group uses.
enum class Backend { kGloo, kNccl };

// One rank's handle on its group. Collectives throw c10::Error (or
// std::runtime_error from the library) on failure; callers turn them into a
// Status at their boundary.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Backend backend() const = 0;

  // Sums `tensor` over the ranks in place.
  virtual void AllReduceSum(torch::Tensor& tensor) = 0;
  // [size * n, ...] -> [size * n, ...]: block j of the input goes to rank j,
  // block i of the output came from rank i.
  virtual torch::Tensor AllToAll(const torch::Tensor& input) = 0;
  // [n, ...] on every rank -> [size * n, ...] in rank order.
  virtual torch::Tensor AllGather(const torch::Tensor& input) = 0;
};

// Creates an in-process group of `size` ranks (element r is rank r). Every
// rank must then be driven by its own thread. Errors: INVALID_ARGUMENT for a
// size below 1, FAILED_PRECONDITION when the backend is not built in,
// UNAVAILABLE when the group cannot form.
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateLocalGroup(
    int size, Backend backend, std::chrono::milliseconds timeout);

// Joins a Gloo group of one rank per process meeting at rank 0's TCPStore
// `host`:`port` (blocks until every rank has joined or the timeout).
// Errors: INVALID_ARGUMENT for a bad rank/size, UNAVAILABLE when the
// rendezvous fails.
absl::StatusOr<std::unique_ptr<Communicator>> JoinGlooGroup(
    const std::string& host, uint16_t port, int rank, int size,
    std::chrono::milliseconds timeout);

// True when this build has c10d with Gloo (NCCL: `backend` kNccl).
bool HasBackend(Backend backend);

}  // namespace lvs::parallel

#endif  // LVS_MODEL_PARALLEL_COMMUNICATOR_H_

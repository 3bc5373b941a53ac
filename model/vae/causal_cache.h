// The time caches of the causal 3D convolutions for one decode or encode
// pass: for every causal conv with a temporal kernel k > 1, the last k - 1
// frames of its time-padded input. A pass owns its cache and drops it at
// its end. Passing a cache explicitly (instead of
// keeping it in the modules) makes chunked decode, chunked encode and tiled
// decode re-entrant: each pass, and each tile, owns its own cache.
//
// Thread-safety: not thread-safe; one pass uses one cache at a time.
#ifndef LVS_MODEL_VAE_CAUSAL_CACHE_H_
#define LVS_MODEL_VAE_CAUSAL_CACHE_H_

#include <ATen/core/Tensor.h>

#include <unordered_map>

namespace lvs::vae {

// Cached frames keyed by the convolution that owns them.
class CausalCache {
 public:
  // Returns the frames cached for `conv`, or an undefined tensor before its
  // first call in this pass.
  at::Tensor Get(const void* conv) const {
    auto it = frames_.find(conv);
    return it == frames_.end() ? at::Tensor() : it->second;
  }

  // Replaces the frames cached for `conv`.
  void Put(const void* conv, at::Tensor frames) {
    frames_[conv] = std::move(frames);
  }

  // Returns the number of convolutions holding frames.
  size_t size() const { return frames_.size(); }

 private:
  std::unordered_map<const void*, at::Tensor> frames_;
};

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_CAUSAL_CACHE_H_

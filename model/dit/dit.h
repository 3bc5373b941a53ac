// Lumina-Video's MultiScaleNextDiT (flow-matching video DiT with multi-scale
// patch embedders) and its checkpoint loader.
//
// forward() takes a batched latent [B, 16, F, H, W] (what the sampler feeds)
// and forward_list() a list of items [16, F, H, W] of different sizes; both
// pack every token of every item into one sequence where each item attends
// only to itself and to its own valid caption tokens (no padding). A batched
// tensor is handled as the list of its rows, so unlike the reference it also
// works when the batch holds fewer than pF*P*P*16 tokens (the reference's
// unpatchify slices the feature axis there and raises; for larger batches the
// two agree exactly).
//
// Precision: the compute dtype is the parameters' dtype (float32 or
// bfloat16); inputs are cast to it. Timestep sinusoids, RoPE and attention
// softmax/P.V run in float32 (golden README section 6).
//
// Thread-safety: a loaded model is immutable; forward calls on one instance
// may run concurrently (no per-call state is stored in the module), but
// callers usually dedicate one thread to a model.
#ifndef LVS_MODEL_DIT_DIT_H_
#define LVS_MODEL_DIT_DIT_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dit/attention_kernels.h"
#include "model/dit/dit_config.h"
#include "model/dit/patchify.h"
#include "model/dit/rope.h"
#include "model/dit/transformer_block.h"

namespace lvs::dit {

class TimestepEmbedderImpl;

// Named intermediate activations (the golden `dit_trace` names).
using DiTTrace = std::map<std::string, torch::Tensor>;

// One forward call split into stages (the block-range forward that step
// caching and sequence parallelism drive): BeginForward embeds the inputs,
// RunBlocks applies layers [begin, end), FinishForward applies the final
// layer and unpatchifies. `in.attention` points into this object: it is
// neither copied nor moved (held by unique_ptr).
struct DiTForward {
  DiTForward() = default;
  DiTForward(const DiTForward&) = delete;
  DiTForward& operator=(const DiTForward&) = delete;

  PatchComb patch;
  PackedLayout layout;        // The whole packed sequence.
  std::vector<int64_t> cu_y;  // Caption token offsets per item.
  RopeTable rope;             // Rotations of this rank's tokens.
  BlockInputs in;             // Shared by every layer.
  torch::Tensor adaln_input;  // [B, adaln_dim].
  torch::Tensor h;            // [L_local, dim] hidden state.
  // Sequence parallelism: this rank holds tokens [token_begin, token_end)
  // of the packed sequence, padded to `padded_tokens` over all ranks.
  AttentionParallel* parallel = nullptr;
  int64_t token_begin = 0;
  int64_t token_end = 0;
  int64_t padded_tokens = 0;
};

// How LoadDiT places and converts the weights.
struct DiTLoadOptions {
  torch::ScalarType dtype = torch::kFloat32;  // float32 or bfloat16.
  torch::Device device = torch::kCPU;
  AttentionOptions attention;  // Tiling of the attention kernel.
};

// The DiT. Submodules carry exactly the checkpoint's names (`layers.N.*`,
// `t_embedder.mlp.0`, `motion_embedder.*`, `cap_embedder.{0,1}`,
// `all_x_embedder.{P}-{pF}`, `all_final_layer.{P}-{pF}.*`, `pad_token`).
class MultiScaleNextDiTImpl : public torch::nn::Module {
 public:
  // Builds a model with default-initialised float32 weights on the CPU.
  // REQUIRES: `config` came from DiTConfigFromArgs (validated).
  explicit MultiScaleNextDiTImpl(DiTConfig config,
                                 AttentionOptions attention = {});

  // Returns the hyper-parameters the model was built with.
  const DiTConfig& config() const { return config_; }

  // True when the checkpoint has an embedder for spatial patch `patch_size`
  // and temporal patch `f_patch_size`.
  bool HasPatch(int64_t patch_size, int64_t f_patch_size) const {
    return config_.HasPatch(patch_size, f_patch_size);
  }

  // Predicts the velocity for a batch.
  //   x [B, C, F, H, W], t [B] (flow time, 0 = noise), cap_feats [B, L, Dc],
  //   cap_mask [B, L] (nonzero = valid token; every row needs one),
  //   motion_score [B] (negative = no motion condition).
  // Returns [B, C, F, H, W] in the model dtype.
  // Throws c10::Error with a message naming the rule broken on bad input
  // (patch combination not in the checkpoint, H/W not divisible by P, F by
  // pF, caption width, grid beyond the RoPE limits, batch sizes).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& cap_feats,
                        const torch::Tensor& cap_mask,
                        const torch::Tensor& motion_score, int64_t patch_size,
                        int64_t f_patch_size);

  // Same for a list of items [C, F_i, H_i, W_i] (row i of the batched
  // conditioning belongs to item i). Images (F = 1) with pF > 1 are repeated
  // pF times and cropped back. Returns one tensor per item, input shapes.
  // When `trace` is non-null, intermediate activations are stored in it
  // under the golden `dit_trace` names.
  std::vector<torch::Tensor> forward_list(
      const std::vector<torch::Tensor>& x, const torch::Tensor& t,
      const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
      const torch::Tensor& motion_score, int64_t patch_size,
      int64_t f_patch_size, DiTTrace* trace = nullptr);

  // forward() with errors as a Status instead of an exception
  // (out of memory -> RESOURCE_EXHAUSTED, bad input -> INVALID_ARGUMENT).
  absl::StatusOr<torch::Tensor> Forward(const torch::Tensor& x,
                                        const torch::Tensor& t,
                                        const torch::Tensor& cap_feats,
                                        const torch::Tensor& cap_mask,
                                        const torch::Tensor& motion_score,
                                        int64_t patch_size,
                                        int64_t f_patch_size);

  // Checks the inputs of one call without running it.
  absl::Status ValidateInputs(const std::vector<torch::Tensor>& x,
                              const torch::Tensor& t,
                              const torch::Tensor& cap_feats,
                              const torch::Tensor& cap_mask,
                              const torch::Tensor& motion_score,
                              int64_t patch_size, int64_t f_patch_size) const;

  // The stages of forward_list (same arguments, same numerics). With
  // `parallel`, this rank keeps only its share of the tokens and attention
  // exchanges heads with the other ranks (every rank calls every stage with
  // the same inputs). Throw c10::Error on bad input.
  std::unique_ptr<DiTForward> BeginForward(
      const std::vector<torch::Tensor>& x, const torch::Tensor& t,
      const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
      const torch::Tensor& motion_score, int64_t patch_size,
      int64_t f_patch_size, AttentionParallel* parallel = nullptr,
      DiTTrace* trace = nullptr);
  void RunBlocks(DiTForward& f, int64_t begin, int64_t end,
                 DiTTrace* trace = nullptr);
  std::vector<torch::Tensor> FinishForward(DiTForward& f,
                                           DiTTrace* trace = nullptr);
  // The modulated input of layer 0's attention for the current hidden state
  // of `f` (before RunBlocks(f, 0, ...)): [L_local, dim].
  torch::Tensor FirstBlockModulatedInput(const DiTForward& f);
  int64_t num_layers() const { return config_.n_layers; }

  // Never used by forward; present because checkpoints hold it.
  torch::Tensor pad_token;

 private:
  DiTConfig config_;
  AttentionOptions attention_;
  torch::nn::ModuleList layers{nullptr};  // TransformerBlock per layer.
  std::shared_ptr<TimestepEmbedderImpl> t_embedder;
  std::shared_ptr<TimestepEmbedderImpl> motion_embedder;
  torch::nn::Sequential cap_embedder{nullptr};     // LayerNorm, Linear.
  torch::nn::ModuleDict all_x_embedder{nullptr};   // "{P}-{pF}" -> Linear.
  torch::nn::ModuleDict all_final_layer{nullptr};  // "{P}-{pF}" -> FinalLayer.
};
TORCH_MODULE(MultiScaleNextDiT);

// Loads a checkpoint directory: `model_args.pth` for the config and
// `consolidated.00-of-01.safetensors` (or `.pth` when no safetensors file
// exists) for the weights, strictly (every tensor present, no extra one,
// every shape right; `_orig_mod.` and wrapper segments stripped), converted
// to `options.dtype` on `options.device`, in eval mode without gradients.
absl::StatusOr<MultiScaleNextDiT> LoadDiT(const std::string& ckpt_dir,
                                          const DiTLoadOptions& options = {});

// Same with a config and tensors already in memory (tests, other layouts).
// `source` names them in errors.
absl::StatusOr<MultiScaleNextDiT> BuildDiT(
    const DiTConfig& config,
    const std::map<std::string, torch::Tensor>& tensors,
    const DiTLoadOptions& options, const std::string& source);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_DIT_H_

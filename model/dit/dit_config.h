// Hyper-parameters of a Lumina-Video MultiScaleNextDiT, read from the
// checkpoint's `model_args.pth` (the training argument Namespace) plus the
// architecture table for real model names.
//
// Thread-safety: plain values and pure functions; safe to use concurrently.
#ifndef LVS_MODEL_DIT_DIT_CONFIG_H_
#define LVS_MODEL_DIT_DIT_CONFIG_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dit/patch_comb.h"
#include "nlohmann/json.hpp"

namespace lvs::dit {

// Architecture and conditioning hyper-parameters of one DiT checkpoint.
struct DiTConfig {
  std::string model;  // Architecture name from model_args ("model").
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t multiple_of = 256;
  std::optional<double> ffn_dim_multiplier;
  double norm_eps = 1e-5;
  int64_t in_channels = 16;
  int64_t cap_feat_dim = 0;
  bool qk_norm = false;
  std::vector<PatchComb> patches;  // In model_args order.
  double rope_theta = 10000.0;
  double t_scale = 1.0;
  double motion_scale = 1.0;

  // Per-head width: dim / n_heads.
  int64_t head_dim() const { return dim / n_heads; }
  // SwiGLU hidden width: multiple_of * ceil(int(8*dim/3) * mult / multiple_of).
  int64_t ffn_hidden_dim() const;
  // Width of the conditioning vector (adaLN input): min(dim, 1024).
  int64_t adaln_dim() const { return dim < 1024 ? dim : 1024; }
  // RoPE widths of the time, height and width axes (real dimensions).
  std::array<int64_t, 3> rope_axes_dims() const;
  // RoPE position limits of the time, height and width axes (patch indices).
  std::array<int64_t, 3> rope_axes_max_len() const { return {64, 128, 128}; }
  // True when the checkpoint has weights for the combination (P, pF).
  bool HasPatch(int64_t patch_size, int64_t f_patch_size) const;
  // Returns the combinations' keys ("2-1", ...) in model_args order.
  std::vector<std::string> patch_keys() const;
};

// Builds a config from the fields of a model_args Namespace as JSON (what
// io::ReadPickledArgs returns). Architecture fields come from the explicit
// fields when present (`dim`, `n_layers`, `n_heads`, `n_kv_heads`,
// `multiple_of`, `ffn_dim_multiplier`, `norm_eps`, `in_channels`,
// `cap_feat_dim`), otherwise from the table of real names
// (`MultiScaleNextDiT_2B_GQA`). Missing conditioning fields default as the
// pipeline does: patch_sizes (2,), f_patch_sizes (2,), rope_theta 10000,
// t_scale 1, motion_scale 1, qk_norm false. `source` names the file in errors.
absl::StatusOr<DiTConfig> DiTConfigFromArgs(const nlohmann::json& args,
                                            const std::string& source);

// Reads `<ckpt_dir>/model_args.pth` and builds its config.
absl::StatusOr<DiTConfig> LoadDiTConfig(const std::string& ckpt_dir);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_DIT_CONFIG_H_

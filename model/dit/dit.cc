#include "model/dit/dit.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/dit/embedders.h"
#include "model/dit/final_layer.h"
#include "model/dit/patchify.h"
#include "model/dit/rope.h"
#include "model/dit/transformer_block.h"

namespace lvs::dit {
namespace {

// Packed valid caption tokens of every row: cap [B, L, D], mask [B, L] ->
// [Ly, D] and offsets (unpad_input of the reference).
torch::Tensor UnpadCaptions(const torch::Tensor& cap, const torch::Tensor& mask,
                            std::vector<int64_t>* cu) {
  torch::Tensor valid = mask.to(torch::kCPU) != 0;  // [B, L]
  torch::Tensor counts = valid.sum(1);              // [B]
  cu->assign(1, 0);
  for (int64_t b = 0; b < counts.size(0); ++b) {
    cu->push_back(cu->back() + counts[b].item<int64_t>());
  }
  torch::Tensor flat =
      valid.reshape({-1}).nonzero().squeeze(1).to(cap.device());
  // [B, L, D] -> [B*L, D] -> [Ly, D]
  return cap.reshape({-1, cap.size(2)}).index_select(0, flat);
}

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("MultiScaleNextDiT: ", what));
}

}  // namespace

MultiScaleNextDiTImpl::MultiScaleNextDiTImpl(DiTConfig config,
                                             AttentionOptions attention)
    : config_(std::move(config)), attention_(attention) {
  const DiTConfig& c = config_;
  const int64_t adaln = c.adaln_dim();
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> x_emb,
      finals;
  for (const PatchComb& p : c.patches) {
    const int64_t features = p.PatchFeatures(c.in_channels);
    x_emb.emplace_back(p.DiTKey(), torch::nn::Linear(features, c.dim).ptr());
    finals.emplace_back(
        p.DiTKey(),
        FinalLayer(FinalLayerOptions().dim(c.dim).adaln_dim(adaln).out_features(
                       features))
            .ptr());
  }
  all_x_embedder =
      register_module("all_x_embedder", torch::nn::ModuleDict(x_emb));
  t_embedder = register_module("t_embedder", TimestepEmbedder(adaln).ptr());
  motion_embedder =
      register_module("motion_embedder", TimestepEmbedder(adaln).ptr());
  cap_embedder = register_module(
      "cap_embedder",
      torch::nn::Sequential(
          torch::nn::LayerNorm(
              torch::nn::LayerNormOptions({c.cap_feat_dim}).eps(1e-5)),
          torch::nn::Linear(c.cap_feat_dim, adaln)));
  const auto block = TransformerBlockOptions()
                         .attention(AttentionModuleOptions()
                                        .dim(c.dim)
                                        .n_heads(c.n_heads)
                                        .n_kv_heads(c.n_kv_heads)
                                        .y_dim(c.cap_feat_dim)
                                        .qk_norm(c.qk_norm)
                                        .kernel(attention_))
                         .ffn_hidden(c.ffn_hidden_dim())
                         .adaln_dim(adaln)
                         .norm_eps(c.norm_eps);
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layers; ++i)
    layers->push_back(TransformerBlock(block));
  all_final_layer =
      register_module("all_final_layer", torch::nn::ModuleDict(finals));
  pad_token = register_parameter("pad_token", torch::zeros({c.dim}));
}

absl::Status MultiScaleNextDiTImpl::ValidateInputs(
    const std::vector<torch::Tensor>& x, const torch::Tensor& t,
    const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
    const torch::Tensor& motion_score, int64_t patch_size,
    int64_t f_patch_size) const {
  const DiTConfig& c = config_;
  const PatchComb patch{f_patch_size, patch_size};
  if (!c.HasPatch(patch_size, f_patch_size)) {
    std::vector<std::string> names;
    for (const PatchComb& p : c.patches) names.push_back(p.ToString());
    return Invalid(absl::StrCat(
        "patch combination ", patch.ToString(), " (pF ", f_patch_size, ", P ",
        patch_size, ", key ", patch.DiTKey(),
        ") is not in the checkpoint; it has ", absl::StrJoin(names, ", ")));
  }
  const int64_t n = static_cast<int64_t>(x.size());
  if (n == 0) return Invalid("empty batch");
  const auto limits = c.rope_axes_max_len();
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor& item = x[i];
    if (!item.defined() || item.dim() != 4 || item.size(0) != c.in_channels) {
      return Invalid(absl::StrCat(
          "latent ", i, " must be [", c.in_channels, ", F, H, W], got [",
          item.defined() ? absl::StrJoin(item.sizes(), ", ") : "", "]"));
    }
    const int64_t f = item.size(1), h = item.size(2), w = item.size(3);
    if (f < 1 || h % patch_size != 0 || w % patch_size != 0 || h == 0 ||
        w == 0) {
      return Invalid(absl::StrCat(
          "latent ", i, " height ", h, " and width ", w,
          " must be positive multiples of the patch size ", patch_size));
    }
    if (f != 1 && f % f_patch_size != 0) {
      return Invalid(absl::StrCat(
          "latent ", i, " has ", f,
          " frames, not 1 or a multiple of the temporal patch ", f_patch_size));
    }
    const int64_t grid[3] = {std::max(f, f_patch_size) / f_patch_size,
                             h / patch_size, w / patch_size};
    const char* axis[3] = {"frames", "height", "width"};
    for (int a = 0; a < 3; ++a) {
      if (grid[a] > limits[a]) {
        return Invalid(absl::StrCat("latent ", i, " has ", grid[a],
                                    " patches along ", axis[a],
                                    ", beyond the RoPE limit of ", limits[a]));
      }
    }
  }
  auto rows = [&](const torch::Tensor& v, const char* name,
                  int64_t dims) -> absl::Status {
    if (!v.defined() || v.dim() != dims || v.size(0) != n) {
      return Invalid(absl::StrCat(name, " must have ", dims,
                                  " dimension(s) and ", n,
                                  " rows (one per latent)"));
    }
    return absl::OkStatus();
  };
  LVS_RETURN_IF_ERROR(rows(t, "t", 1));
  LVS_RETURN_IF_ERROR(rows(motion_score, "motion_score", 1));
  LVS_RETURN_IF_ERROR(rows(cap_feats, "cap_feats", 3));
  LVS_RETURN_IF_ERROR(rows(cap_mask, "cap_mask", 2));
  if (cap_feats.size(2) != c.cap_feat_dim) {
    return Invalid(absl::StrCat("cap_feats width ", cap_feats.size(2),
                                " does not match the checkpoint's caption dim ",
                                c.cap_feat_dim));
  }
  if (cap_mask.size(1) != cap_feats.size(1)) {
    return Invalid(absl::StrCat("cap_mask has ", cap_mask.size(1),
                                " tokens but cap_feats has ",
                                cap_feats.size(1)));
  }
  torch::Tensor valid = (cap_mask.to(torch::kCPU) != 0).sum(1);
  for (int64_t i = 0; i < n; ++i) {
    if (valid[i].item<int64_t>() == 0) {
      return Invalid(
          absl::StrCat("cap_mask row ", i, " has no valid caption token"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<DiTForward> MultiScaleNextDiTImpl::BeginForward(
    const std::vector<torch::Tensor>& x, const torch::Tensor& t,
    const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
    const torch::Tensor& motion_score, int64_t patch_size, int64_t f_patch_size,
    AttentionParallel* parallel, DiTTrace* trace) {
  absl::Status valid = ValidateInputs(x, t, cap_feats, cap_mask, motion_score,
                                      patch_size, f_patch_size);
  TORCH_CHECK(valid.ok(), std::string(valid.message()));
  const DiTConfig& c = config_;
  auto f = std::make_unique<DiTForward>();
  f->patch = PatchComb{f_patch_size, patch_size};
  const auto dtype = pad_token.scalar_type();
  const auto device = pad_token.device();
  auto record = [&](const std::string& name, const torch::Tensor& v) {
    if (trace) (*trace)[name] = v;
  };

  std::vector<torch::Tensor> items;
  for (const torch::Tensor& item : x) items.push_back(item.to(device, dtype));
  torch::Tensor tokens =
      Patchify(items, f->patch, &f->layout);  // [L, pF*P*P*C]
  items.clear();
  const int64_t total = f->layout.cu_seqlens.back();
  torch::Tensor src_ids = SourceIds(f->layout, device);  // [L]
  f->rope = ComputeRope(f->layout.grids, c.rope_axes_dims(),
                        c.rope_axes_max_len(), c.rope_theta, device);
  f->token_end = f->padded_tokens = total;
  if (parallel != nullptr && parallel->size() > 1) {
    TORCH_CHECK(c.n_heads % parallel->size() == 0,
                "MultiScaleNextDiT: ", c.n_heads, " heads do not split over ",
                parallel->size(), " ranks");
    // This rank's share of the tokens, the sequence padded to N * share.
    const int64_t share = (total + parallel->size() - 1) / parallel->size();
    const int64_t pad = share * parallel->size() - total;
    const int64_t begin = share * parallel->rank();
    auto local = [&](const torch::Tensor& v, double fill) {
      // [L, ...] -> [L_pad, ...] -> [share, ...]
      std::vector<int64_t> widths(2 * (v.dim() - 1), 0);
      widths.push_back(0);
      widths.push_back(pad);
      return torch::constant_pad_nd(v, widths, fill).narrow(0, begin, share);
    };
    tokens = local(tokens, 0);
    src_ids = local(src_ids, 0);
    f->rope.cos = local(f->rope.cos, 1);
    f->rope.sin = local(f->rope.sin, 0);
    f->parallel = parallel;
    f->padded_tokens = share * parallel->size();
    f->token_begin = std::min(begin, total);
    f->token_end = std::min(begin + share, total);
  }
  f->h = all_x_embedder[f->patch.DiTKey()]->as<torch::nn::Linear>()->forward(
      tokens);
  tokens = torch::Tensor();
  record("x_embedder_out", f->h);

  torch::Tensor t_emb = t_embedder->forward(t.to(device, dtype) * c.t_scale);
  record("t_embedder_out", t_emb);
  torch::Tensor motion = motion_score.to(device, dtype) * c.motion_scale;
  torch::Tensor no_motion = (motion < 0).unsqueeze(1);  // [B, 1]
  torch::Tensor m_emb = motion_embedder->forward(motion.clamp_min(0));
  record("motion_embedder_out_before_zeroing", m_emb);
  m_emb = m_emb.masked_fill(no_motion, 0);
  torch::Tensor cap = cap_feats.to(device, dtype);
  torch::Tensor cap_emb =
      cap_embedder->forward(MaskedMeanPool(cap, cap_mask.to(device)));
  record("cap_embedder_out", cap_emb);
  f->adaln_input = t_emb + cap_emb + m_emb;  // [B, adaln_dim]
  record("adaln_input", f->adaln_input);

  BlockInputs& in = f->in;
  in.y = UnpadCaptions(cap, cap_mask, &f->cu_y);
  in.src_ids = src_ids;
  in.c = f->adaln_input;
  in.attention =
      AttentionInputs{&f->layout.cu_seqlens, &f->cu_y, &f->rope, f->parallel};
  if (trace) {
    auto cpu_i64 = [](const std::vector<int64_t>& v) {
      return torch::tensor(v, torch::kInt64);
    };
    record("layer_in.x", f->h);
    record("layer_in.x_src_ids", in.src_ids);
    record("layer_in.freqs_cis", torch::stack({f->rope.cos, f->rope.sin}, -1));
    record("layer_in.cap_feats_unpadded", in.y);
    record("layer_in.x_cu_seqlens", cpu_i64(f->layout.cu_seqlens));
    record("layer_in.cap_cu_seqlens", cpu_i64(f->cu_y));
  }
  return f;
}

void MultiScaleNextDiTImpl::RunBlocks(DiTForward& f, int64_t begin, int64_t end,
                                      DiTTrace* trace) {
  TORCH_CHECK(0 <= begin && begin <= end && end <= config_.n_layers,
              "MultiScaleNextDiT: layer range [", begin, ", ", end,
              ") outside [0, ", config_.n_layers, ")");
  for (int64_t i = begin; i < end; ++i) {
    const std::string prefix = absl::StrCat("layer", i, "_");
    f.h = layers[i]->as<TransformerBlockImpl>()->forward(f.h, f.in, trace,
                                                         prefix);
    if (trace) (*trace)[prefix + "out"] = f.h;
  }
}

torch::Tensor MultiScaleNextDiTImpl::FirstBlockModulatedInput(
    const DiTForward& f) {
  TORCH_CHECK(config_.n_layers > 0, "MultiScaleNextDiT: no layers");
  return layers[0]->as<TransformerBlockImpl>()->ModulatedAttentionInput(f.h,
                                                                        f.in);
}

std::vector<torch::Tensor> MultiScaleNextDiTImpl::FinishForward(
    DiTForward& f, DiTTrace* trace) {
  torch::Tensor h =
      all_final_layer[f.patch.DiTKey()]->as<FinalLayerImpl>()->forward(
          f.h, f.adaln_input, f.in.src_ids);
  f.h = torch::Tensor();
  if (f.parallel != nullptr) {
    // [share, features] -> [L_pad, features] -> [L, features]
    h = f.parallel->AllGatherTokens(h).narrow(0, 0, f.layout.cu_seqlens.back());
  }
  if (trace) (*trace)["final_layer_out"] = h;
  std::vector<torch::Tensor> out = Unpatchify(h, f.layout, f.patch);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = out[i].contiguous();
    if (trace) (*trace)[absl::StrCat("out.", i)] = out[i];
  }
  return out;
}

std::vector<torch::Tensor> MultiScaleNextDiTImpl::forward_list(
    const std::vector<torch::Tensor>& x, const torch::Tensor& t,
    const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
    const torch::Tensor& motion_score, int64_t patch_size, int64_t f_patch_size,
    DiTTrace* trace) {
  std::unique_ptr<DiTForward> f =
      BeginForward(x, t, cap_feats, cap_mask, motion_score, patch_size,
                   f_patch_size, /*parallel=*/nullptr, trace);
  RunBlocks(*f, 0, config_.n_layers, trace);
  return FinishForward(*f, trace);
}

torch::Tensor MultiScaleNextDiTImpl::forward(const torch::Tensor& x,
                                             const torch::Tensor& t,
                                             const torch::Tensor& cap_feats,
                                             const torch::Tensor& cap_mask,
                                             const torch::Tensor& motion_score,
                                             int64_t patch_size,
                                             int64_t f_patch_size) {
  TORCH_CHECK(x.defined() && x.dim() == 5,
              "MultiScaleNextDiT: x must be a batched latent [B, C, F, H, W]");
  std::vector<torch::Tensor> out =
      forward_list(x.unbind(0), t, cap_feats, cap_mask, motion_score,
                   patch_size, f_patch_size);
  return torch::stack(out, 0);
}

absl::StatusOr<torch::Tensor> MultiScaleNextDiTImpl::Forward(
    const torch::Tensor& x, const torch::Tensor& t,
    const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
    const torch::Tensor& motion_score, int64_t patch_size,
    int64_t f_patch_size) {
  if (!x.defined() || x.dim() != 5) {
    return Invalid("x must be a batched latent [B, C, F, H, W]");
  }
  LVS_RETURN_IF_ERROR(ValidateInputs(x.unbind(0), t, cap_feats, cap_mask,
                                     motion_score, patch_size, f_patch_size));
  try {
    return forward(x, t, cap_feats, cap_mask, motion_score, patch_size,
                   f_patch_size);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "MultiScaleNextDiT");
  }
}

}  // namespace lvs::dit

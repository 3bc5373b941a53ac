// The training loop.
#include "trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/io/checkpoint.h"
#include "model/io/torch_pickle.h"
#include "trainer/checkpoint.h"
#include "trainer/flow_matching.h"
#include "trainer/init_weights.h"

namespace lvs::trainer {
namespace {

constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEps = 1e-15;

// SplitMix64 finaliser: decorrelates the seeds of nearby positions.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Seed(int64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  return Mix(Mix(Mix(static_cast<uint64_t>(seed) ^ Mix(a)) ^ b) ^ c);
}

absl::StatusOr<dit::MultiScaleNextDiT> BuildModel(const TrainSpec& spec) {
  if (spec.init_from.empty()) {
    nlohmann::json args = spec.model_args.is_object()
                              ? spec.model_args
                              : nlohmann::json::object();
    args["model"] = spec.model;
    LVS_ASSIGN_OR_RETURN(dit::DiTConfig config,
                         dit::DiTConfigFromArgs(args, "spec.model"));
    torch::manual_seed(static_cast<uint64_t>(spec.seed));
    dit::MultiScaleNextDiT model(config);
    LVS_RETURN_IF_ERROR(InitializeLikeReference(model));
    return model;
  }
  const std::string args = spec.init_from + "/" + kModelArgsFile;
  absl::StatusOr<nlohmann::json> json = io::ReadPickledArgs(args);
  if (!json.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("init_from: ", json.status().message()));
  }
  LVS_ASSIGN_OR_RETURN(dit::DiTConfig config,
                       dit::DiTConfigFromArgs(*json, args));
  absl::StatusOr<io::TensorMap> weights =
      io::LoadCheckpoint(spec.init_from + "/" + kModelFile);
  if (!weights.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("init_from: ", weights.status().message()));
  }
  return dit::BuildDiT(config, *weights, {}, spec.init_from);
}

}  // namespace

struct Trainer::TaskState {
  size_t index = 0;
  const TaskSpec* spec = nullptr;
  std::unique_ptr<LatentDataset> data;
  int64_t perm_epoch = -1;
  std::vector<int64_t> perm;
};

struct Trainer::Item {
  torch::Tensor x1, x0, cap;
  float t = 0;
  float motion = -1;
};

Trainer::~Trainer() = default;

Trainer::Trainer(TrainSpec spec, TrainerOptions options,
                 dit::MultiScaleNextDiT model)
    : spec_(std::move(spec)), options_(options), model_(std::move(model)) {}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(
    const TrainSpec& spec, const TrainerOptions& options) {
  LVS_RETURN_IF_ERROR(ValidateTrainSpec(spec));
  const int world = options.reducer ? options.reducer->world_size() : 1;
  if (world != spec.data_parallel) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_parallel: the spec asks for ", spec.data_parallel,
                     " processes but the group has ", world));
  }
  try {
    LVS_ASSIGN_OR_RETURN(dit::MultiScaleNextDiT model, BuildModel(spec));
    for (size_t i = 0; i < spec.tasks.size(); ++i) {
      const TaskSpec& t = spec.tasks[i];
      if (!model->HasPatch(t.patch_size, t.f_patch_size)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tasks[", i, "].patch: ", t.f_patch_size, "x", t.patch_size,
            " is not a patch of the model (it has ",
            absl::StrJoin(model->config().patch_keys(), ", "), " as P-pF)"));
      }
    }
    std::unique_ptr<Trainer> tr(new Trainer(spec, options, std::move(model)));
    for (size_t i = 0; i < tr->spec_.tasks.size(); ++i) {
      auto task = std::make_unique<TaskState>();
      task->index = i;
      task->spec = &tr->spec_.tasks[i];
      LatentDatasetOptions data_options;
      data_options.text_encoder = spec.text_encoder;
      data_options.vae = spec.vae;
      data_options.device = options.device.str();
      LVS_ASSIGN_OR_RETURN(
          task->data,
          LatentDataset::Open(task->spec->records, data_options,
                              absl::StrCat("tasks[", i, "].records")));
      tr->tasks_.push_back(std::move(task));
    }
    const torch::ScalarType dtype = tr->compute_dtype();
    torch::NoGradGuard no_grad;
    // fp32 masters first, taken from the fp32 model before the cast.
    std::map<std::string, torch::Tensor> masters;
    if (dtype != torch::kFloat32) {
      for (auto& p : tr->model_->named_parameters(/*recurse=*/true)) {
        masters[p.key()] =
            p.value().detach().to(options.device, torch::kFloat32).clone();
      }
    }
    tr->model_->to(options.device, dtype);
    tr->model_->train();
    for (auto& p : tr->model_->named_parameters(/*recurse=*/true)) {
      p.value().set_requires_grad(true);
      tr->params_.emplace_back(p.key(), p.value());
      torch::Tensor master =
          dtype == torch::kFloat32 ? p.value() : masters.at(p.key());
      tr->masters_.push_back(master);
      tr->ema_[p.key()] = master.detach().clone();
    }
    return tr;
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "building the trainer");
  }
}

io::TensorMap Trainer::Parameters() const {
  io::TensorMap out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out[params_[i].first] = masters_[i].detach();
  }
  return out;
}

torch::ScalarType Trainer::compute_dtype() const {
  return spec_.precision == TrainPrecision::kBFloat16 ? torch::kBFloat16
                                                      : torch::kFloat32;
}

absl::StatusOr<Trainer::Item> Trainer::LoadItem(TaskState& task,
                                                int64_t position) {
  const TaskSpec& ts = *task.spec;
  const int64_t n = static_cast<int64_t>(task.data->size());
  const int64_t epoch = position / n;
  if (epoch != task.perm_epoch) {
    task.perm.resize(n);
    for (int64_t i = 0; i < n; ++i) task.perm[i] = i;
    std::mt19937_64 shuffle(Seed(spec_.seed, task.index, 1, epoch));
    std::shuffle(task.perm.begin(), task.perm.end(), shuffle);
    task.perm_epoch = epoch;
  }
  const size_t index = static_cast<size_t>(task.perm[position % n]);
  std::mt19937_64 rng(Seed(spec_.seed, task.index, 2, position));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Item item;
  LVS_ASSIGN_OR_RETURN(torch::Tensor latent, task.data->Latent(index));
  item.x1 =
      PrepareLatent(latent, ts.max_frames, ts.patch_size, ts.f_patch_size, rng);
  const bool drop_caption = u(rng) < spec_.caption_dropout;
  LVS_ASSIGN_OR_RETURN(item.cap, task.data->Caption(index, drop_caption));
  const double r = u(rng);
  if (ts.media_type == MediaType::kImage) {
    item.motion = r < 0.4 ? 0.0f : -1.0f;
  } else {
    item.motion =
        r < 0.3 ? -1.0f : static_cast<float>(task.data->item(index).motion);
  }
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
      Seed(spec_.seed, task.index, 3, position));
  item.t = SampleTime(ts.snr_type, ts.time_shift, gen);
  item.x0 = at::randn(item.x1.sizes(), gen, torch::kFloat32);
  return item;
}

absl::StatusOr<double> Trainer::RunTask(TaskState& task, int64_t local_batch) {
  const TaskSpec& ts = *task.spec;
  const int rank = options_.reducer ? options_.reducer->rank() : 0;
  const int64_t first = next_step_ * ts.global_batch_size + rank * local_batch;
  double loss_sum = 0;
  for (int64_t mb = 0; mb < local_batch; mb += ts.micro_batch_size) {
    std::vector<Item> items;
    int64_t max_len = 0;
    for (int64_t j = 0; j < ts.micro_batch_size; ++j) {
      LVS_ASSIGN_OR_RETURN(Item item, LoadItem(task, first + mb + j));
      max_len = std::max<int64_t>(max_len, item.cap.size(0));
      items.push_back(std::move(item));
    }
    const int64_t n = static_cast<int64_t>(items.size());
    const int64_t dc = items[0].cap.size(1);
    // Inputs and t in the compute dtype ("t is cast to the latent dtype").
    const torch::TensorOptions to =
        torch::TensorOptions().device(options_.device).dtype(compute_dtype());
    FlowBatch batch;
    batch.cap_feats = torch::zeros({n, max_len, dc});
    batch.cap_mask = torch::zeros({n, max_len}, torch::kInt32);
    batch.t = torch::empty({n});
    batch.motion = torch::empty({n});
    for (int64_t i = 0; i < n; ++i) {
      const int64_t len = items[i].cap.size(0);
      batch.cap_feats[i].narrow(0, 0, len).copy_(items[i].cap);
      batch.cap_mask[i].narrow(0, 0, len).fill_(1);
      batch.t[i] = items[i].t;
      batch.motion[i] = items[i].motion;
      batch.x1.push_back(items[i].x1.to(to));
      batch.x0.push_back(items[i].x0.to(to));
    }
    batch.cap_feats = batch.cap_feats.to(to);
    batch.cap_mask = batch.cap_mask.to(options_.device);
    batch.t = batch.t.to(to);
    batch.motion = batch.motion.to(to);
    torch::Tensor losses = FlowMatchingLoss(model_, batch, ts.patch_size,
                                            ts.f_patch_size, spec_.vd_weight);
    (losses.sum() / static_cast<double>(local_batch)).backward();
    loss_sum += losses.detach().sum().item<double>();
  }
  return loss_sum / static_cast<double>(local_batch);
}

absl::StatusOr<double> Trainer::ReduceAndClip() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, with_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& g = params_[i].second.grad();
    torch::Tensor& master = masters_[i];
    if (!g.defined()) {
      if (!master.is_same(params_[i].second)) {
        master.mutable_grad() = torch::Tensor();
      }
      continue;
    }
    // fp32 gradients on the masters (the same tensor in fp32 training).
    if (!master.is_same(params_[i].second)) {
      master.mutable_grad() = g.to(torch::kFloat32);
    }
    grads.push_back(master.grad());
    with_grad.push_back(master);
  }
  if (options_.reducer) {
    LVS_RETURN_IF_ERROR(options_.reducer->AllReduceMean(grads));
  }
  return torch::nn::utils::clip_grad_norm_(with_grad, spec_.grad_clip);
}

void Trainer::AdamWStep() {
  torch::NoGradGuard no_grad;
  const double lr = spec_.learning_rate;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& key = params_[i].first;
    torch::Tensor& p = masters_[i];
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    torch::Tensor& m = exp_avg_[key];
    torch::Tensor& v = exp_avg_sq_[key];
    if (!m.defined()) {
      m = torch::zeros_like(p);
      v = torch::zeros_like(p);
    }
    const int64_t step = ++adam_steps_[key];
    // torch.optim.AdamW (single-tensor path), weight decay 0.
    m.mul_(kBeta1).add_(g, 1 - kBeta1);
    v.mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
    const double bc1 = 1 - std::pow(kBeta1, static_cast<double>(step));
    const double bc2 = 1 - std::pow(kBeta2, static_cast<double>(step));
    torch::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(kEps);
    p.addcdiv_(m, denom, -lr / bc1);
    if (!p.is_same(params_[i].second)) params_[i].second.copy_(p);
  }
}

void Trainer::UpdateEma() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    ema_[params_[i].first]
        .mul_(spec_.ema_decay)
        .add_(masters_[i].detach(), 1 - spec_.ema_decay);
  }
}

absl::StatusOr<StepStats> Trainer::Step() {
  if (done()) {
    return absl::FailedPreconditionError(
        absl::StrCat("all ", spec_.max_steps, " steps have run"));
  }
  try {
    return StepImpl();
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(
        e, absl::StrCat("training step ", next_step_));
  }
}

absl::StatusOr<StepStats> Trainer::StepImpl() {
  const auto start = std::chrono::steady_clock::now();
  StepStats stats;
  stats.step = next_step_;
  stats.learning_rate = spec_.learning_rate;
  for (auto& [key, p] : params_) p.mutable_grad() = torch::Tensor();
  const int world = options_.reducer ? options_.reducer->world_size() : 1;
  double loss_sum = 0;
  int active = 0;
  for (auto& task : tasks_) {
    if (!TaskRunsAt(spec_, task->index, next_step_)) continue;
    const int64_t local = task->spec->global_batch_size / world;
    LVS_ASSIGN_OR_RETURN(double loss, RunTask(*task, local));
    const std::string name = task->spec->name.empty()
                                 ? absl::StrCat("task", task->index)
                                 : task->spec->name;
    stats.task_loss[name] = loss;
    loss_sum += loss;
    stats.samples += task->spec->global_batch_size;
    ++active;
  }
  stats.loss = active ? loss_sum / active : 0;
  LVS_ASSIGN_OR_RETURN(stats.grad_norm, ReduceAndClip());
  AdamWStep();
  if (next_step_ % spec_.ema_interval == 0) UpdateEma();
  ++next_step_;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return stats;
}

absl::Status Trainer::SaveCheckpoint(const std::string& dir) const {
  try {
    TrainingCheckpointData data;
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string& key = params_[i].first;
      data.model[key] = masters_[i].detach().cpu();
      data.ema[key] = ema_.at(key).cpu();
      auto m = exp_avg_.find(key);
      if (m != exp_avg_.end()) {
        data.optimizer["exp_avg." + key] = m->second.cpu();
        data.optimizer["exp_avg_sq." + key] = exp_avg_sq_.at(key).cpu();
        data.optimizer["step." + key] =
            torch::full({1}, adam_steps_.at(key), torch::kInt64);
      }
    }
    data.state = {{"step", next_step_}, {"seed", spec_.seed}};
    return WriteTrainingCheckpoint(dir, ModelArgsJson(model_->config(), spec_),
                                   data);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e,
                                      absl::StrCat("writing checkpoint ", dir));
  }
}

absl::Status Trainer::Resume(const std::string& checkpoint_dir) {
  LVS_ASSIGN_OR_RETURN(TrainingCheckpointData data,
                       ReadTrainingCheckpoint(checkpoint_dir));
  try {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string& key = params_[i].first;
      torch::Tensor& p = masters_[i];
      auto w = data.model.find(key);
      auto e = data.ema.find(key);
      if (w == data.model.end() || e == data.ema.end() ||
          !w->second.sizes().equals(p.sizes())) {
        return absl::DataLossError(absl::StrCat(checkpoint_dir, ": parameter ",
                                                key, " missing or mis-shaped"));
      }
      p.copy_(w->second);
      if (!p.is_same(params_[i].second)) params_[i].second.copy_(p);
      ema_[key] = e->second.to(options_.device, torch::kFloat32).clone();
      auto m = data.optimizer.find("exp_avg." + key);
      if (m == data.optimizer.end()) continue;
      exp_avg_[key] = m->second.to(options_.device).clone();
      exp_avg_sq_[key] =
          data.optimizer.at("exp_avg_sq." + key).to(options_.device).clone();
      adam_steps_[key] = data.optimizer.at("step." + key).item<int64_t>();
    }
    next_step_ = data.state["step"].get<int64_t>();
    return absl::OkStatus();
  } catch (const std::out_of_range&) {
    return absl::DataLossError(
        absl::StrCat(checkpoint_dir, ": optimizer state incomplete"));
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(
        e, absl::StrCat("resuming from ", checkpoint_dir));
  }
}

}  // namespace lvs::trainer

// `lvs train submit|watch|list|cancel`: training jobs through the
// AdminService (pass the admin key with --api-key). `submit` reads the job
// spec as JSON in the proto3 mapping of TrainingJobSpec (e.g.
// {"initFrom": "...", "maxSteps": 100, "tasks": [{"name": "V", ...}]}, or
// {"model_type": "vae", "records": [...], "vae_config": {...}, ...}).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/command.h"
#include "google/protobuf/util/json_util.h"

namespace lvs::client {
namespace {

namespace pb = ::lumina::video::v1;

std::string TrainingJobName(const std::string& id) {
  return id.rfind("trainingJobs/", 0) == 0 ? id : "trainingJobs/" + id;
}

std::string StateName(pb::JobState s) { return pb::JobState_Name(s); }

void PrintStep(const pb::TrainingStep& s) {
  std::string tasks;
  for (const auto& [name, loss] : s.task_loss()) {
    absl::StrAppend(&tasks, " ", name, "=", absl::StrFormat("%.5f", loss));
  }
  std::printf(
      "step %lld/%lld loss %.5f%s grad_norm %.4f lr %.3g %.2f samples/s\n",
      static_cast<long long>(s.step()), static_cast<long long>(s.total_steps()),
      s.loss(), tasks.c_str(), s.grad_norm(), s.learning_rate(),
      s.samples_per_second());
}

// The one spec dialect (lvs-trainer --spec's): "fp32"/"bf16" and
// "image"/"video" become the proto enum names JSON parsing wants.
std::string ProtoEnumNames(const std::string& text) {
  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"\"precision\"", "PRECISION_"},
      {"\"media_type\"", "MEDIA_TYPE_"},
      {"\"mediaType\"", "MEDIA_TYPE_"},
      {"\"model_type\"", "MODEL_TYPE_"},
      {"\"modelType\"", "MODEL_TYPE_"}};
  std::string out = text;
  for (const auto& [key, prefix] : kNames) {
    for (size_t at = out.find(key); at != std::string::npos;
         at = out.find(key, at + 1)) {
      const size_t open = out.find('"', out.find(':', at + key.size()));
      const size_t close = out.find('"', open + 1);
      if (open == std::string::npos || close == std::string::npos) break;
      std::string value = out.substr(open + 1, close - open - 1);
      if (value.empty() || value.rfind(prefix, 0) == 0) continue;
      out.replace(open + 1, value.size(),
                  prefix + absl::AsciiStrToUpper(value));
    }
  }
  return out;
}

int Submit(const GlobalOptions& options, const std::string& spec_file,
           const std::string& request_id) {
  std::ifstream in(spec_file);
  if (!in) {
    std::fprintf(stderr, "lvs: cannot read %s\n", spec_file.c_str());
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  pb::CreateTrainingJobRequest request;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      ProtoEnumNames(text.str()), request.mutable_spec());
  if (!parsed.ok()) {
    std::fprintf(stderr, "lvs: %s: %s\n", spec_file.c_str(),
                 parsed.ToString().c_str());
    return 2;
  }
  request.set_request_id(request_id);
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  pb::TrainingJob job;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status s = stub->CreateTrainingJob(&context, request, &job);
  if (!s.ok()) {
    PrintRpcError("CreateTrainingJob", s);
    return 1;
  }
  std::printf("%s\n", job.name().c_str());
  return 0;
}

int Watch(const GlobalOptions& options, const std::string& id) {
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  pb::WatchTrainingJobRequest request;
  request.set_name(TrainingJobName(id));
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, absl::ZeroDuration(), options.api_key);
  CancelOnInterrupt cancel(&context);
  auto reader = stub->WatchTrainingJob(&context, request);
  pb::TrainingEvent e;
  int code = 0;
  while (reader->Read(&e)) {
    if (e.has_queued()) std::printf("queued\n");
    if (e.has_started()) {
      std::printf("started on %s (attempt %d, from step %lld)\n",
                  e.started().trainer().c_str(), e.started().attempt(),
                  static_cast<long long>(e.started().resumed_from_step()));
    }
    if (e.has_requeued()) std::printf("requeued\n");
    if (e.has_step()) PrintStep(e.step());
    if (e.has_checkpoint()) {
      std::printf("checkpoint step %lld: %s\n",
                  static_cast<long long>(e.checkpoint().step()),
                  e.checkpoint().path().c_str());
    }
    if (e.has_completed()) {
      std::printf("completed: %lld steps, checkpoint %s\n",
                  static_cast<long long>(e.completed().steps()),
                  e.completed().checkpoint().path().c_str());
    }
    std::fflush(stdout);
  }
  const grpc::Status s = reader->Finish();
  if (!s.ok() && !CancelOnInterrupt::interrupted()) {
    PrintRpcError("WatchTrainingJob", s);
    code = 1;
  }
  return CancelOnInterrupt::interrupted() ? 130 : code;
}

int List(const GlobalOptions& options) {
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  std::printf("%-32s %-10s %-8s %-16s %-10s %s\n", "NAME", "STATE", "ATTEMPT",
              "TRAINER", "STEP", "LOSS");
  pb::ListTrainingJobsRequest request;
  do {
    pb::ListTrainingJobsResponse response;
    grpc::ClientContext context;
    rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
    const grpc::Status s = stub->ListTrainingJobs(&context, request, &response);
    if (!s.ok()) {
      PrintRpcError("ListTrainingJobs", s);
      return 1;
    }
    for (const pb::TrainingJob& j : response.jobs()) {
      std::printf(
          "%-32s %-10s %-8d %-16s %-10s %.5f\n", j.name().c_str(),
          StateName(j.state()).c_str(), j.attempts(),
          j.trainer().empty() ? "-" : j.trainer().c_str(),
          absl::StrCat(j.last_step().step(), "/", j.spec().max_steps()).c_str(),
          j.last_step().loss());
    }
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return 0;
}

int Cancel(const GlobalOptions& options, const std::string& id) {
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  pb::CancelTrainingJobRequest request;
  request.set_name(TrainingJobName(id));
  pb::TrainingJob job;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status s = stub->CancelTrainingJob(&context, request, &job);
  if (!s.ok()) {
    PrintRpcError("CancelTrainingJob", s);
    return 1;
  }
  std::printf("%s %s\n", job.name().c_str(), StateName(job.state()).c_str());
  return 0;
}

// An example spec in the one dialect `lvs train submit` and `lvs-trainer
// --spec` both read (README "Training").
constexpr char kTemplate[] = R"({
  "init_from": "/path/to/checkpoint",
  "max_steps": 1000,
  "learning_rate": 0.0001,
  "checkpoint_interval": 250,
  "precision": "bf16",
  "tasks": [
    {
      "name": "video",
      "media_type": "video",
      "records": ["latents/records.jsonl"],
      "global_batch_size": 8,
      "micro_batch_size": 1,
      "image_size": 256,
      "max_frames": 16,
      "patch": "1x2",
      "time_shift": 6.0,
      "task_ratio": 1
    }
  ]
}
)";

// The same for a VAE trained from scratch on clips (lvs-synth item lists);
// `init_from` (a diffusers VAE directory) can replace `vae_config`.
constexpr char kVaeTemplate[] = R"({
  "model_type": "vae",
  "records": ["clips/train.jsonl"],
  "heldout": ["clips/heldout.jsonl"],
  "vae_config": {
    "_class_name": "AutoencoderKLCogVideoX",
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 8,
    "block_out_channels": [16, 32, 32, 32],
    "down_block_types": ["CogVideoXDownBlock3D", "CogVideoXDownBlock3D",
                         "CogVideoXDownBlock3D", "CogVideoXDownBlock3D"],
    "up_block_types": ["CogVideoXUpBlock3D", "CogVideoXUpBlock3D",
                       "CogVideoXUpBlock3D", "CogVideoXUpBlock3D"],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "norm_eps": 1e-06,
    "act_fn": "silu",
    "temporal_compression_ratio": 4,
    "scaling_factor": 1.0,
    "use_quant_conv": false,
    "use_post_quant_conv": false
  },
  "max_steps": 1000,
  "learning_rate": 0.002,
  "warmup_steps": 20,
  "checkpoint_interval": 250,
  "batch_size": 2,
  "crop_size": 64,
  "max_frames": 17,
  "kl_weight": 1e-06,
  "ema_decay": 0.995
}
)";

}  // namespace

void RegisterTrainCommand(CLI::App& app, const GlobalOptions& options,
                          CommandResult& result) {
  CLI::App* train = app.add_subcommand("train", "training jobs (admin key)");
  train->require_subcommand(1);
  static std::string spec, request_id, id;
  CLI::App* submit = train->add_subcommand("submit", "submit a job spec");
  submit
      ->add_option("--spec", spec,
                   "job spec as JSON (`lvs train template` prints one; "
                   "\"fp32\"/\"video\" and PRECISION_FP32/"
                   "MEDIA_TYPE_VIDEO both work; task_ratio defaults to 1)")
      ->required();
  submit->add_option("--request-id", request_id, "idempotency key");
  submit->callback([&options, &result] {
    result.exit_code = Submit(options, spec, request_id);
  });
  CLI::App* tmpl = train->add_subcommand(
      "template", "print an example job spec (edit it, then submit it)");
  static std::string model_type = "dit";
  tmpl->add_option("--model-type", model_type, "what the job trains")
      ->check(CLI::IsMember({"dit", "vae"}));
  tmpl->callback([&result] {
    std::fputs(model_type == "vae" ? kVaeTemplate : kTemplate, stdout);
    result.exit_code = 0;
  });
  CLI::App* watch = train->add_subcommand("watch", "follow a job's events");
  watch->add_option("job", id, "trainingJobs/{id} or {id}")->required();
  watch->callback(
      [&options, &result] { result.exit_code = Watch(options, id); });
  CLI::App* list = train->add_subcommand("list", "list training jobs");
  list->callback([&options, &result] { result.exit_code = List(options); });
  CLI::App* cancel = train->add_subcommand("cancel", "cancel a job");
  cancel->add_option("job", id, "trainingJobs/{id} or {id}")->required();
  cancel->callback(
      [&options, &result] { result.exit_code = Cancel(options, id); });
}

}  // namespace lvs::client

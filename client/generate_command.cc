// `lvs generate "prompt" -o out.mp4 [flags]`: submits a job and follows it
// with a live progress bar, writing the MP4 as its chunks arrive; Ctrl-C
// cancels the job. The job is created with CreateVideoJob under an
// idempotency key (--request-id or a fresh UUID), so a retried call never
// runs it twice, then followed with WatchVideoJob. With --detach it only
// creates the job and prints its name.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/command.h"
#include "client/job_follower.h"
#include "client/progress_bar.h"
#include "common/utf8.h"
#include "model/sampler/sample_config.h"
#include "rpc/channel.h"

namespace lvs::client {
namespace {

namespace pb = ::lumina::video::v1;

// The flags of `lvs generate`.
struct GenerateFlags {
  std::string prompt;
  std::string output;
  std::string negative;
  std::string resolution;
  int frames = 0;
  int fps = 0;
  std::string sample_config;
  int steps = 0;
  double cache_threshold = 0;
  int64_t seed = 0;
  std::string precision;
  std::string priority;
  std::vector<std::string> labels;
  std::string model;
  std::string request_id;
  double guidance_scale = -1;  // < 0: the sample config's.
  double motion_score = -1;
  bool detach = false;
  bool quiet = false;
  int timeout_s = 7200;
};

template <typename T, typename Schedule, typename Format>
void ToSchedule(const sampler::TimeAware<T>& value, Schedule* out,
                Format format) {
  format(value.default_value, out, nullptr);
  for (const auto& [t, v] : value.steps) {
    auto* sw = out->add_switches();
    sw->set_from_t(static_cast<float>(t));
    format(v, nullptr, sw);
  }
}

// The named config `name` as an explicit one with the guidance scale and
// motion score of the flags in place of the initial values of its schedules.
absl::Status ExplicitSample(const std::string& name, const GenerateFlags& f,
                            pb::SampleConfig* out) {
  absl::StatusOr<sampler::SampleConfig> c = sampler::NamedSampleConfig(name);
  if (!c.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sample-config: ", c.status().message()));
  }
  if (f.guidance_scale >= 0) c->cfg.default_value = f.guidance_scale;
  if (f.motion_score >= 0) c->motion.default_value = f.motion_score;
  ToSchedule(c->patch, out->mutable_patch(),
             [](const sampler::PatchComb& p, pb::PatchSchedule* s,
                pb::PatchSchedule::Switch* sw) {
               if (s != nullptr) s->set_initial(p.ToString());
               if (sw != nullptr) sw->set_patch(p.ToString());
             });
  const auto number = [](double v, pb::ScheduledValue* s,
                         pb::ScheduledValue::Switch* sw) {
    if (s != nullptr) s->set_initial(static_cast<float>(v));
    if (sw != nullptr) sw->set_value(static_cast<float>(v));
  };
  ToSchedule(c->cfg, out->mutable_cfg_scale(), number);
  ToSchedule(c->motion, out->mutable_motion_score(), number);
  ToSchedule(c->neg_motion, out->mutable_negative_motion_score(), number);
  out->set_time_shift(static_cast<float>(c->time_shift));
  out->set_renorm_cfg(c->renorm > 0 ? static_cast<float>(c->renorm) : 0);
  return absl::OkStatus();
}

// Fills `request` from `f`; INVALID_ARGUMENT naming the flag.
absl::Status BuildRequest(const GenerateFlags& f,
                          pb::GenerateVideoRequest* request) {
  if (!IsValidUtf8(f.prompt) || !IsValidUtf8(f.negative)) {
    return absl::InvalidArgumentError(
        "prompt and --negative must be UTF-8 text");
  }
  request->set_prompt(f.prompt);
  request->set_negative_prompt(f.negative);
  if (!f.resolution.empty()) {
    const std::vector<std::string> wh = absl::StrSplit(f.resolution, 'x');
    int w = 0, h = 0;
    if (wh.size() != 2 || !absl::SimpleAtoi(wh[0], &w) ||
        !absl::SimpleAtoi(wh[1], &h)) {
      return absl::InvalidArgumentError(
          "--resolution: expected WIDTHxHEIGHT, e.g. 1248x704");
    }
    request->set_width(w);
    request->set_height(h);
  }
  request->set_frames(f.frames);
  request->set_fps(f.fps);
  request->set_sample_config(f.sample_config);
  if (f.guidance_scale >= 0 || f.motion_score >= 0) {
    // The served models' default config unless --sample-config names one.
    const std::string base =
        f.sample_config.empty() ? "f24F96R960-MultiScale" : f.sample_config;
    absl::Status s = ExplicitSample(base, f, request->mutable_sample());
    if (!s.ok()) return s;
    request->clear_sample_config();
  }
  request->set_steps(f.steps);
  request->set_cache_threshold(static_cast<float>(f.cache_threshold));
  request->set_seed(f.seed);
  static const std::map<std::string, pb::Precision> kPrecision = {
      {"", pb::PRECISION_UNSPECIFIED},
      {"bf16", pb::PRECISION_BF16},
      {"fp32", pb::PRECISION_FP32}};
  request->set_precision(kPrecision.at(f.precision));
  static const std::map<std::string, pb::Priority> kPriority = {
      {"", pb::PRIORITY_UNSPECIFIED},
      {"low", pb::PRIORITY_LOW},
      {"normal", pb::PRIORITY_NORMAL},
      {"high", pb::PRIORITY_HIGH}};
  request->set_priority(kPriority.at(f.priority));
  for (const std::string& label : f.labels) {
    const std::vector<std::string> kv =
        absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      return absl::InvalidArgumentError("--label: expected key=value");
    }
    (*request->mutable_labels())[kv[0]] = kv[1];
  }
  request->set_model(f.model);
  return absl::OkStatus();
}

// A random idempotency key (a version-4 UUID).
std::string NewRequestId() {
  absl::BitGen gen;
  const uint64_t hi = absl::Uniform<uint64_t>(gen);
  const uint64_t lo = absl::Uniform<uint64_t>(gen);
  return absl::StrFormat(
      "%08x-%04x-4%03x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xfff,
      0x8000 | ((lo >> 48) & 0x3fff), lo & 0xffffffffffffULL);
}

// The flag a request field comes from, for error messages.
std::string FlagOf(const std::string& field) {
  static const std::map<std::string, std::string> kFlags = {
      {"video.width", "--resolution"},
      {"video.height", "--resolution"},
      {"video.frames", "--frames"},
      {"video.fps", "--fps"},
      {"video.steps", "--steps"},
      {"video.seed", "--seed"},
      {"video.sample_config", "--sample-config"},
      {"video.sample", "--guidance-scale/--motion-score"},
      {"video.model", "--model"},
      {"video.prompt", "prompt"},
      {"video.negative_prompt", "--negative"},
      {"video.precision", "--precision"},
      {"video.priority", "--priority"},
      {"request_id", "--request-id"}};
  for (const auto& [prefix, flag] : kFlags) {
    if (field == prefix || absl::StartsWith(field, prefix + ".") ||
        absl::StartsWith(field, prefix + "[")) {
      return flag;
    }
  }
  return field;
}

// Prints a refused CreateVideoJob naming the flags the user typed.
void PrintCreateError(const grpc::Status& status) {
  const rpc::ErrorDetails details = rpc::DecodeErrorDetails(status);
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
      !details.field_violations.empty()) {
    std::fprintf(stderr, "lvs: the server refused the request (%s):\n",
                 status.error_message().c_str());
    for (const std::string& v : details.field_violations) {
      const std::vector<std::string> parts =
          absl::StrSplit(v, absl::MaxSplits(": ", 1));
      std::fprintf(stderr, "  %s (%s): %s\n", FlagOf(parts[0]).c_str(),
                   parts[0].c_str(), parts.size() > 1 ? parts[1].c_str() : "");
    }
    return;
  }
  PrintRpcError("CreateVideoJob", status);
}

// Creates the job; retries transient failures with the same request id, so
// a retry never creates a second job.
grpc::Status CreateJob(pb::VideoService::Stub& stub,
                       const GlobalOptions& options, const std::string& id,
                       const pb::GenerateVideoRequest& video,
                       pb::VideoJob* job) {
  pb::CreateVideoJobRequest request;
  *request.mutable_video() = video;
  request.set_request_id(id);
  grpc::Status status;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) absl::SleepFor(absl::Seconds(1 << (attempt - 1)));
    grpc::ClientContext context;
    rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
    status = stub.CreateVideoJob(&context, request, job);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
        status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      break;
    }
  }
  return status;
}

// Creates the job under --request-id (or a new UUID); false (the error
// printed) when the server refuses it.
bool CreateOrPrint(pb::VideoService::Stub& stub, const GlobalOptions& options,
                   const GenerateFlags& f,
                   const pb::GenerateVideoRequest& video, pb::VideoJob* job) {
  const grpc::Status status = CreateJob(
      stub, options, f.request_id.empty() ? NewRequestId() : f.request_id,
      video, job);
  if (!status.ok()) PrintCreateError(status);
  return status.ok();
}

// Creates the job and prints its name (--detach).
int Detach(pb::VideoService::Stub& stub, const GlobalOptions& options,
           const GenerateFlags& f, const pb::GenerateVideoRequest& video) {
  pb::VideoJob job;
  if (!CreateOrPrint(stub, options, f, video, &job)) return 1;
  std::printf("%s\n", job.name().c_str());
  return 0;
}

// Creates the job (retry-safe: an idempotency key) and follows it with
// WatchVideoJob, writing the MP4 to `f.output`; Ctrl-C cancels the job.
int Follow(pb::VideoService::Stub& stub, const GlobalOptions& options,
           const GenerateFlags& f, const pb::GenerateVideoRequest& request) {
  pb::VideoJob job;
  if (!CreateOrPrint(stub, options, f, request, &job)) return 1;
  ProgressBar bar(stderr);
  auto follower = JobFollower::Create(f.output, 0, f.quiet ? nullptr : &bar);
  if (!follower.ok()) {
    std::fprintf(stderr, "lvs: %s\n",
                 std::string(follower.status().message()).c_str());
    return 1;
  }
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, absl::Seconds(f.timeout_s),
                            options.api_key);
  CancelOnInterrupt cancel_on_interrupt(&context);
  pb::WatchVideoJobRequest watch;
  watch.set_name(job.name());
  auto reader = stub.WatchVideoJob(&context, watch);
  const FollowOutcome outcome = (*follower)->Follow(*reader, context);
  if (CancelOnInterrupt::interrupted()) {
    // Ending a watch leaves the job running: cancel it explicitly.
    pb::CancelVideoJobRequest cancel;
    cancel.set_name(job.name());
    pb::VideoJob cancelled;
    grpc::ClientContext cancel_context;
    rpc::PrepareClientContext(&cancel_context, options.timeout(),
                              options.api_key);
    (void)stub.CancelVideoJob(&cancel_context, cancel, &cancelled);
    std::fprintf(stderr, "lvs: cancelled %s\n", job.name().c_str());
    return 130;
  }
  if (!outcome.local.ok()) {
    std::fprintf(stderr, "lvs: %s\n", outcome.local.ToString().c_str());
    return 1;
  }
  if (!outcome.rpc.ok()) {
    PrintRpcError("WatchVideoJob " + job.name(), outcome.rpc);
    return 1;
  }
  const absl::Status local = (*follower)->Finish();
  if (!local.ok()) {
    std::fprintf(stderr, "lvs: %s\n", local.ToString().c_str());
    return 1;
  }
  const pb::Completed& c = (*follower)->result();
  std::printf(
      "%s: %d frames %dx%d @ %d fps, seed %lld, %s (%s, %.1f s)\n",
      f.output.c_str(), c.frames(), c.width(), c.height(), c.fps(),
      static_cast<long long>(c.seed()), FormatBytes(c.size_bytes()).c_str(),
      (*follower)->job().c_str(),
      c.timings().total().seconds() + c.timings().total().nanos() * 1e-9);
  return 0;
}

}  // namespace

void RegisterGenerateCommand(CLI::App& app, const GlobalOptions& options,
                             CommandResult& result) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "generate a video from text");
  cmd->add_option("prompt", f->prompt, "the text prompt")->required();
  cmd->add_option("-o,--output", f->output, "MP4 file to write");
  cmd->add_option("--negative", f->negative, "negative prompt");
  cmd->add_option("--resolution", f->resolution,
                  "WIDTHxHEIGHT, e.g. 1248x704 (default: the model's; "
                  "`lvs models` lists defaults and limits)");
  // Options whose 0 or empty value takes the served model's default.
  const auto model_default = [](const std::string& what,
                                const std::string& lumina) {
    return absl::StrCat(what, " (default: the model's, ", lumina,
                        " for lumina-video)");
  };
  cmd->add_option("--frames", f->frames,
                  model_default("number of frames", "96"));
  cmd->add_option("--fps", f->fps, model_default("frames per second", "24"));
  cmd->add_option(
      "--sample-config", f->sample_config,
      model_default("named sample config", "f24F96R960-MultiScale"));
  cmd->add_option("--steps", f->steps,
                  model_default("sampler grid points: N gives N-1 denoising "
                                "steps",
                                "70"));
  cmd->add_option("--guidance-scale", f->guidance_scale,
                  "classifier-free guidance scale at the start of sampling "
                  "(default: the sample config's, 20 for f24F96R960*)");
  cmd->add_option("--motion-score", f->motion_score,
                  "motion score (default: the sample config's, 6)");
  cmd->add_option("--cache-threshold", f->cache_threshold,
                  "step caching: reuse the DiT's later blocks while the first "
                  "block's input changes by less than this (0: off)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", f->seed, "random seed (0: the server picks)");
  cmd->add_option("--precision", f->precision, "bf16 or fp32")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  cmd->add_option("--priority", f->priority, "low, normal or high")
      ->check(CLI::IsMember({"low", "normal", "high"}));
  cmd->add_option("--label", f->labels, "key=value label (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--model", f->model,
                  "model id or alias a worker must serve (default: any; "
                  "`lvs models` lists them)");
  cmd->add_option("--request-id", f->request_id,
                  "idempotency key (default: a new UUID); repeating the "
                  "command with it never creates a second job");
  cmd->add_flag("--detach", f->detach,
                "create the job, print its name and exit");
  cmd->add_flag("-q,--quiet", f->quiet, "no progress bar");
  cmd->add_option("--stream-timeout", f->timeout_s,
                  "deadline of the whole generation in seconds");
  cmd->callback([f, &options, &result] {
    pb::GenerateVideoRequest request;
    const absl::Status s = BuildRequest(*f, &request);
    if (!s.ok()) {
      std::fprintf(stderr, "lvs: %s\n", std::string(s.message()).c_str());
      result.exit_code = 2;
      return;
    }
    if (!f->detach && f->output.empty()) {
      std::fprintf(stderr, "lvs: -o/--output is required without --detach\n");
      result.exit_code = 2;
      return;
    }
    auto stub = OpenVideoService(options);
    if (stub == nullptr) {
      result.exit_code = 2;
      return;
    }
    result.exit_code = f->detach ? Detach(*stub, options, *f, request)
                                 : Follow(*stub, options, *f, request);
  });
}

}  // namespace lvs::client

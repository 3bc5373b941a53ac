// `lvs generate "prompt" -o out.mp4 [flags]`: submits a job and follows it
// with a live progress bar, writing the MP4 as its chunks arrive; Ctrl-C
// cancels the job. With --detach it only creates the job and prints its name.
#include <cstdio>
#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/command.h"
#include "client/job_follower.h"
#include "client/progress_bar.h"

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
  bool detach = false;
  bool quiet = false;
  int timeout_s = 7200;
};

// Fills `request` from `f`; INVALID_ARGUMENT naming the flag.
absl::Status BuildRequest(const GenerateFlags& f,
                          pb::GenerateVideoRequest* request) {
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

// Creates the job and prints its name (--detach).
int Detach(pb::VideoService::Stub& stub, const GlobalOptions& options,
           const GenerateFlags& f, const pb::GenerateVideoRequest& video) {
  pb::CreateVideoJobRequest request;
  *request.mutable_video() = video;
  request.set_request_id(f.request_id);
  pb::VideoJob job;
  grpc::ClientContext context;
  PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status status = stub.CreateVideoJob(&context, request, &job);
  if (!status.ok()) {
    PrintRpcError("CreateVideoJob", status);
    return 1;
  }
  std::printf("%s\n", job.name().c_str());
  return 0;
}

// Streams the job to `f.output`.
int Follow(pb::VideoService::Stub& stub, const GlobalOptions& options,
           const GenerateFlags& f, const pb::GenerateVideoRequest& request) {
  ProgressBar bar(stderr);
  auto follower = JobFollower::Create(f.output, 0, f.quiet ? nullptr : &bar);
  if (!follower.ok()) {
    std::fprintf(stderr, "lvs: %s\n",
                 std::string(follower.status().message()).c_str());
    return 1;
  }
  grpc::ClientContext context;
  PrepareClientContext(&context, absl::Seconds(f.timeout_s), options.api_key);
  CancelOnInterrupt cancel_on_interrupt(&context);
  auto reader = stub.GenerateVideo(&context, request);
  const FollowOutcome outcome = (*follower)->Follow(*reader, context);
  if (!outcome.local.ok()) {
    std::fprintf(stderr, "lvs: %s\n", outcome.local.ToString().c_str());
    return 1;
  }
  if (!outcome.rpc.ok()) {
    if (CancelOnInterrupt::interrupted()) {
      std::fprintf(stderr, "lvs: cancelled %s\n", (*follower)->job().c_str());
      return 130;
    }
    PrintRpcError("GenerateVideo", outcome.rpc);
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
  cmd->add_option("--resolution", f->resolution, "WIDTHxHEIGHT, e.g. 1248x704");
  cmd->add_option("--frames", f->frames, "number of frames");
  cmd->add_option("--fps", f->fps, "frames per second");
  cmd->add_option("--sample-config", f->sample_config,
                  "named sample config, e.g. f24F96R960-MultiScale");
  cmd->add_option(
      "--steps", f->steps,
      "sampler grid points: N gives N-1 denoising steps (default 70)");
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
  cmd->add_option("--model", f->model, "model id a worker must serve");
  cmd->add_option("--request-id", f->request_id,
                  "idempotency key (with --detach)");
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

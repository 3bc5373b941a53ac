// `lvs workers`: the connected workers and trainers, and `lvs workers
// reload`: swap the DiT of running workers for a checkpoint directory or a
// finished training job's final checkpoint (AdminService; pass the admin
// key with --api-key).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/command.h"
#include "client/progress_bar.h"

namespace lvs::client {
namespace {

namespace pb = ::lumina::video::v1;

int ListWorkers(const GlobalOptions& options) {
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  pb::ListWorkersResponse response;
  grpc::ClientContext context;
  PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status status =
      stub->ListWorkers(&context, pb::ListWorkersRequest(), &response);
  if (!status.ok()) {
    PrintRpcError("ListWorkers", status);
    return 1;
  }
  std::printf("%-24s %-9s %-22s %-24s %-10s %-12s %s\n", "NAME", "KIND",
              "STATE", "JOB", "DEVICE", "MEMORY", "DONE");
  for (const pb::Worker& w : response.workers()) {
    const std::string kind =
        w.kind() == pb::WORKER_KIND_TRAINER ? "trainer" : "generator";
    std::string state = pb::WorkerState_Name(w.state());
    const std::string prefix = "WORKER_STATE_";
    if (state.rfind(prefix, 0) == 0) state = state.substr(prefix.size());
    std::printf("%-24s %-9s %-22s %-24s %-10s %-12s %lld\n", w.name().c_str(),
                kind.c_str(), state.c_str(),
                w.current_job().empty() ? "-" : w.current_job().c_str(),
                w.capabilities().device().c_str(),
                FormatBytes(w.gpu_memory_used_bytes()).c_str(),
                static_cast<long long>(w.jobs_done()));
  }
  return 0;
}

// What `lvs workers reload` asks for.
struct ReloadFlags {
  std::vector<std::string> workers;
  std::string checkpoint, training_job;
  bool use_ema = false;
};

// Prints one line per worker; returns 0 when every worker reloaded.
int ReloadWorkers(const GlobalOptions& options, const ReloadFlags& flags) {
  if (flags.checkpoint.empty() == flags.training_job.empty()) {
    std::fprintf(stderr,
                 "lvs: give exactly one of --checkpoint and --training-job\n");
    return 2;
  }
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  pb::ReloadModelRequest request;
  for (const std::string& w : flags.workers) request.add_workers(w);
  request.set_checkpoint(flags.checkpoint);
  if (!flags.training_job.empty()) {
    const std::string prefix = "trainingJobs/";
    request.set_training_job(flags.training_job.rfind(prefix, 0) == 0
                                 ? flags.training_job
                                 : prefix + flags.training_job);
  }
  request.set_use_ema(flags.use_ema);
  pb::ReloadModelResponse response;
  grpc::ClientContext context;
  // Loading a 2B checkpoint takes a while: at least 10 minutes.
  PrepareClientContext(&context, std::max(options.timeout(), absl::Minutes(10)),
                       options.api_key);
  const grpc::Status status = stub->ReloadModel(&context, request, &response);
  if (!status.ok()) {
    PrintRpcError("ReloadModel", status);
    return 1;
  }
  int failed = 0;
  for (const pb::WorkerReload& r : response.results()) {
    if (r.status().code() == 0) {
      std::printf("%-24s reloaded: %s\n", r.worker().c_str(),
                  r.model_version().c_str());
    } else {
      ++failed;
      std::printf("%-24s failed: %s (still serving %s)\n", r.worker().c_str(),
                  r.status().message().c_str(),
                  r.model_version().empty() ? "its previous weights"
                                            : r.model_version().c_str());
    }
  }
  if (response.results().empty()) std::printf("no generator worker\n");
  return failed == 0 && !response.results().empty() ? 0 : 1;
}

}  // namespace

void RegisterWorkersCommand(CLI::App& app, const GlobalOptions& options,
                            CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "workers", "list connected workers and trainers (admin key)");
  cmd->callback([&options, &result, cmd] {
    if (cmd->get_subcommands().empty()) result.exit_code = ListWorkers(options);
  });
  auto flags = std::make_shared<ReloadFlags>();
  CLI::App* reload = cmd->add_subcommand(
      "reload", "load a checkpoint into running workers without a restart");
  reload->add_option("--worker", flags->workers,
                     "worker name (repeatable; default: every generator)");
  reload->add_option("--checkpoint", flags->checkpoint,
                     "checkpoint directory readable by the workers");
  reload->add_option("--training-job", flags->training_job,
                     "a SUCCEEDED training job whose final checkpoint loads");
  reload->add_flag("--ema", flags->use_ema, "load the EMA weights");
  reload->callback([&options, &result, flags] {
    result.exit_code = ReloadWorkers(options, *flags);
  });
}

}  // namespace lvs::client

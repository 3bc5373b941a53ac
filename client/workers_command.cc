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
  rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status status =
      stub->ListWorkers(&context, pb::ListWorkersRequest(), &response);
  if (!status.ok()) {
    PrintRpcError("ListWorkers", status);
    return 1;
  }
  std::printf("%-24s %-9s %-10s %-24s %-10s %-12s %-6s %-14s %s\n", "NAME",
              "KIND", "STATE", "JOB", "DEVICE", "MEMORY", "DONE", "MODEL",
              "VERSION");
  for (const pb::Worker& w : response.workers()) {
    const std::string kind =
        w.kind() == pb::WORKER_KIND_TRAINER ? "trainer" : "generator";
    std::string state = pb::WorkerState_Name(w.state());
    const std::string prefix = "WORKER_STATE_";
    if (state.rfind(prefix, 0) == 0) state = state.substr(prefix.size());
    const auto& caps = w.capabilities();
    const std::string model = caps.model_limits_size() > 0
                                  ? caps.model_limits(0).id()
                              : caps.models_size() > 0 ? caps.models(0)
                                                       : "-";
    std::printf(
        "%-24s %-9s %-10s %-24s %-10s %-12s %-6lld %-14s %s\n",
        w.name().c_str(), kind.c_str(), state.c_str(),
        w.current_job().empty() ? "-" : w.current_job().c_str(),
        caps.device().c_str(), FormatBytes(w.gpu_memory_used_bytes()).c_str(),
        static_cast<long long>(w.jobs_done()), model.c_str(),
        caps.model_version().empty() ? "-" : caps.model_version().c_str());
  }
  return 0;
}

// What `lvs workers reload` asks for.
struct ReloadFlags {
  std::vector<std::string> workers;
  std::string checkpoint, training_job, vae;
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
  request.set_vae(flags.vae);
  {
    // A worker reloads between jobs: say who is waiting for what.
    pb::ListWorkersResponse listed;
    grpc::ClientContext list_context;
    rpc::PrepareClientContext(&list_context, options.timeout(),
                              options.api_key);
    if (stub->ListWorkers(&list_context, pb::ListWorkersRequest(), &listed)
            .ok()) {
      for (const pb::Worker& w : listed.workers()) {
        const bool addressed =
            flags.workers.empty()
                ? w.kind() == pb::WORKER_KIND_GENERATOR
                : std::find(flags.workers.begin(), flags.workers.end(),
                            w.name()) != flags.workers.end();
        if (addressed && !w.current_job().empty()) {
          std::fprintf(stderr,
                       "%s: waiting for its running job %s to finish "
                       "before it loads the checkpoint\n",
                       w.name().c_str(), w.current_job().c_str());
        }
      }
    }
  }
  pb::ReloadModelResponse response;
  grpc::ClientContext context;
  // Loading a 2B checkpoint takes a while: at least 10 minutes.
  rpc::PrepareClientContext(&context,
                            std::max(options.timeout(), absl::Minutes(10)),
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

// `lvs workers drain NAME`: the worker finishes its job, takes no more and
// exits.
int DrainWorker(const GlobalOptions& options, const std::string& name) {
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  pb::DrainWorkerRequest request;
  request.set_name(name);
  pb::Worker worker;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status status = stub->DrainWorker(&context, request, &worker);
  if (!status.ok()) {
    PrintRpcError("DrainWorker", status);
    return 1;
  }
  std::printf("%s draining%s%s\n", worker.name().c_str(),
              worker.current_job().empty() ? "" : " after ",
              worker.current_job().c_str());
  return 0;
}

// `lvs queue`: GetQueueStats.
int QueueStats(const GlobalOptions& options) {
  auto stub = OpenAdminService(options);
  if (stub == nullptr) return 2;
  pb::QueueStats stats;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status status =
      stub->GetQueueStats(&context, pb::GetQueueStatsRequest(), &stats);
  if (!status.ok()) {
    PrintRpcError("GetQueueStats", status);
    return 1;
  }
  std::printf("video jobs: %lld queued (max %lld), %lld running\n",
              static_cast<long long>(stats.queued()),
              static_cast<long long>(stats.max_queue()),
              static_cast<long long>(stats.running()));
  for (const pb::PriorityDepth& d : stats.depth()) {
    std::printf("  %s: %lld queued\n", pb::Priority_Name(d.priority()).c_str(),
                static_cast<long long>(d.queued()));
  }
  std::printf("training jobs: %lld queued, %lld running\n",
              static_cast<long long>(stats.training_queued()),
              static_cast<long long>(stats.training_running()));
  std::printf("workers: %d idle, %d busy, %d draining\n", stats.workers_idle(),
              stats.workers_busy(), stats.workers_draining());
  return 0;
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
  reload->add_option("--vae", flags->vae,
                     "a diffusers VAE directory loaded with the DiT (e.g. "
                     "the final checkpoint of a VAE training job)");
  reload->callback([&options, &result, flags] {
    result.exit_code = ReloadWorkers(options, *flags);
  });
  auto drain_name = std::make_shared<std::string>();
  CLI::App* drain = cmd->add_subcommand(
      "drain", "let a worker finish its job, take no more and exit");
  drain->add_option("name", *drain_name, "worker name")->required();
  drain->callback([&options, &result, drain_name] {
    result.exit_code = DrainWorker(options, *drain_name);
  });
  CLI::App* queue = app.add_subcommand(
      "queue", "queue depth per priority, running jobs, workers (admin key)");
  queue->callback(
      [&options, &result] { result.exit_code = QueueStats(options); });
}

}  // namespace lvs::client

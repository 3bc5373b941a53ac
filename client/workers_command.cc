// `lvs workers`: the connected workers and trainers (AdminService; pass the
// admin key with --api-key).
#include <cstdio>

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

}  // namespace

void RegisterWorkersCommand(CLI::App& app, const GlobalOptions& options,
                            CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "workers", "list connected workers and trainers (admin key)");
  cmd->callback(
      [&options, &result] { result.exit_code = ListWorkers(options); });
}

}  // namespace lvs::client

// Shared plumbing of the `lvs` subcommands: the global flags, the stubs they
// open, and the registration function of each subcommand (one file each:
// generate_command.cc, jobs_command.cc, workers_command.cc; `lvs train` adds
// its own file the same way).
//
// Thread-safety: used by the main thread only (commands may start helper
// threads of their own).
#ifndef LVS_CLIENT_COMMAND_H_
#define LVS_CLIENT_COMMAND_H_

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lumina/video/v1/admin_service.grpc.pb.h"
#include "lumina/video/v1/video_service.grpc.pb.h"
#include "rpc/channel.h"

namespace lvs::client {

// Flags every subcommand shares.
struct GlobalOptions {
  rpc::ChannelOptions channel;
  // Client API key (VideoService) or admin key (AdminService commands).
  std::string api_key;
  // Deadline of unary calls, in seconds.
  int timeout_seconds = 30;

  // Returns the deadline of unary calls.
  absl::Duration timeout() const { return absl::Seconds(timeout_seconds); }
};

// The process exit code a subcommand sets: 0 success, 1 the call failed,
// 2 a usage error.
struct CommandResult {
  int exit_code = 0;
};

// Opens a VideoService stub; prints the error and returns null on failure.
std::unique_ptr<lumina::video::v1::VideoService::Stub> OpenVideoService(
    const GlobalOptions& options);

// Opens an AdminService stub; prints the error and returns null on failure.
std::unique_ptr<lumina::video::v1::AdminService::Stub> OpenAdminService(
    const GlobalOptions& options);

// Prints `status` (with its rich-error details) to stderr as "lvs: ...".
void PrintRpcError(const std::string& what, const grpc::Status& status);

// Returns "jobs/{id}" for an id given with or without the prefix.
std::string JobName(const std::string& id_or_name);

// Blocks SIGINT and SIGTERM in the calling thread (call first in main,
// before any thread starts) and takes them on a helper thread: a signal
// cancels the call registered with CancelOnInterrupt, or exits with 130
// when none is.
void StartSignalThread();

// While alive, SIGINT/SIGTERM cancel `context` (a second signal exits).
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* context);
  ~CancelOnInterrupt();
  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;

  // Returns whether a signal cancelled the call.
  static bool interrupted();
};

// Registers `lvs generate`.
void RegisterGenerateCommand(CLI::App& app, const GlobalOptions& options,
                             CommandResult& result);

// Registers `lvs jobs list|get|watch|cancel|delete`.
void RegisterJobsCommand(CLI::App& app, const GlobalOptions& options,
                         CommandResult& result);

// Registers `lvs models` (models_command.cc).
void RegisterModelsCommand(CLI::App& app, const GlobalOptions& options,
                           CommandResult& result);

// Registers `lvs workers`.
void RegisterWorkersCommand(CLI::App& app, const GlobalOptions& options,
                            CommandResult& result);

// Registers `lvs train submit|watch|list|cancel` (train_command.cc).
void RegisterTrainCommand(CLI::App& app, const GlobalOptions& options,
                          CommandResult& result);

}  // namespace lvs::client

#endif  // LVS_CLIENT_COMMAND_H_

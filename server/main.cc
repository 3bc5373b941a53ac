// lvs-server: the front server of lvs. See server/server_app.h and the README
// for the flags; SIGTERM or SIGINT drains and exits.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "server/server_app.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "VideoService, AdminService, health and reflection (host:port).");
ABSL_FLAG(std::string, worker_listen, "127.0.0.1:50052",
          "WorkerService: workers and trainers dial in here.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "HTTP /metrics, /healthz, /readyz; empty disables it.");
ABSL_FLAG(std::string, health_listen, "",
          "Optional plaintext gRPC health-only port (for probes under TLS).");
ABSL_FLAG(std::string, data_dir, "./lvs-data",
          "Holds the SQLite store lvs.db and results/.");
ABSL_FLAG(absl::Duration, result_ttl, absl::Hours(24),
          "How long finished jobs and their videos are kept.");
ABSL_FLAG(
    int64_t, results_quota_bytes, 0,
    "Most bytes of results kept; the oldest finished go first (0: none).");
ABSL_FLAG(int64_t, max_queue, 1000, "Most queued video jobs.");
ABSL_FLAG(int64_t, max_per_client, 0,
          "Most queued + running jobs per client without a per-key limit "
          "(0: none).");
ABSL_FLAG(int, lease_seconds, 30,
          "A lease expires this long after the worker's last heartbeat.");
ABSL_FLAG(int, heartbeat_seconds, 5, "Heartbeat interval told to workers.");
ABSL_FLAG(int, max_attempts, 3, "Leases per job before a lost lease fails it.");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(30),
          "On SIGTERM, how long running jobs may finish before re-queueing.");
ABSL_FLAG(std::string, api_keys_file, "",
          "One key[:max_concurrent[:max_queued]] per line; empty: no client "
          "auth (loopback).");
ABSL_FLAG(std::string, admin_key_file, "", "File with the admin key.");
ABSL_FLAG(std::string, worker_token_file, "", "File with the worker token.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain (enables TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA for client certificates (enables mutual TLS).");
ABSL_FLAG(int, max_prompt_bytes, 4096, "Longest prompt accepted.");
ABSL_FLAG(int, max_width, 1920, "Widest video accepted (pixels).");
ABSL_FLAG(int, max_height, 1920, "Tallest video accepted (pixels).");
ABSL_FLAG(int, max_frames, 256, "Most frames accepted.");
ABSL_FLAG(int, max_steps, 250, "Most sampling steps accepted.");
ABSL_FLAG(int, max_receive_message_bytes, 4 << 20,
          "Largest request message accepted.");

namespace {

lvs::server::ServerOptions OptionsFromFlags() {
  lvs::server::ServerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.worker_listen = absl::GetFlag(FLAGS_worker_listen);
  o.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  o.health_listen = absl::GetFlag(FLAGS_health_listen);
  o.store.data_dir = absl::GetFlag(FLAGS_data_dir);
  o.store.result_ttl = absl::GetFlag(FLAGS_result_ttl);
  o.store.results_quota_bytes = absl::GetFlag(FLAGS_results_quota_bytes);
  o.store.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  o.store.lease_duration = absl::Seconds(absl::GetFlag(FLAGS_lease_seconds));
  o.dispatcher.heartbeat_interval =
      absl::Seconds(absl::GetFlag(FLAGS_heartbeat_seconds));
  o.video.max_queue = absl::GetFlag(FLAGS_max_queue);
  o.video.max_per_client = absl::GetFlag(FLAGS_max_per_client);
  o.video.caps.max_prompt_bytes = absl::GetFlag(FLAGS_max_prompt_bytes);
  o.video.caps.max_width = absl::GetFlag(FLAGS_max_width);
  o.video.caps.max_height = absl::GetFlag(FLAGS_max_height);
  o.video.caps.max_frames = absl::GetFlag(FLAGS_max_frames);
  o.video.caps.max_steps = absl::GetFlag(FLAGS_max_steps);
  o.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  o.api_keys_file = absl::GetFlag(FLAGS_api_keys_file);
  o.admin_key_file = absl::GetFlag(FLAGS_admin_key_file);
  o.worker_token_file = absl::GetFlag(FLAGS_worker_token_file);
  o.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key = absl::GetFlag(FLAGS_tls_key);
  o.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  o.max_receive_message_bytes = absl::GetFlag(FLAGS_max_receive_message_bytes);
  return o;
}

// The serving contract spells flags with dashes (--worker-listen); absl
// flags are identifiers, so the names are rewritten before parsing.
std::vector<char*> DashesToUnderscores(int argc, char** argv,
                                       std::vector<std::string>* storage) {
  storage->assign(argv, argv + argc);
  for (std::string& arg : *storage) {
    if (arg.rfind("--", 0) != 0) continue;
    const size_t end = std::min(arg.find('='), arg.size());
    std::replace(arg.begin() + 2, arg.begin() + end, '-', '_');
  }
  std::vector<char*> out;
  for (std::string& arg : *storage) out.push_back(arg.data());
  return out;
}

// absl exits 1 on a bad flag; lvs programs exit 2 on usage errors, so the
// (rewritten) arguments are checked first: every flag must exist and its
// value parse. Returns "" or the error (--help is handled before).
std::string UsageError(const std::vector<char*>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::StrCat("unexpected argument '", arg, "'");
    }
    const size_t start = arg[1] == '-' ? 2 : 1;
    const size_t eq = arg.find('=');
    std::string name = arg.substr(
        start, eq == std::string::npos ? std::string::npos : eq - start);
    if (absl::StartsWith(name, "help") || name == "version" ||
        name == "only_check_args") {
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      negated = flag != nullptr && flag->IsOfType<bool>();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr) {
      std::replace(name.begin(), name.end(), '_', '-');
      return absl::StrCat("unknown flag --", name);
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (negated) {
      value = "false";
    } else if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      std::replace(name.begin(), name.end(), '_', '-');
      return absl::StrCat("missing value for --", name);
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::replace(name.begin(), name.end(), '_', '-');
      return absl::StrCat("bad value for --", name, ": ", error);
    }
  }
  return "";
}

// --help: the program's flags as users spell them (dashes), with their
// defaults; absl's own help exits 1 and lists underscores.
void PrintHelp() {
  std::printf("%s\n\nFlags (--name=value or --name value):\n",
              std::string(absl::ProgramUsageMessage()).c_str());
  std::vector<std::pair<std::string, const absl::CommandLineFlag*>> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "server/main.cc")) {
      std::string dashed(name);
      std::replace(dashed.begin(), dashed.end(), '_', '-');
      flags.emplace_back(dashed, flag);
    }
  }
  std::sort(flags.begin(), flags.end());
  for (const auto& [name, flag] : flags) {
    std::printf("  --%s  %s (default: \"%s\")\n", name.c_str(),
                flag->Help().c_str(), flag->DefaultValue().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "lvs-server: durable text-to-video job server.\n"
      "  lvs-server --listen=127.0.0.1:50051 --worker-listen=127.0.0.1:50052 "
      "--data-dir=./lvs-data");
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (absl::StartsWith(arg, "--help") || absl::StartsWith(arg, "-help")) {
      PrintHelp();
      return 0;
    }
  }
  std::vector<std::string> storage;
  std::vector<char*> args = DashesToUnderscores(argc, argv, &storage);
  if (const std::string error = UsageError(args); !error.empty()) {
    std::fprintf(stderr, "lvs-server: %s (see --help)\n", error.c_str());
    return 2;
  }
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  lvs::common::SetLogProcess("lvs-server");
  // Signals go to the waiting thread below, not to gRPC's threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const lvs::server::ServerOptions options = OptionsFromFlags();
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  if (options.api_keys_file.empty() && host != "127.0.0.1" &&
      host != "localhost" && host != "[::1]") {
    lvs::common::LogEvent(
        "warning",
        {{"message",
          absl::StrCat("serving without authentication on ", options.listen,
                       ", which is not loopback: anyone who can reach it "
                       "can submit jobs (set --api-keys-file and "
                       "--admin-key-file)")}});
  }
  auto app = lvs::server::ServerApp::Create(options);
  if (!app.ok()) {
    std::fprintf(stderr, "lvs-server: %s\n", app.status().ToString().c_str());
    return 2;
  }
  absl::Status started = (*app)->Start();
  if (!started.ok()) {
    std::fprintf(stderr, "lvs-server: %s\n", started.ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  lvs::common::LogEvent("signal",
                        {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*app)->Drain();
  return 0;
}

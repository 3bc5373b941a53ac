// lvs-worker: serves one model and dials in to the lvs front server.
//
//   lvs-worker --server=127.0.0.1:50052 --name=w1 --model=fake
//   lvs-worker --server=... --model=lumina --dit=DIR --text-encoder=DIR
//              --vae=DIR --device=cuda:0
//
// SIGTERM or SIGINT drains: the running job finishes, then the process exits.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/shutdown_signal.h"
#include "model/common/blas_check.h"
#include "worker/metrics_http.h"
#include "worker/model_factory.h"
#include "worker/worker.h"

namespace {

// Returns the first line of `path`, trimmed; INVALID_ARGUMENT naming `flag`.
absl::StatusOr<std::string> ReadToken(const std::string& path,
                                      const std::string& flag) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read '", path, "'"));
  }
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

}  // namespace

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  CLI::App app{"lvs-worker: runs video jobs for an lvs server"};
  lvs::worker::WorkerOptions options;
  lvs::worker::ModelOptions model;
  // Off by default: a fixed port would stop a second worker on one host.
  std::string token_file, metrics_listen;
  int fake_step_ms = 20;
  int fake_decode_ms = 0;
  options.channel.target = "127.0.0.1:50052";
  char host[256] = "worker";
  gethostname(host, sizeof(host) - 1);
  options.name = absl::StrCat(host, "-", getpid());
  app.add_option("--server", options.channel.target,
                 "host:port of the server's worker port");
  app.add_option("--name", options.name, "unique worker name");
  model.kind.clear();
  app.add_option("--model", model.kind,
                 "lumina (the default when --dit, --text-encoder or --vae "
                 "is given) or fake (synthetic frames, for tests)")
      ->check(CLI::IsMember({"fake", "lumina"}));
  app.add_option("--dit", model.dit_dir, "DiT checkpoint directory");
  app.add_option("--text-encoder", model.text_encoder_dir,
                 "Gemma-2 text encoder directory");
  app.add_option("--vae", model.vae_dir, "VAE directory");
  app.add_option("--device", model.device, "cpu or cuda[:N]");
  std::string devices;
  app.add_option("--devices", devices,
                 "lumina model: several devices, e.g. cuda:0,cuda:1 (the DiT "
                 "runs CFG- and sequence-parallel over them)");
  app.add_option("--threads", model.threads,
                 "LibTorch intra-op CPU threads (0: all usable cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--worker-token-file", token_file,
                 "file holding the shared worker token");
  app.add_option("--metrics-listen", metrics_listen,
                 "host:port of /metrics and /healthz (default and empty: "
                 "off; port 0 picks a free one)");
  app.add_option("--tls-ca", options.channel.tls_ca,
                 "CA of the server certificate (enables TLS)");
  app.add_option("--tls-cert", options.channel.tls_cert,
                 "client certificate for mutual TLS");
  app.add_option("--tls-key", options.channel.tls_key,
                 "client key for mutual TLS");
  app.add_option("--fake-step-ms", fake_step_ms,
                 "fake model: milliseconds per denoising step");
  app.add_option("--fake-decode-ms", fake_decode_ms,
                 "fake model: milliseconds per decoded chunk of 8 frames");
  app.add_option("--fake-fail-at-step", model.fake.fail_at_step,
                 "fake model: fail at this 1-based step (0: never)");
  app.add_option("--x264-crf", options.encoder.crf,
                 "x264 constant rate factor");
  app.add_option("--x264-preset", options.encoder.preset, "x264 preset");
  // CLI11 refuses an empty `--flag=` value; `--metrics-listen=` means off.
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& a : args) {
    if (a == "--metrics-listen=") a = "--metrics-listen=off";
  }
  std::vector<char*> argp;
  for (std::string& a : args) argp.push_back(a.data());
  try {
    app.parse(static_cast<int>(argp.size()), argp.data());
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (metrics_listen == "off") metrics_listen.clear();
  lvs::common::SetLogProcess("lvs-worker");
  lvs::common::SetLogContext({{"worker_id", options.name}});
  if (model.kind.empty()) {
    if (model.dit_dir.empty() && model.text_encoder_dir.empty() &&
        model.vae_dir.empty()) {
      std::fprintf(stderr,
                   "lvs-worker: --model: give --model=lumina with --dit, "
                   "--text-encoder and --vae (or --model=fake, the synthetic "
                   "test model)\n");
      return 2;
    }
    model.kind = "lumina";
  }
  // libx264 logs ~18 info lines per job through av_log; keep warnings.
  av_log_set_level(AV_LOG_WARNING);
  model.fake.step_time = absl::Milliseconds(fake_step_ms);
  model.fake.decode_time = absl::Milliseconds(fake_decode_ms);
  if (!devices.empty()) {
    model.devices = absl::StrSplit(devices, ',', absl::SkipEmpty());
    if (!model.devices.empty()) model.device = model.devices[0];
  }
  options.device = devices.empty() ? model.device : devices;

  if (!token_file.empty()) {
    auto token = ReadToken(token_file, "--worker-token-file");
    if (!token.ok()) {
      std::fprintf(stderr, "lvs-worker: %s\n",
                   token.status().ToString().c_str());
      return 2;
    }
    options.token = *token;
  }
  // SIGTERM/SIGINT drain (a handler, not sigwait: LibTorch's BLAS threads
  // exist before main and would take a blocked-elsewhere signal).
  if (absl::Status s = lvs::common::InstallShutdownSignalHandlers(); !s.ok()) {
    std::fprintf(stderr, "lvs-worker: %s\n", s.ToString().c_str());
    return 2;
  }

  auto loaded = lvs::worker::CreateVideoModel(model);
  if (!loaded.ok()) {
    std::fprintf(stderr, "lvs-worker: %s\n",
                 loaded.status().ToString().c_str());
    return 2;
  }
  lvs::worker::Worker worker(options, *std::move(loaded));
  lvs::worker::MetricsHttpServer metrics(options.name, &worker);
  if (!metrics_listen.empty()) {
    const absl::Status s = metrics.Start(metrics_listen);
    if (!s.ok()) {
      std::fprintf(stderr, "lvs-worker: %s\n", s.ToString().c_str());
      return 2;
    }
  }
  std::thread signal_thread([&] {
    lvs::common::WaitForShutdownSignal();
    worker.Drain();
  });
  signal_thread.detach();
  const absl::Status status = worker.Run();
  metrics.Stop();
  if (!status.ok()) {
    std::fprintf(stderr, "lvs-worker: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

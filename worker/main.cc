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
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "model/common/blas_check.h"
#include "model/common/shutdown_signal.h"
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
  std::string token_file, metrics_listen = "127.0.0.1:9465";
  int fake_step_ms = 20;
  options.channel.target = "127.0.0.1:50052";
  char host[256] = "worker";
  gethostname(host, sizeof(host) - 1);
  options.name = absl::StrCat(host, "-", getpid());
  app.add_option("--server", options.channel.target,
                 "host:port of the server's worker port");
  app.add_option("--name", options.name, "unique worker name");
  app.add_option("--model", model.kind, "fake or lumina")
      ->check(CLI::IsMember({"fake", "lumina"}));
  app.add_option("--dit", model.dit_dir, "DiT checkpoint directory");
  app.add_option("--text-encoder", model.text_encoder_dir,
                 "Gemma-2 text encoder directory");
  app.add_option("--vae", model.vae_dir, "VAE directory");
  app.add_option("--device", model.device, "cpu or cuda[:N]");
  app.add_option("--threads", model.threads,
                 "LibTorch intra-op CPU threads (0: all usable cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--worker-token-file", token_file,
                 "file holding the shared worker token");
  app.add_option("--metrics-listen", metrics_listen,
                 "host:port of /metrics and /healthz (empty: off)");
  app.add_option("--tls-ca", options.channel.tls_ca,
                 "CA of the server certificate (enables TLS)");
  app.add_option("--tls-cert", options.channel.tls_cert,
                 "client certificate for mutual TLS");
  app.add_option("--tls-key", options.channel.tls_key,
                 "client key for mutual TLS");
  app.add_option("--fake-step-ms", fake_step_ms,
                 "fake model: milliseconds per denoising step");
  app.add_option("--fake-fail-at-step", model.fake.fail_at_step,
                 "fake model: fail at this 1-based step (0: never)");
  app.add_option("--x264-crf", options.encoder.crf,
                 "x264 constant rate factor");
  app.add_option("--x264-preset", options.encoder.preset, "x264 preset");
  CLI11_PARSE(app, argc, argv);
  model.fake.step_time = absl::Milliseconds(fake_step_ms);
  options.device = model.device;

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

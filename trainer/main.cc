// lvs-trainer: the training process.
//
// Service mode (default): dials in to the server's worker port and runs the
// training jobs it leases (trainer_service.h):
//   lvs-trainer --server=127.0.0.1:50052 --name=trainer-0 --work-dir=DIR
//               [--worker-token-file=F] [--device=cpu] [--tls-ca=F]
// Local mode: runs one job spec (JSON, train_spec.h field names) without a
// server, optionally as rank R of a data-parallel group over c10d/Gloo
// (every rank runs the same command with its own --rank; a spec with
// data_parallel > 1 run without --world-size runs all its ranks in this
// process, one per device from --device, as leased jobs do); prints one
// JSON line per step and writes checkpoints (rank 0) under --work-dir:
//   lvs-trainer --spec=job.json --work-dir=DIR [--resume=CKPT]
//               [--rank=0 --world-size=2 --dist-port=29500]
// Both modes serve Prometheus metrics and a health check with
// --metrics-listen=HOST:PORT (trainer_metrics.h); in local mode
// --metrics-linger=SECONDS keeps them up after the run so the last values
// can be scraped.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/cli_parse.h"
#include "common/log.h"
#include "common/shutdown_signal.h"
#include "model/common/blas_check.h"
#include "trainer/checkpoint.h"
#include "trainer/trainer.h"
#include "trainer/trainer_group.h"
#include "trainer/trainer_metrics.h"
#include "trainer/trainer_service.h"
#include "trainer/vae_trainer.h"
#ifdef LVS_HAVE_C10D_GLOO
#include "trainer/data_parallel.h"
#endif

namespace {

struct LocalFlags {
  std::string spec, work_dir, resume, device = "cpu", dist_host = "127.0.0.1";
  int rank = 0, world_size = 1, dist_port = 29500;
};

// Joins the data-parallel group of `f` when --world-size > 1; leaves
// `reducer` null for a single process. Errors are printed; returns the exit
// code (0 on success).
int JoinGroup(const LocalFlags& f,
              std::unique_ptr<lvs::trainer::GradientReducer>* reducer) {
  if (f.world_size <= 1) return 0;
#ifdef LVS_HAVE_C10D_GLOO
  lvs::trainer::DataParallelOptions dp;
  dp.host = f.dist_host;
  dp.port = static_cast<uint16_t>(f.dist_port);
  dp.rank = f.rank;
  dp.world_size = f.world_size;
  auto r = lvs::trainer::JoinGlooGroup(dp);
  if (!r.ok()) {
    std::fprintf(stderr, "lvs-trainer: %s\n", r.status().ToString().c_str());
    return 1;
  }
  *reducer = std::move(*r);
  return 0;
#else
  std::fprintf(stderr,
               "lvs-trainer: built without c10d/Gloo; --world-size must "
               "be 1\n");
  return 2;
#endif
}

// Prints one JSON line of a step (the local mode's output).
void PrintStep(const lvs::trainer::StepStats& st) {
  nlohmann::json line = {{"step", st.step + 1},
                         {"loss", st.loss},
                         {"task_loss", st.task_loss},
                         {"grad_norm", st.grad_norm},
                         {"lr", st.learning_rate},
                         {"seconds", st.seconds},
                         {"samples_per_second", st.samples / st.seconds}};
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

// Runs the steps of a created (and possibly resumed) Trainer or
// TrainerGroup, checkpointing on rank 0; tells `obs` of every step,
// checkpoint and the outcome.
template <typename Spec, typename T>
int TrainLocal(const LocalFlags& f, const Spec& spec, T& tr,
               lvs::trainer::TrainerObserver& obs) {
  using namespace lvs::trainer;
  auto save = [&]() -> bool {
    if (f.rank != 0) return true;
    const std::string dir = CheckpointDir(f.work_dir, tr.next_step());
    absl::Status s = tr.SaveCheckpoint(dir);
    if (!s.ok()) {
      std::fprintf(stderr, "lvs-trainer: %s\n", s.ToString().c_str());
      return false;
    }
    obs.OnCheckpoint(f.spec, tr.next_step());
    return true;
  };
  obs.OnJobStarted(f.spec, tr.next_step(), spec.max_steps);
  while (!tr.done()) {
    absl::StatusOr<StepStats> st = tr.Step();
    if (!st.ok()) {
      std::fprintf(stderr, "lvs-trainer: %s\n", st.status().ToString().c_str());
      obs.OnJobEnded(f.spec, "failed");
      return 1;
    }
    PrintStep(*st);
    obs.OnStep(f.spec, *st);
    const int64_t n = tr.next_step();
    if (spec.checkpoint_interval > 0 && n % spec.checkpoint_interval == 0 &&
        !tr.done() && !save()) {
      obs.OnJobEnded(f.spec, "failed");
      return 1;
    }
  }
  const bool saved = save();
  obs.OnJobEnded(f.spec, saved ? "completed" : "failed");
  return saved ? 0 : 1;
}

// Trains a VAE (`model_type: "vae"`), then prints the held-out PSNR of the
// final checkpoint as one JSON line.
int RunLocalVae(const LocalFlags& f, const nlohmann::json& json,
                lvs::trainer::TrainerObserver& obs) {
  using namespace lvs::trainer;
  absl::StatusOr<VaeTrainSpec> spec = VaeTrainSpecFromJson(json);
  absl::StatusOr<std::unique_ptr<VaeTrainer>> tr =
      spec.ok() ? VaeTrainer::Create(*spec, torch::Device(f.device))
                : absl::StatusOr<std::unique_ptr<VaeTrainer>>(spec.status());
  if (!tr.ok()) {
    std::fprintf(stderr, "lvs-trainer: %s\n", tr.status().ToString().c_str());
    return 2;
  }
  if (!f.resume.empty()) {
    std::fprintf(stderr, "lvs-trainer: VAE runs cannot be resumed\n");
    return 2;
  }
  if (int code = TrainLocal(f, *spec, **tr, obs); code != 0) return code;
  if (spec->heldout.empty()) return 0;
  const std::string dir = CheckpointDir(f.work_dir, (*tr)->next_step());
  int64_t clips = 0;
  absl::StatusOr<double> psnr = HeldoutPsnr(*spec, dir, &clips);
  if (!psnr.ok()) {
    std::fprintf(stderr, "lvs-trainer: %s\n", psnr.status().ToString().c_str());
    return 1;
  }
  nlohmann::json line = {{"heldout_psnr_db", *psnr},
                         {"heldout_clips", clips},
                         {"checkpoint", dir}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

int RunLocal(const LocalFlags& f, lvs::trainer::TrainerObserver& obs) {
  using namespace lvs::trainer;
  std::ifstream in(f.spec);
  nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  if (IsVaeSpec(json)) return RunLocalVae(f, json, obs);
  absl::StatusOr<TrainSpec> spec =
      json.is_discarded() ? absl::InvalidArgumentError(f.spec + " is not JSON")
                          : TrainSpecFromJson(json);
  if (!spec.ok()) {
    std::fprintf(stderr, "lvs-trainer: %s\n", spec.status().ToString().c_str());
    return 2;
  }
  if (f.world_size <= 1 && spec->data_parallel > 1) {
    // All ranks in this process.
    absl::StatusOr<std::unique_ptr<TrainerGroup>> group =
        TrainerGroup::Create(*spec, f.device);
    absl::Status s = group.status();
    if (s.ok() && !f.resume.empty()) s = (*group)->Resume(f.resume);
    if (!s.ok()) {
      std::fprintf(stderr, "lvs-trainer: %s\n", s.ToString().c_str());
      return group.ok() ? 1 : 2;
    }
    return TrainLocal(f, *spec, **group, obs);
  }
  TrainerOptions options;
  options.device = torch::Device(f.device);
  std::unique_ptr<GradientReducer> reducer;
  if (int code = JoinGroup(f, &reducer); code != 0) return code;
  options.reducer = reducer.get();
  absl::StatusOr<std::unique_ptr<Trainer>> tr = Trainer::Create(*spec, options);
  if (!tr.ok()) {
    std::fprintf(stderr, "lvs-trainer: %s\n", tr.status().ToString().c_str());
    return 2;
  }
  if (!f.resume.empty()) {
    if (absl::Status s = (*tr)->Resume(f.resume); !s.ok()) {
      std::fprintf(stderr, "lvs-trainer: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  return TrainLocal(f, *spec, **tr, obs);
}

std::string ReadToken(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(s.str()));
}

int RunService(lvs::trainer::TrainerServiceOptions options) {
  // SIGTERM / SIGINT drain: finish the running step loop, take no more.
  // A handler, not sigwait: LibTorch's BLAS threads exist before main().
  if (absl::Status s = lvs::common::InstallShutdownSignalHandlers(); !s.ok()) {
    std::fprintf(stderr, "lvs-trainer: %s\n", s.ToString().c_str());
    return 2;
  }
  lvs::trainer::TrainerService service(std::move(options));
  std::thread signals([&service] {
    lvs::common::WaitForShutdownSignal();
    service.Drain();
  });
  signals.detach();
  const absl::Status s = service.Run();
  if (!s.ok()) std::fprintf(stderr, "lvs-trainer: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}

// Serves the metrics on --metrics-listen (empty: off) while `run` runs,
// then keeps serving for --metrics-linger seconds so that a last scrape
// sees the final values of a local run.
int WithMetrics(const std::string& listen, double linger_s,
                const lvs::trainer::TrainerMetrics& metrics,
                const std::function<int()>& run) {
  lvs::trainer::TrainerMetricsServer server(&metrics);
  if (!listen.empty()) {
    if (absl::Status s = server.Start(listen); !s.ok()) {
      std::fprintf(stderr, "lvs-trainer: %s\n", s.ToString().c_str());
      return 2;
    }
  }
  const int code = run();
  if (!listen.empty() && linger_s > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(linger_s));
  }
  server.Stop();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  CLI::App app{"lvs-trainer: flow-matching training of Lumina-Video DiTs"};
  lvs::trainer::TrainerServiceOptions service;
  LocalFlags local;
  std::string server = "127.0.0.1:50052", token_file, metrics_listen;
  double metrics_linger = 0;
  app.add_option("--server", server, "server worker port host:port");
  app.add_option("--name", service.name, "unique trainer name");
  app.add_option("--work-dir", local.work_dir, "checkpoint root");
  app.add_option("--worker-token-file", token_file, "worker token file");
  app.add_option("--device", local.device, "cpu or cuda:N");
  app.add_option("--tls-ca", service.channel.tls_ca, "CA of the server");
  app.add_option("--tls-cert", service.channel.tls_cert, "client certificate");
  app.add_option("--tls-key", service.channel.tls_key, "client key");
  app.add_option("--metrics-listen", metrics_listen,
                 "host:port of /metrics and /healthz (empty: off)");
  app.add_option("--metrics-linger", metrics_linger,
                 "seconds /metrics stays up after a local run ends");
  app.add_option("--spec", local.spec, "local mode: job spec JSON");
  app.add_option("--resume", local.resume, "local mode: checkpoint to resume");
  app.add_option("--rank", local.rank, "local mode: data-parallel rank");
  app.add_option("--world-size", local.world_size, "local mode: group size");
  app.add_option("--dist-host", local.dist_host, "local mode: rank 0 host");
  app.add_option("--dist-port", local.dist_port, "local mode: TCPStore port");
  LVS_CLI_PARSE(app, argc, argv);
  if (local.work_dir.empty()) local.work_dir = "./lvs-trainer";
  if (!local.spec.empty()) {
    // Local mode: the `trainer` label is --name, or "local-rank<R>".
    lvs::trainer::TrainerMetrics metrics(
        service.name.empty() ? absl::StrCat("local-rank", local.rank)
                             : service.name,
        /*local=*/true);
    return WithMetrics(metrics_listen, metrics_linger, metrics,
                       [&] { return RunLocal(local, metrics); });
  }
  if (service.name.empty()) {
    std::fprintf(stderr, "lvs-trainer: --name is required\n");
    return 2;
  }
  lvs::common::SetLogProcess("lvs-trainer");
  lvs::common::SetLogContext({{"worker_id", service.name}});
  service.channel.target = server;
  service.token = ReadToken(token_file);
  service.device = local.device;
  service.work_dir = local.work_dir;
  lvs::trainer::TrainerMetrics metrics(service.name);
  service.observer = &metrics;
  return WithMetrics(metrics_listen, 0, metrics,
                     [&] { return RunService(std::move(service)); });
}

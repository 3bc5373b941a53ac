// Training throughput of the tiny DiT (2 layers, width 64; the model of
// tests/trainer/trainer_test_util.h) on synthetic cached latents on the
// CPU: samples/s of one lvs-trainer process against two data-parallel ranks
// sharing the same global batch (two processes over c10d/Gloo on loopback,
// or two ranks inside one process), and bf16 (fp32 masters) against fp32.
//
// Both cases run the real `lvs-trainer --spec` processes (local mode) and
// parse the JSON line each prints per step; rank 0's `samples_per_second`
// (global batch / step wall time) is the throughput of the group, since the
// ranks meet at every gradient all-reduce. The figure is the median over the
// steps after the warm-up ones. Cases (OMP_NUM_THREADS per process): one
// process with all --threads, one process with half of them, two processes
// with half each (the same total as the first), two ranks in one process
// with half each, and one bf16 process with half of them. On a shared machine
// with fewer free cores than threads, the multi-threaded cases mostly measure
// OpenMP/OpenBLAS threads waiting for a core; compare runs of one thread.
//
// Run (plain program, not Google Benchmark; never run by ctest):
//   build/bench/trainer/trainer_bench
//       [--steps=12] [--warmup=2] [--batch=4] [--size=16] [--frames=8]
//       [--threads=N] [--trainer=PATH]
// It prints the BLAS library LibTorch runs on and OPENBLAS_CORETYPE.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/common/blas_check.h"
#include "nlohmann/json.hpp"
#include "tests/trainer/trainer_test_util.h"

namespace {

// Latent frames of every synthetic item (a 17-frame clip).
constexpr int kLatentFrames = 5;

struct Options {
  int steps = 12, warmup = 2, batch = 4, size = 16, frames = 8, threads = 0;
  std::string trainer = LVS_TRAINER_BIN;
};

// What one run measured (rank 0's step lines after the warm-up).
struct Result {
  bool ok = false;
  double median_samples_per_s = 0;
  double median_step_s = 0;
  double first_loss = 0, last_loss = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Returns a TCP port on 127.0.0.1 that was free a moment ago.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// One measured configuration.
struct Case {
  int processes = 1;  // lvs-trainer processes (ranks over loopback).
  int ranks = 1;      // data_parallel of the spec.
  int threads = 1;    // OMP_NUM_THREADS of each process.
  std::string precision = "fp32";
  std::string Name() const {
    return absl::StrCat(processes, " process(es), ", ranks, " rank(s), ",
                        threads, " thread(s), ", precision);
  }
  std::string Id() const {
    return absl::StrCat(processes, "p", ranks, "r", threads, "t", precision);
  }
};

std::string WriteSpec(const std::string& dir, const std::string& records,
                      const Options& o, const Case& c) {
  nlohmann::json spec = {{"init_from", dir + "/init"},
                         {"learning_rate", 1e-4},
                         {"max_steps", o.steps},
                         {"seed", 5},
                         {"data_parallel", c.ranks},
                         {"precision", c.precision},
                         {"tasks",
                          {{{"name", "V"},
                            {"records", {records}},
                            {"global_batch_size", o.batch},
                            {"micro_batch_size", 1},
                            {"max_frames", o.frames},
                            {"patch", "2x2"}}}}};
  const std::string path = absl::StrCat(dir, "/spec-", c.Id(), ".json");
  std::ofstream(path) << spec.dump();
  return path;
}

// Starts the processes of `k` and reads rank 0's step lines.
Result Run(const std::string& dir, const std::string& records, const Options& o,
           const Case& k) {
  const std::string spec = WriteSpec(dir, records, o, k);
  const int port = FreePort();
  const int world = k.processes;
  auto command = [&](int rank) {
    std::string c =
        absl::StrCat("OMP_NUM_THREADS=", k.threads, " exec '", o.trainer,
                     "' --spec=", spec, " --work-dir=", dir, "/run-", k.Id());
    if (world > 1) {
      absl::StrAppend(&c, " --rank=", rank, " --world-size=", world,
                      " --dist-port=", port);
    }
    return absl::StrCat(c, " 2>>", dir, "/rank", rank, "-", k.Id(), ".log");
  };
  std::vector<FILE*> ranks;
  for (int r = 0; r < world; ++r) {
    const std::string c =
        r == 0 ? command(r) : absl::StrCat(command(r), " >/dev/null");
    ranks.push_back(::popen(c.c_str(), "r"));
  }
  std::vector<double> rates, seconds;
  Result result;
  char line[4096];
  int step = 0;
  while (ranks[0] && std::fgets(line, sizeof(line), ranks[0])) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("samples_per_second")) continue;
    if (step == 0) result.first_loss = j["loss"].get<double>();
    result.last_loss = j["loss"].get<double>();
    if (++step > o.warmup) {
      rates.push_back(j["samples_per_second"].get<double>());
      seconds.push_back(j["seconds"].get<double>());
    }
  }
  bool ok = step == o.steps;
  for (FILE* f : ranks) {
    const int status = f ? ::pclose(f) : -1;
    ok = ok && status == 0;
  }
  result.ok = ok && !rates.empty();
  result.median_samples_per_s = Median(rates);
  result.median_step_s = Median(seconds);
  return result;
}

bool ParseFlag(const char* arg, const char* name, int* value) {
  const std::string prefix = absl::StrCat("--", name, "=");
  if (std::string(arg).rfind(prefix, 0) != 0) return false;
  return absl::SimpleAtoi(arg + prefix.size(), value);
}

}  // namespace

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  Options o;
  o.threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--trainer=", 0) == 0) {
      o.trainer = a.substr(10);
    } else if (!ParseFlag(argv[i], "steps", &o.steps) &&
               !ParseFlag(argv[i], "warmup", &o.warmup) &&
               !ParseFlag(argv[i], "batch", &o.batch) &&
               !ParseFlag(argv[i], "size", &o.size) &&
               !ParseFlag(argv[i], "frames", &o.frames) &&
               !ParseFlag(argv[i], "threads", &o.threads)) {
      std::fprintf(stderr, "trainer_bench: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  const lvs::common::BlasReport blas = lvs::common::CheckBlasHere();
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("BLAS=%s OPENBLAS_CORETYPE=%s threads(total)=%d\n",
              blas.library.empty() ? "(none found)" : blas.library.c_str(),
              core ? core : "(unset)", o.threads);
  for (const std::string& w : blas.warnings) std::printf("  %s\n", w.c_str());
  std::printf(
      "tiny DiT (2 layers, dim 64), cpu; global batch %d (micro 1), "
      "latents [16, %d, %d, %d] (max_frames %d), %d steps, median after %d "
      "warm-up steps\n",
      o.batch, kLatentFrames, o.size, o.size, o.frames, o.steps, o.warmup);
  char tmpl[] = "/tmp/lvs-trainer-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  lvs::trainer::testing::WriteTinyCheckpoint(dir + "/init");
  const std::string records = lvs::trainer::testing::WriteSyntheticLatents(
      dir + "/data", std::max(8, o.batch * 2), kLatentFrames, o.size, o.size);
  const int half = std::max(1, o.threads / 2);
  const std::vector<Case> cases = {{1, 1, o.threads, "fp32"},
                                   {1, 1, half, "fp32"},
                                   {2, 2, half, "fp32"},
                                   {1, 2, half, "fp32"},
                                   {1, 1, half, "bf16"}};
  int failures = 0;
  double one = 0;  // The best fp32 single-rank figure.
  for (const Case& k : cases) {
    const Result r = Run(dir, records, o, k);
    if (!r.ok) {
      std::printf("%s: FAILED (logs in %s)\n", k.Name().c_str(), dir.c_str());
      ++failures;
      continue;
    }
    const bool reference = k.ranks == 1 && k.precision == "fp32";
    if (reference) one = std::max(one, r.median_samples_per_s);
    const std::string ratio =
        !reference && one > 0
            ? absl::StrCat(", ", absl::SixDigits(r.median_samples_per_s / one),
                           "x of the best fp32 1-rank run")
            : "";
    std::printf("%s: %.2f samples/s (median step %.4f s)%s; %s %.4f -> %.4f\n",
                k.Name().c_str(), r.median_samples_per_s, r.median_step_s,
                ratio.c_str(), k.processes > 1 ? "rank-0 loss" : "loss",
                r.first_loss, r.last_loss);
  }
  if (failures == 0) std::filesystem::remove_all(dir);
  return failures == 0 ? 0 : 1;
}

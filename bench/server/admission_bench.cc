// Serving benchmarks against real processes on loopback:
//  * BM_CreateVideoJob: admission latency (p50/p99 per call) and RPS of
//    CreateVideoJob with 1..16 concurrent clients; every admitted job is on
//    disk (SQLite WAL, synchronous=FULL) before the RPC answers. No worker
//    runs, so the queue only grows (its cap is raised out of the way).
//  * BM_TimeToFirstChunk: with one fake-model worker (0 ms steps, 2 steps),
//    the time from the Started event to the first MP4 chunk and to
//    Completed, as a client of GenerateVideo sees it.
//
//   ninja -C build bench_server_admission && \
//     OPENBLAS_CORETYPE=SkylakeX build/bench/server/bench_server_admission
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "lumina/video/v1/admin_service.grpc.pb.h"
#include "lumina/video/v1/video_service.grpc.pb.h"
#include "rpc/channel.h"
#include "tests/worker/subprocess.h"

namespace {

namespace pb = ::lumina::video::v1;
using lvs::testing::Subprocess;

// One server (and optionally one worker) for the whole benchmark run.
struct Deployment {
  std::string dir;
  int port = 0;
  std::unique_ptr<Subprocess> server;
  std::unique_ptr<Subprocess> worker;
  std::shared_ptr<grpc::Channel> channel;

  explicit Deployment(bool with_worker) {
    char tmpl[] = "/tmp/lvs-bench-XXXXXX";
    dir = mkdtemp(tmpl);
    port = lvs::testing::FreePort();
    const int worker_port = lvs::testing::FreePort();
    const int metrics_port = lvs::testing::FreePort();
    server = std::make_unique<Subprocess>(*Subprocess::Start(
        {LVS_SERVER_BIN, absl::StrCat("--listen=127.0.0.1:", port),
         absl::StrCat("--worker-listen=127.0.0.1:", worker_port),
         absl::StrCat("--metrics-listen=127.0.0.1:", metrics_port),
         absl::StrCat("--data-dir=", dir, "/data"), "--max-queue=100000000"},
        dir + "/server.log"));
    lvs::testing::WaitForPort(port, absl::Seconds(20));
    if (with_worker) {
      worker = std::make_unique<Subprocess>(*Subprocess::Start(
          {LVS_WORKER_BIN, absl::StrCat("--server=127.0.0.1:", worker_port),
           "--name=bench", "--model=fake", "--fake-step-ms=0",
           "--metrics-listen=127.0.0.1:0"},
          dir + "/worker.log"));
    }
    lvs::rpc::ChannelOptions options;
    options.target = absl::StrCat("127.0.0.1:", port);
    channel = *lvs::rpc::MakeChannel(options);
    WaitReady(with_worker);
  }

  // Waits until the store is open (and the worker registered).
  void WaitReady(bool with_worker) {
    auto admin = pb::AdminService::NewStub(channel);
    const absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      pb::ListWorkersResponse workers;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
      if (admin->ListWorkers(&context, pb::ListWorkersRequest(), &workers)
              .ok() &&
          (!with_worker || workers.workers_size() > 0)) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  ~Deployment() {
    worker.reset();
    server.reset();
    std::string ignored;
    (void)lvs::testing::RunCommand({"/bin/rm", "-rf", dir}, absl::Seconds(30),
                                   &ignored);
  }
};

// The deployments of this run, started on first use, stopped by main().
std::unique_ptr<Deployment> admission_deployment, streaming_deployment;

Deployment& Shared(bool with_worker) {
  std::unique_ptr<Deployment>& d =
      with_worker ? streaming_deployment : admission_deployment;
  if (d == nullptr) d = std::make_unique<Deployment>(with_worker);
  return *d;
}

pb::GenerateVideoRequest Request(int frames) {
  pb::GenerateVideoRequest r;
  r.set_prompt("a lighthouse in a storm, waves breaking on the rocks");
  r.set_width(256);
  r.set_height(160);
  r.set_frames(frames);
  r.set_fps(16);
  r.set_steps(2);
  r.set_seed(1);
  return r;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

void BM_CreateVideoJob(benchmark::State& state) {
  // Latencies of every thread of this run; thread 0 clears them before the
  // start barrier and reads them after the end barrier of the loop.
  static std::mutex mu;
  static std::vector<double> all_ms;
  Deployment& d = Shared(false);
  auto stub = pb::VideoService::NewStub(d.channel);
  pb::CreateVideoJobRequest request;
  *request.mutable_video() = Request(17);
  if (state.thread_index() == 0) {
    std::lock_guard<std::mutex> lock(mu);
    all_ms.clear();
  }
  int64_t errors = 0;
  for (auto _ : state) {
    pb::VideoJob job;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    const absl::Time start = absl::Now();
    const grpc::Status s = stub->CreateVideoJob(&context, request, &job);
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (!s.ok()) ++errors;
    std::lock_guard<std::mutex> lock(mu);
    all_ms.push_back(ms);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["errors"] = static_cast<double>(errors);
  if (state.thread_index() == 0) {
    std::lock_guard<std::mutex> lock(mu);
    state.counters["p50_ms"] = Percentile(all_ms, 0.50);
    state.counters["p99_ms"] = Percentile(all_ms, 0.99);
  }
}
BENCHMARK(BM_CreateVideoJob)->ThreadRange(1, 16)->UseRealTime()->MinTime(3.0);

void BM_TimeToFirstChunk(benchmark::State& state) {
  Deployment& d = Shared(true);
  auto stub = pb::VideoService::NewStub(d.channel);
  const pb::GenerateVideoRequest request =
      Request(static_cast<int>(state.range(0)));
  std::vector<double> first_ms, total_ms;
  for (auto _ : state) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    auto reader = stub->GenerateVideo(&context, request);
    pb::GenerateVideoEvent event;
    absl::Time started = absl::InfiniteFuture();
    double first = -1;
    while (reader->Read(&event)) {
      const absl::Time now = absl::Now();
      if (event.has_started()) started = now;
      if (event.has_chunk() && first < 0) {
        first = absl::ToDoubleMilliseconds(now - started);
      }
      if (event.has_completed()) {
        total_ms.push_back(absl::ToDoubleMilliseconds(now - started));
      }
    }
    const grpc::Status s = reader->Finish();
    if (!s.ok()) {
      state.SkipWithError(s.error_message().c_str());
      return;
    }
    first_ms.push_back(first);
    state.SetIterationTime(first / 1000.0);
  }
  state.counters["first_chunk_p50_ms"] = Percentile(first_ms, 0.5);
  state.counters["first_chunk_p99_ms"] = Percentile(first_ms, 0.99);
  state.counters["completed_p50_ms"] = Percentile(total_ms, 0.5);
}
BENCHMARK(BM_TimeToFirstChunk)
    ->Arg(17)
    ->Arg(65)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(40);

}  // namespace

int main(int argc, char** argv) {
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE",
                              coretype != nullptr ? coretype : "unset");
  benchmark::AddCustomContext(
      "cores", std::to_string(std::thread::hardware_concurrency()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  streaming_deployment.reset();
  admission_deployment.reset();
  return 0;
}

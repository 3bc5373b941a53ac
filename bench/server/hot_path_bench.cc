// The front server's hot path against a real lvs-server process on loopback,
// for any server binary (so one script measures two builds in one run):
//  * admission: CreateVideoJob from N clients (one connection each) for a
//    fixed time: RPS, p50/p99 latency, errors. Afterwards the server is
//    killed with SIGKILL and the database is opened again: every job whose
//    admission was answered must be in it ("durable" counts them).
//  * stream: J fake workers speaking the real worker protocol each lease a
//    job and stream C chunks of B bytes every I ms while W clients watch the
//    jobs (WatchVideoJob, spread evenly): chunk latency from the worker's
//    send to a watcher's receipt (p50/p99, the send time travels in the
//    chunk's first 8 bytes) and the server's CPU seconds (user + system,
//    /proc) per MiB streamed in.
//  * idle: S WatchVideoJob streams of queued jobs held open: the server's
//    RSS before and with them, and per stream.
//
//   ninja -C build bench_server_hot_path
//   build/bench/server/bench_server_hot_path --server=build/server/lvs-server
//   bench/server/hot_path_compare.sh BENCH BEFORE_SERVER AFTER_SERVER 3
// Prints one line of key=value per case.
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "lumina/video/v1/admin_service.grpc.pb.h"
#include "lumina/video/v1/video_service.grpc.pb.h"
#include "lumina/video/v1/worker_service.grpc.pb.h"
#include "tests/worker/subprocess.h"

namespace {

namespace pb = ::lumina::video::v1;
using lvs::testing::Subprocess;

std::map<std::string, std::string> flags;

std::string Flag(const std::string& name, const std::string& fallback) {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

int64_t IntFlag(const std::string& name, int64_t fallback) {
  int64_t v = fallback;
  auto it = flags.find(name);
  if (it != flags.end() && !absl::SimpleAtoi(it->second, &v)) {
    std::fprintf(stderr, "--%s: not an integer\n", name.c_str());
    std::exit(2);
  }
  return v;
}

// A new connection (a distinct channel argument defeats subchannel sharing).
std::shared_ptr<grpc::Channel> Connect(int port, int n) {
  grpc::ChannelArguments args;
  args.SetInt("lvs.bench.connection", n);
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

// One lvs-server process with its own data directory.
struct Server {
  std::string dir;
  int port = 0;
  int worker_port = 0;
  std::unique_ptr<Subprocess> process;

  explicit Server(const std::string& binary) {
    char tmpl[] = "/tmp/lvs-hotpath-XXXXXX";
    dir = mkdtemp(tmpl);
    port = lvs::testing::FreePort();
    worker_port = lvs::testing::FreePort();
    process = std::make_unique<Subprocess>(*Subprocess::Start(
        {binary, absl::StrCat("--listen=127.0.0.1:", port),
         absl::StrCat("--worker-listen=127.0.0.1:", worker_port),
         absl::StrCat("--metrics-listen=127.0.0.1:", lvs::testing::FreePort()),
         absl::StrCat("--data-dir=", dir, "/data"), "--max-queue=100000000",
         "--max-frames=100000"},
        dir + "/server.log"));
    lvs::testing::WaitForPort(port, absl::Seconds(20));
    auto admin = pb::AdminService::NewStub(Connect(port, 0));
    const absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      pb::ListWorkersResponse workers;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
      if (admin->ListWorkers(&context, pb::ListWorkersRequest(), &workers)
              .ok()) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  ~Server() {
    process.reset();
    std::string ignored;
    (void)lvs::testing::RunCommand({"/bin/rm", "-rf", dir}, absl::Seconds(30),
                                   &ignored);
  }

  // User + system CPU seconds of the server so far.
  double CpuSeconds() const {
    const std::string stat =
        lvs::testing::ReadFile(absl::StrCat("/proc/", process->pid(), "/stat"));
    // Fields after the ")" that ends the command name: utime is the 12th.
    const size_t close = stat.rfind(')');
    std::vector<std::string> f =
        absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
    double utime = 0, stime = 0;
    if (f.size() > 12) {
      (void)absl::SimpleAtod(f[11], &utime);
      (void)absl::SimpleAtod(f[12], &stime);
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  // Resident set size in KiB.
  int64_t RssKiB() const {
    const std::string status = lvs::testing::ReadFile(
        absl::StrCat("/proc/", process->pid(), "/status"));
    for (absl::string_view line : absl::StrSplit(status, '\n')) {
      if (absl::ConsumePrefix(&line, "VmRSS:")) {
        int64_t kib = 0;
        (void)absl::SimpleAtoi(
            absl::StripAsciiWhitespace(absl::StripSuffix(line, "kB")), &kib);
        return kib;
      }
    }
    return 0;
  }
};

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

std::string CreateJob(pb::VideoService::Stub* stub) {
  pb::CreateVideoJobRequest request;
  *request.mutable_video() = Request(17);
  pb::VideoJob job;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  const grpc::Status s = stub->CreateVideoJob(&context, request, &job);
  if (!s.ok()) {
    std::fprintf(stderr, "CreateVideoJob: %s\n", s.error_message().c_str());
    std::exit(1);
  }
  return job.name();
}

// Jobs in the database of a stopped server.
int64_t StoredJobs(const std::string& dir) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open((dir + "/data/lvs.db").c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM jobs", -1, &st, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

void Admission(const std::string& binary, int clients, double seconds) {
  Server server(binary);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < clients; ++i) {
    channels.push_back(Connect(server.port, i + 1));
  }
  std::mutex mu;
  std::vector<double> all_ms;
  std::atomic<int64_t> errors{0}, ok{0};
  std::atomic<bool> go{false};
  const absl::Time end_at = absl::Now() + absl::Seconds(seconds) +
                            absl::Milliseconds(200);  // After the start.
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto stub = pb::VideoService::NewStub(channels[i]);
      pb::CreateVideoJobRequest request;
      *request.mutable_video() = Request(17);
      std::vector<double> ms;
      while (!go.load()) absl::SleepFor(absl::Milliseconds(1));
      while (absl::Now() < end_at) {
        pb::VideoJob job;
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        const absl::Time start = absl::Now();
        const grpc::Status s = stub->CreateVideoJob(&context, request, &job);
        ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
        (s.ok() ? ok : errors).fetch_add(1);
      }
      std::lock_guard<std::mutex> lock(mu);
      all_ms.insert(all_ms.end(), ms.begin(), ms.end());
    });
  }
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  go = true;
  for (auto& t : threads) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  // A crash right after the last answer: every answered job must be there.
  server.process->Signal(SIGKILL);
  server.process->Wait(absl::Seconds(10));
  const int64_t stored = StoredJobs(server.dir);
  std::printf(
      "case=admission clients=%d seconds=%.1f rps=%.0f p50_ms=%.2f "
      "p99_ms=%.2f errors=%lld acked=%lld stored_after_kill=%lld durable=%s\n",
      clients, elapsed, static_cast<double>(ok.load()) / elapsed,
      Percentile(all_ms, 0.5), Percentile(all_ms, 0.99),
      static_cast<long long>(errors.load()), static_cast<long long>(ok.load()),
      static_cast<long long>(stored), stored >= ok.load() ? "yes" : "NO");
  std::fflush(stdout);
}

using WorkerStream =
    grpc::ClientReaderWriter<pb::WorkerMessage, pb::ServerMessage>;

// A fake generator on the real worker protocol: registers, leases one job,
// streams `chunks` chunks of `bytes` every `interval`, completes it, and
// leaves once `watched` is notified.
void FakeWorker(int worker_port, int index, int chunks, int bytes,
                absl::Duration interval, absl::Notification* leased,
                absl::Notification* start, absl::Notification* watched,
                int64_t* sent_bytes) {
  auto stub = pb::WorkerService::NewStub(Connect(worker_port, 1000 + index));
  grpc::ClientContext context;
  std::unique_ptr<WorkerStream> stream = stub->Connect(&context);
  pb::WorkerMessage m;
  m.mutable_register_()->set_name(absl::StrCat("bench-", index));
  m.mutable_register_()->set_kind(pb::WORKER_KIND_GENERATOR);
  stream->Write(m);
  pb::ServerMessage in;
  stream->Read(&in);  // Registered.
  m.Clear();
  m.mutable_lease_request();
  stream->Write(m);
  std::string lease_id;
  while (stream->Read(&in)) {
    if (in.has_assignment()) {
      lease_id = in.assignment().lease_id();
      break;
    }
  }
  leased->Notify();
  start->WaitForNotification();
  std::string data(static_cast<size_t>(bytes), 'x');
  int64_t offset = 0;
  absl::Time next = absl::Now();
  absl::Time last_heartbeat = absl::Now();
  for (int i = 0; i < chunks; ++i) {
    absl::SleepFor(next - absl::Now());
    next += interval;
    if (absl::Now() - last_heartbeat > absl::Seconds(1)) {
      // Renews the lease, as a real worker does.
      last_heartbeat = absl::Now();
      m.Clear();
      m.mutable_heartbeat()->set_lease_id(lease_id);
      if (!stream->Write(m)) break;
    }
    const int64_t now_ns = absl::GetCurrentTimeNanos();
    std::memcpy(data.data(), &now_ns, sizeof(now_ns));
    m.Clear();
    m.mutable_job_event()->set_lease_id(lease_id);
    auto* chunk = m.mutable_job_event()->mutable_event()->mutable_chunk();
    chunk->set_offset(offset);
    chunk->set_data(data);
    if (!stream->Write(m)) break;
    offset += bytes;
  }
  m.Clear();
  m.mutable_job_result()->set_lease_id(lease_id);
  m.mutable_job_result()->mutable_completed()->set_frames(17);
  stream->Write(m);
  *sent_bytes = offset;
  // Stay connected until the watchers saw the end: the server may read the
  // result later than it was sent, and a worker that leaves first loses its
  // lease.
  watched->WaitForNotification();
  stream->WritesDone();
  context.TryCancel();
  (void)stream->Finish();
}

void Streaming(const std::string& binary, int jobs, int watchers, int chunks,
               int bytes, int interval_ms) {
  Server server(binary);
  auto video = pb::VideoService::NewStub(Connect(server.port, 1));
  std::vector<std::string> names;
  for (int j = 0; j < jobs; ++j) names.push_back(CreateJob(video.get()));
  // Watchers first, so that they see every chunk live.
  std::mutex mu;
  std::vector<double> latency_ms;
  std::atomic<int64_t> received{0}, failed{0};
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c < 10; ++c)
    channels.push_back(Connect(server.port, 100 + c));
  std::vector<std::thread> threads;
  for (int w = 0; w < watchers; ++w) {
    threads.emplace_back([&, w] {
      auto stub = pb::VideoService::NewStub(channels[w % channels.size()]);
      pb::WatchVideoJobRequest request;
      request.set_name(names[w % names.size()]);
      grpc::ClientContext context;
      // A job that never ends (a lost lease) fails the stream, not the run.
      context.set_deadline(
          absl::ToChronoTime(absl::Now() + absl::Seconds(180)));
      auto reader = stub->WatchVideoJob(&context, request);
      pb::GenerateVideoEvent event;
      std::vector<double> ms;
      while (reader->Read(&event)) {
        if (!event.has_chunk() || event.chunk().data().size() < 8) continue;
        int64_t sent_ns = 0;
        std::memcpy(&sent_ns, event.chunk().data().data(), sizeof(sent_ns));
        ms.push_back(
            static_cast<double>(absl::GetCurrentTimeNanos() - sent_ns) / 1e6);
      }
      if (!reader->Finish().ok()) failed.fetch_add(1);
      received.fetch_add(static_cast<int64_t>(ms.size()));
      std::lock_guard<std::mutex> lock(mu);
      latency_ms.insert(latency_ms.end(), ms.begin(), ms.end());
    });
  }
  std::vector<absl::Notification> leased(jobs);
  absl::Notification start, watched;
  std::vector<int64_t> sent(jobs, 0);
  std::vector<std::thread> workers;
  for (int j = 0; j < jobs; ++j) {
    workers.emplace_back(FakeWorker, server.worker_port, j, chunks, bytes,
                         absl::Milliseconds(interval_ms), &leased[j], &start,
                         &watched, &sent[j]);
  }
  for (auto& n : leased) n.WaitForNotification();
  absl::SleepFor(absl::Milliseconds(500));  // Watchers caught up.
  const double cpu0 = server.CpuSeconds();
  const absl::Time t0 = absl::Now();
  start.Notify();
  for (auto& t : threads) t.join();
  const double cpu = server.CpuSeconds() - cpu0;
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  watched.Notify();
  for (auto& t : workers) t.join();
  int64_t total = 0;
  for (int64_t s : sent) total += s;
  const double mib = static_cast<double>(total) / (1 << 20);
  std::printf(
      "case=stream jobs=%d watchers=%d chunk_bytes=%d chunks=%d "
      "interval_ms=%d mib_in=%.0f mib_out=%.0f chunk_p50_ms=%.2f "
      "chunk_p99_ms=%.2f server_cpu_s=%.2f cpu_ms_per_mib_in=%.1f "
      "wall_s=%.1f received=%lld expected=%lld failed_streams=%lld\n",
      jobs, watchers, bytes, chunks, interval_ms, mib, mib * watchers / jobs,
      Percentile(latency_ms, 0.5), Percentile(latency_ms, 0.99), cpu,
      1000 * cpu / mib, wall, static_cast<long long>(received.load()),
      static_cast<long long>(static_cast<int64_t>(watchers) * chunks),
      static_cast<long long>(failed.load()));
  std::fflush(stdout);
}

// A WatchVideoJob stream that reads until told to stop.
class IdleWatch : public grpc::ClientReadReactor<pb::GenerateVideoEvent> {
 public:
  IdleWatch(pb::VideoService::Stub* stub, const std::string& name,
            std::atomic<int>* first_seen, std::atomic<int>* done)
      : first_seen_(first_seen), done_(done) {
    request_.set_name(name);
    stub->async()->WatchVideoJob(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (!seen_) {
      seen_ = true;
      first_seen_->fetch_add(1);
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status&) override { done_->fetch_add(1); }
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  pb::WatchVideoJobRequest request_;
  pb::GenerateVideoEvent event_;
  bool seen_ = false;
  std::atomic<int>* first_seen_;
  std::atomic<int>* done_;
};

void Idle(const std::string& binary, int streams) {
  Server server(binary);
  auto video = pb::VideoService::NewStub(Connect(server.port, 1));
  std::vector<std::string> names;
  for (int j = 0; j < 10; ++j) names.push_back(CreateJob(video.get()));
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t rss0 = server.RssKiB();
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<pb::VideoService::Stub>> stubs;
  for (int c = 0; c < 10; ++c) {
    channels.push_back(Connect(server.port, 200 + c));
    stubs.push_back(pb::VideoService::NewStub(channels.back()));
  }
  std::atomic<int> first_seen{0}, done{0};
  std::vector<std::unique_ptr<IdleWatch>> watches;
  for (int s = 0; s < streams; ++s) {
    watches.push_back(std::make_unique<IdleWatch>(stubs[s % stubs.size()].get(),
                                                  names[s % names.size()],
                                                  &first_seen, &done));
  }
  const absl::Time end = absl::Now() + absl::Seconds(60);
  while (first_seen.load() < streams && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Seconds(2));
  const int64_t rss1 = server.RssKiB();
  const double cpu0 = server.CpuSeconds();
  absl::SleepFor(absl::Seconds(3));
  const double idle_cpu = server.CpuSeconds() - cpu0;
  std::printf(
      "case=idle streams=%d open=%d rss_before_mib=%.1f rss_held_mib=%.1f "
      "kib_per_stream=%.1f idle_cpu_s_per_3s=%.2f\n",
      streams, first_seen.load(), rss0 / 1024.0, rss1 / 1024.0,
      static_cast<double>(rss1 - rss0) / streams, idle_cpu);
  std::fflush(stdout);
  for (auto& w : watches) w->Cancel();
  while (done.load() < streams && absl::Now() < end + absl::Seconds(30)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::ConsumePrefix(&arg, "--")) continue;
    std::pair<std::string, std::string> kv =
        absl::StrSplit(arg, absl::MaxSplits('=', 1));
    flags[kv.first] = kv.second;
  }
  const std::string binary = Flag("server", "");
  if (binary.empty()) {
    std::fprintf(stderr,
                 "usage: %s --server=PATH [--case=admission|stream|idle|all] "
                 "[--clients=16] [--seconds=10] [--jobs=8] [--watchers=100] "
                 "[--chunks=40] [--chunk-bytes=262144] [--interval-ms=100] "
                 "[--streams=1000]\n",
                 argv[0]);
    return 2;
  }
  const std::string which = Flag("case", "all");
  if (which == "admission" || which == "all") {
    Admission(binary, static_cast<int>(IntFlag("clients", 16)),
              static_cast<double>(IntFlag("seconds", 10)));
  }
  if (which == "admission1" || which == "all") {
    Admission(binary, 1, static_cast<double>(IntFlag("seconds", 10)));
  }
  if (which == "stream" || which == "all") {
    Streaming(binary, static_cast<int>(IntFlag("jobs", 8)),
              static_cast<int>(IntFlag("watchers", 100)),
              static_cast<int>(IntFlag("chunks", 40)),
              static_cast<int>(IntFlag("chunk-bytes", 262144)),
              static_cast<int>(IntFlag("interval-ms", 100)));
  }
  if (which == "idle" || which == "all") {
    Idle(binary, static_cast<int>(IntFlag("streams", 1000)));
  }
  return 0;
}

// End-to-end tests with real lvs-server and lvs-worker processes (fake
// model) on loopback: streamed generation, WatchVideoJob resume,
// idempotency, validation, queue limits, concurrency, cancellation and the
// worker's metrics (the CLI is in cli_e2e_test.cc).

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "tests/worker/cluster.h"

namespace lvs::testing {
namespace {

namespace pb = ::lumina::video::v1;

// Streams GenerateVideo to the end; returns the status, the events and the
// MP4 bytes.
grpc::Status Generate(Cluster& c, const pb::GenerateVideoRequest& request,
                      std::vector<pb::GenerateVideoEvent>* events,
                      std::string* mp4) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = c.video().GenerateVideo(&context, request);
  pb::GenerateVideoEvent event;
  while (reader->Read(&event)) {
    if (event.has_chunk()) {
      EXPECT_EQ(event.chunk().offset(), static_cast<int64_t>(mp4->size()));
      EXPECT_LE(event.chunk().data().size(), 1u << 20);
      *mp4 += event.chunk().data();
    }
    events->push_back(event);
  }
  return reader->Finish();
}

TEST(ServingE2eTest, GenerateVideoStreamsEventsAndADecodableMp4) {
  Cluster c("generate");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  {
    const absl::Status st = c.StartWorker("w1", {"--fake-step-ms=5"});
    ASSERT_TRUE(st.ok()) << st;
  }
  std::vector<pb::GenerateVideoEvent> events;
  std::string mp4;
  const grpc::Status s = Generate(c, SmallRequest(6, 9), &events, &mp4);
  ASSERT_TRUE(s.ok()) << rpc::DescribeStatus(s);
  ASSERT_FALSE(events.empty());
  // Order: queued, started, text encoded, steps, decoded/chunks, completed.
  std::vector<pb::GenerateVideoEvent::EventCase> kinds;
  int steps = 0;
  int64_t last_sequence = 0;
  for (const auto& e : events) {
    EXPECT_GT(e.sequence(), last_sequence);
    last_sequence = e.sequence();
    EXPECT_TRUE(absl::StartsWith(e.job(), "jobs/")) << e.job();
    if (kinds.empty() || kinds.back() != e.event_case()) {
      kinds.push_back(e.event_case());
    }
    if (e.has_step()) {
      EXPECT_EQ(e.step().index(), steps++);
      EXPECT_EQ(e.step().total(), 5);
    }
  }
  EXPECT_EQ(steps, 5);  // 6 grid points: 5 denoising steps.
  ASSERT_GE(kinds.size(), 5u);
  EXPECT_EQ(kinds[0], pb::GenerateVideoEvent::kQueued);
  EXPECT_EQ(kinds[1], pb::GenerateVideoEvent::kStarted);
  EXPECT_EQ(kinds[2], pb::GenerateVideoEvent::kTextEncoded);
  EXPECT_EQ(kinds[3], pb::GenerateVideoEvent::kStep);
  EXPECT_EQ(kinds.back(), pb::GenerateVideoEvent::kCompleted);
  const pb::Completed& done = events.back().completed();
  EXPECT_EQ(done.frames(), 9);
  EXPECT_EQ(done.width(), 64);
  EXPECT_EQ(done.height(), 64);
  EXPECT_EQ(done.fps(), 8);
  EXPECT_EQ(done.size_bytes(), static_cast<int64_t>(mp4.size()));
  absl::StatusOr<int> frames = CountFrames(mp4);
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, 9);
}

TEST(ServingE2eTest, WatchResumesFromAnOffsetWithIdenticalBytes) {
  Cluster c("watch");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  {
    const absl::Status st = c.StartWorker("w1", {"--fake-step-ms=5"});
    ASSERT_TRUE(st.ok()) << st;
  }
  absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(4, 17));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(c.WaitFinished(job->name(), absl::Seconds(30)).ok());
  std::vector<pb::GenerateVideoEvent> events;
  absl::StatusOr<std::string> full = c.Watch(job->name(), 0, &events);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_GT(full->size(), 100u);
  EXPECT_TRUE(events.back().has_completed());
  for (int64_t offset : {int64_t{1}, static_cast<int64_t>(full->size() / 2 + 7),
                         static_cast<int64_t>(full->size() - 1)}) {
    absl::StatusOr<std::string> tail = c.Watch(job->name(), offset);
    ASSERT_TRUE(tail.ok()) << tail.status();
    EXPECT_EQ(*tail, full->substr(offset)) << "offset " << offset;
  }
  // The CLI resumes a partial download into a byte-identical file.
  const std::string out = absl::StrCat(c.dir(), "/resumed.mp4");
  {
    FILE* f = fopen((out + ".part").c_str(), "wb");
    fwrite(full->data(), 1, 100, f);
    fclose(f);
  }
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({CliBinary(), absl::StrCat("--server=", c.address()), "jobs",
                  "watch", job->name(), "-o", out, "--from-offset", "100"},
                 absl::Seconds(30), &output);
  ASSERT_EQ(*rc, 0) << output;
  EXPECT_EQ(ReadFile(out), *full);
  absl::StatusOr<int> frames = CountFrames(*full);
  ASSERT_TRUE(frames.ok());
  EXPECT_EQ(*frames, 17);
}

TEST(ServingE2eTest, RequestIdIsIdempotent) {
  Cluster c("idempotent");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  const std::string id = "4f1c2a9e-1d2b-4c3d-9e8f-0a1b2c3d4e5f";
  absl::StatusOr<pb::VideoJob> a = c.Create(SmallRequest(), id);
  absl::StatusOr<pb::VideoJob> b = c.Create(SmallRequest(), id);
  absl::StatusOr<pb::VideoJob> other = c.Create(SmallRequest(), "other-id");
  ASSERT_TRUE(a.ok() && b.ok() && other.ok());
  EXPECT_EQ(a->name(), b->name());
  EXPECT_EQ(b->request_id(), id);
  EXPECT_NE(a->name(), other->name());
  pb::ListVideoJobsResponse list;
  grpc::ClientContext context;
  ASSERT_TRUE(c.video()
                  .ListVideoJobs(&context, pb::ListVideoJobsRequest(), &list)
                  .ok());
  EXPECT_EQ(list.jobs_size(), 2);
  // The job runs once when a worker arrives.
  {
    const absl::Status st = c.StartWorker("w1", {"--fake-step-ms=2"});
    ASSERT_TRUE(st.ok()) << st;
  }
  absl::StatusOr<pb::VideoJob> done =
      c.WaitFinished(a->name(), absl::Seconds(30));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), pb::SUCCEEDED);
  EXPECT_EQ(done->attempts(), 1);
}

TEST(ServingE2eTest, EveryInvalidFieldIsNamed) {
  Cluster c("invalid");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  pb::GenerateVideoRequest r;
  r.set_prompt("");      // Required.
  r.set_width(33);       // Not a multiple of 32.
  r.set_height(-64);     // Positive (0 takes the model's default).
  r.set_frames(100000);  // Over the cap.
  r.set_fps(-1);
  r.set_steps(1);
  r.set_seed(-5);
  r.set_precision(static_cast<pb::Precision>(42));
  r.set_priority(static_cast<pb::Priority>(42));
  r.set_sample_config("bad name!");
  for (int i = 0; i < 17; ++i)
    (*r.mutable_labels())[absl::StrCat("k", i)] = "v";
  const std::vector<std::string> fields = {
      "prompt", "width",     "height",   "frames",        "fps",   "steps",
      "seed",   "precision", "priority", "sample_config", "labels"};
  for (const bool stream : {false, true}) {
    grpc::Status s;
    grpc::ClientContext context;
    if (stream) {
      auto reader = c.video().GenerateVideo(&context, r);
      pb::GenerateVideoEvent e;
      while (reader->Read(&e)) {
      }
      s = reader->Finish();
    } else {
      pb::CreateVideoJobRequest create;
      *create.mutable_video() = r;
      create.set_request_id("not a uuid!");
      pb::VideoJob job;
      s = c.video().CreateVideoJob(&context, create, &job);
    }
    ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    const rpc::ErrorDetails d = rpc::DecodeErrorDetails(s);
    std::string all;
    for (const std::string& v : d.field_violations) all += v + "\n";
    for (const std::string& f : fields) {
      bool named = false;
      for (const std::string& v : d.field_violations) {
        const std::string field = v.substr(0, v.find(':'));
        named = named || field == f || absl::EndsWith(field, "." + f) ||
                absl::StrContains(field, f + "[");
      }
      EXPECT_TRUE(named) << f << " not named in:\n" << all;
    }
    if (!stream) EXPECT_TRUE(absl::StrContains(all, "request_id")) << all;
  }
}

TEST(ServingE2eTest, AFullQueueIsRejectedWithRetryInfo) {
  Cluster c("queue-full");
  {
    const absl::Status st = c.StartServer({"--max-queue=2"});
    ASSERT_TRUE(st.ok()) << st;
  }
  ASSERT_TRUE(c.Create(SmallRequest()).ok());
  ASSERT_TRUE(c.Create(SmallRequest()).ok());
  pb::CreateVideoJobRequest create;
  *create.mutable_video() = SmallRequest();
  pb::VideoJob job;
  grpc::ClientContext context;
  const grpc::Status s = c.video().CreateVideoJob(&context, create, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << rpc::DescribeStatus(s);
  const rpc::ErrorDetails d = rpc::DecodeErrorDetails(s);
  EXPECT_EQ(d.reason, "QUEUE_FULL");
  EXPECT_GT(d.retry_delay, absl::ZeroDuration());
  EXPECT_FALSE(d.quota_violations.empty());
}

TEST(ServingE2eTest, FiftyConcurrentClients) {
  Cluster c("fifty");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  {
    const absl::Status st = c.StartWorker("w1", {"--fake-step-ms=1"});
    ASSERT_TRUE(st.ok()) << st;
  }
  {
    const absl::Status st = c.StartWorker("w2", {"--fake-step-ms=1"});
    ASSERT_TRUE(st.ok()) << st;
  }
  constexpr int kClients = 50;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      pb::GenerateVideoRequest r = SmallRequest(3, 5);
      r.set_seed(i + 1);
      std::vector<pb::GenerateVideoEvent> events;
      std::string mp4;
      const grpc::Status s = Generate(c, r, &events, &mp4);
      if (!s.ok()) {
        errors[i] = rpc::DescribeStatus(s);
        return;
      }
      if (events.empty() || !events.back().has_completed() ||
          events.back().completed().size_bytes() !=
              static_cast<int64_t>(mp4.size())) {
        errors[i] = "incomplete stream";
        return;
      }
      absl::StatusOr<int> frames = CountFrames(mp4);
      if (!frames.ok() || *frames != 5) {
        errors[i] = "bad mp4";
        return;
      }
      ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;
  EXPECT_EQ(ok.load(), kClients);
  // Both workers took part.
  pb::ListWorkersResponse workers;
  grpc::ClientContext context;
  ASSERT_TRUE(
      c.admin().ListWorkers(&context, pb::ListWorkersRequest(), &workers).ok());
  int64_t done = 0;
  for (const pb::Worker& w : workers.workers()) {
    EXPECT_GT(w.jobs_done(), 0) << w.name();
    done += w.jobs_done();
  }
  EXPECT_EQ(done, kClients);
}

TEST(ServingE2eTest, CancelStopsARunningJobAndFreesItsWorker) {
  Cluster c("cancel");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  {
    const absl::Status st = c.StartWorker("w1", {"--fake-step-ms=200"});
    ASSERT_TRUE(st.ok()) << st;
  }
  absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(200, 9));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(
      c.WaitFor(
           job->name(),
           [](const pb::VideoJob& j) { return j.progress().step() >= 1; },
           absl::Seconds(30))
          .ok());
  pb::CancelVideoJobRequest cancel;
  cancel.set_name(job->name());
  pb::VideoJob cancelled;
  grpc::ClientContext context;
  const grpc::Status s = c.video().CancelVideoJob(&context, cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << rpc::DescribeStatus(s);
  absl::StatusOr<pb::VideoJob> end =
      c.WaitFinished(job->name(), absl::Seconds(10));
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->state(), pb::CANCELLED);
  EXPECT_LT(end->progress().step(), 200);
  // The worker is free at once: a short job finishes well before the
  // cancelled one would have (200 steps of 200 ms).
  absl::StatusOr<pb::VideoJob> next = c.Create(SmallRequest(2, 5));
  ASSERT_TRUE(next.ok());
  absl::StatusOr<pb::VideoJob> next_end =
      c.WaitFinished(next->name(), absl::Seconds(20));
  ASSERT_TRUE(next_end.ok()) << next_end.status();
  EXPECT_EQ(next_end->state(), pb::SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(ReadFile(c.worker("w1").log_path()),
                                "\"outcome\":\"cancelled\""));
  // Cancelling a finished job is FAILED_PRECONDITION.
  grpc::ClientContext again;
  EXPECT_EQ(c.video().CancelVideoJob(&again, cancel, &cancelled).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(ServingE2eTest, EndingAGenerateVideoCallCancelsTheJob) {
  Cluster c("client-cancel");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  {
    const absl::Status st = c.StartWorker("w1", {"--fake-step-ms=100"});
    ASSERT_TRUE(st.ok()) << st;
  }
  grpc::ClientContext context;
  auto reader = c.video().GenerateVideo(&context, SmallRequest(200, 9));
  pb::GenerateVideoEvent e;
  std::string job;
  while (reader->Read(&e)) {
    job = e.job();
    if (e.has_step()) break;
  }
  ASSERT_FALSE(job.empty());
  context.TryCancel();
  reader->Finish();
  absl::StatusOr<pb::VideoJob> end = c.WaitFinished(job, absl::Seconds(10));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::CANCELLED);
}

TEST(ServingE2eTest, WorkerMetricsPassPromtool) {
  Cluster c("worker-metrics");
  absl::Status st = c.StartServer();
  ASSERT_TRUE(st.ok()) << st;
  const int port = FreePort();
  st = c.StartWorker("w1", {"--fake-step-ms=2",
                            absl::StrCat("--metrics-listen=127.0.0.1:", port)});
  ASSERT_TRUE(st.ok()) << st;
  std::string metrics;
  ASSERT_EQ(HttpGetPort(port, "/metrics", &metrics), 200);
  EXPECT_TRUE(absl::StrContains(
      metrics, "lvs_worker_denoise_steps_total{worker=\"w1\"} 0\n"))
      << metrics;
  // 2 and 5 grid points: 1 + 4 denoising steps, which the server's
  // progress reports the same way.
  for (const int grid : {2, 5}) {
    absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(grid, 5));
    ASSERT_TRUE(job.ok());
    absl::StatusOr<pb::VideoJob> done =
        c.WaitFinished(job->name(), absl::Seconds(20));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->progress().step(), grid - 1);
    EXPECT_EQ(done->progress().total_steps(), grid - 1);
  }
  EXPECT_EQ(HttpGetPort(port, "/healthz"), 200);
  ASSERT_EQ(HttpGetPort(port, "/metrics", &metrics), 200);
  EXPECT_TRUE(absl::StrContains(
      metrics, "lvs_worker_jobs_total{outcome=\"succeeded\",worker=\"w1\"} 2"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, "lvs_worker_denoise_steps_total{worker=\"w1\"} 5\n"))
      << metrics;
  EXPECT_TRUE(
      absl::StrContains(metrics, "lvs_worker_connected{worker=\"w1\"} 1"));
  const std::string file = c.dir() + "/worker.prom";
  FILE* f = fopen(file.c_str(), "w");
  fwrite(metrics.data(), 1, metrics.size(), f);
  fclose(f);
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file},
                 absl::Seconds(30), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << output;
}

}  // namespace
}  // namespace lvs::testing

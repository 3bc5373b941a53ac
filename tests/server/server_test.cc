// lvs-server in process on loopback ports with real gRPC clients and a
// scripted worker on the WorkerService stream: health transitions, auth,
// validation, queue limits, the AIP-151 job methods, streaming with resume
// from an offset, cancellation, drain, restart and the metrics exposition.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "server/rich_status.h"
#include "tests/server/server_fixture.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;
using testing::HealthStatus;
using testing::kAdminKey;
using testing::kClientKey;
using testing::ScriptedWorker;

class ServerTest : public testing::ServerFixture {};

TEST_F(ServerTest, HealthIsNotServingUntilTheStoreIsOpen) {
  auto app = ServerApp::Create(options_);
  ASSERT_TRUE(app.ok());
  app_ = *std::move(app);
  ASSERT_TRUE(app_->Listen().ok());
  Connect();
  auto health =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", app_->health_port()),
                          grpc::InsecureChannelCredentials());
  EXPECT_EQ(HealthStatus(channel_, ""), 2);
  EXPECT_EQ(HealthStatus(channel_, "lumina.video.v1.VideoService"), 2);
  EXPECT_EQ(HealthStatus(health, ""), 2);
  v1::VideoJob job;
  EXPECT_EQ(Create(&job).error_code(), grpc::StatusCode::UNAVAILABLE);
  httplib::Client http("127.0.0.1", app_->metrics_port());
  EXPECT_EQ(http.Get("/readyz")->status, 503);
  EXPECT_EQ(http.Get("/healthz")->status, 200);

  ASSERT_TRUE(app_->OpenStore().ok());
  EXPECT_EQ(HealthStatus(channel_, ""), 1);
  EXPECT_EQ(HealthStatus(channel_, "lumina.video.v1.VideoService"), 1);
  EXPECT_EQ(HealthStatus(channel_, "lumina.video.v1.AdminService"), 1);
  EXPECT_EQ(HealthStatus(health, ""), 1);
  grpc::StatusCode code;
  EXPECT_EQ(HealthStatus(channel_, "no.such.Service", &code), -1);
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(http.Get("/readyz")->status, 200);
  EXPECT_TRUE(Create(&job).ok());
}

TEST_F(ServerTest, ClientAdminAndWorkerCredentials) {
  StartServer();
  v1::VideoJob job;
  grpc::Status missing = Create(&job, "", "");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Create(&job, "", "wrong-key").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Create(&job, "", kAdminKey).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Create(&job).ok());

  v1::ListWorkersResponse workers;
  EXPECT_EQ(
      admin_->ListWorkers(Ctx(kClientKey).get(), {}, &workers).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(admin_->ListWorkers(Ctx("").get(), {}, &workers).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(admin_->ListWorkers(Ctx(kAdminKey).get(), {}, &workers).ok());

  ScriptedWorker intruder(app_->worker_port(), "intruder", "bad-token");
  v1::ServerMessage m;
  EXPECT_FALSE(intruder.Read(&m));
  ScriptedWorker worker(app_->worker_port(), "w1");
  ASSERT_TRUE(worker.Read(&m));
  EXPECT_TRUE(m.has_registered());
  EXPECT_GT(m.registered().lease_duration().seconds(), 0);
  // Another key does not see the job.
  v1::GetVideoJobRequest get;
  get.set_name(job.name());
  v1::VideoJob other;
  EXPECT_EQ(video_->GetVideoJob(Ctx("limited").get(), get, &other).error_code(),
            grpc::StatusCode::NOT_FOUND);
  worker.Close();
}

TEST_F(ServerTest, InvalidRequestListsEveryField) {
  StartServer();
  v1::GenerateVideoRequest bad;
  bad.set_width(33);
  bad.set_height(64);
  bad.set_frames(100000);
  bad.set_steps(-1);
  v1::VideoJob job;
  grpc::Status s = Create(&job, "not a uuid!", kClientKey, bad);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details = DetailsOf(s);
  google::rpc::BadRequest br;
  bool found = false;
  for (const auto& any : details.details()) found |= any.UnpackTo(&br);
  ASSERT_TRUE(found);
  std::set<std::string> fields;
  for (const auto& v : br.field_violations()) fields.insert(v.field());
  EXPECT_EQ(fields, (std::set<std::string>{"video.prompt", "video.width",
                                           "video.frames", "video.steps",
                                           "request_id"}));
}

TEST_F(ServerTest, QueueFullAndPerKeyQuota) {
  StartServer();
  v1::VideoJob job;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Create(&job).ok());
  grpc::Status full = Create(&job);
  ASSERT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  google::rpc::RetryInfo retry;
  google::rpc::ErrorInfo info;
  bool has_retry = false;
  const google::rpc::Status full_details = DetailsOf(full);
  for (const auto& any : full_details.details()) {
    has_retry |= any.UnpackTo(&retry);
    if (any.Is<google::rpc::ErrorInfo>()) any.UnpackTo(&info);
  }
  EXPECT_TRUE(has_retry);
  EXPECT_EQ(info.reason(), "QUEUE_FULL");

  options_.video.max_queue = 100;
  app_.reset();
  StartServer();
  ASSERT_TRUE(Create(&job, "", "limited").ok());
  grpc::Status quota = Create(&job, "", "limited");
  ASSERT_EQ(quota.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  google::rpc::QuotaFailure qf;
  bool has_quota = false;
  const google::rpc::Status quota_details = DetailsOf(quota);
  for (const auto& any : quota_details.details()) {
    has_quota |= any.UnpackTo(&qf);
  }
  ASSERT_TRUE(has_quota);
  EXPECT_EQ(qf.violations(0).subject().rfind("api_key:", 0), 0u);
}

// `alice:2:3` is 2 running and 3 queued jobs; max_concurrent used to count
// queued + running, so only 2 jobs were admitted in all.
TEST_F(ServerTest, MaxConcurrentCountsRunningJobsNotQueued) {
  StartServer();
  std::vector<std::unique_ptr<ScriptedWorker>> workers;
  for (const char* name : {"w1", "w2", "w3"}) {
    workers.push_back(
        std::make_unique<ScriptedWorker>(app_->worker_port(), name));
    v1::WorkerMessage ask;
    ask.mutable_lease_request();
    workers.back()->Send(ask);
  }
  for (int i = 0; i < 100; ++i) {  // Until all three are registered.
    v1::ListWorkersResponse listed;
    ASSERT_TRUE(admin_
                    ->ListWorkers(Ctx(kAdminKey).get(),
                                  v1::ListWorkersRequest(), &listed)
                    .ok());
    if (listed.workers_size() == 3) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    v1::VideoJob job;
    const grpc::Status s = Create(&job, "", "alice");
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
    names.push_back(job.name());
    absl::SleepFor(absl::Milliseconds(50));
  }
  v1::VideoJob job;
  EXPECT_EQ(Create(&job, "", "alice").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Three idle workers, but alice runs two jobs at once.
  absl::SleepFor(absl::Milliseconds(300));
  int running = 0, queued = 0;
  for (const std::string& name : names) {
    v1::GetVideoJobRequest get;
    get.set_name(name);
    v1::VideoJob j;
    ASSERT_TRUE(video_->GetVideoJob(Ctx("alice").get(), get, &j).ok());
    running += j.state() == v1::RUNNING;
    queued += j.state() == v1::QUEUED;
  }
  EXPECT_EQ(running, 2);
  EXPECT_EQ(queued, 3);
}

TEST_F(ServerTest, JobRunsOnWorkerAndReplaysFromAnOffset) {
  StartServer();
  v1::VideoJob job;
  ASSERT_TRUE(Create(&job, "req-1").ok());
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(job.queue_position(), 1);
  v1::VideoJob again;
  ASSERT_TRUE(Create(&again, "req-1").ok());
  EXPECT_EQ(again.name(), job.name());

  ScriptedWorker worker(app_->worker_port(), "w1");
  v1::JobAssignment a = worker.Lease();
  EXPECT_EQ(a.job(), job.name());
  EXPECT_EQ(a.request().prompt(), "cat");
  const std::string video = "ftyp-moov|moof-mdat-1|moof-mdat-2";
  v1::GenerateVideoEvent text;
  text.mutable_text_encoded()->set_tokens(7);
  worker.Event(a.lease_id(), text);
  worker.Step(a.lease_id(), 0, 2);
  worker.Step(a.lease_id(), 1, 2);
  worker.Chunk(a.lease_id(), 0, video.substr(0, 10));
  worker.Chunk(a.lease_id(), 10, video.substr(10, 11));
  worker.Chunk(a.lease_id(), 21, video.substr(21));
  worker.Complete(a.lease_id());

  std::vector<v1::GenerateVideoEvent> events;
  ASSERT_TRUE(Watch(job.name(), 0, &events).ok());
  std::vector<std::string> kinds;
  for (const auto& e : events) {
    EXPECT_EQ(e.job(), job.name());
    kinds.push_back(
        e.GetDescriptor()->FindFieldByNumber(e.event_case())->name());
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{
                       "queued", "started", "text_encoded", "step", "step",
                       "chunk", "chunk", "chunk", "completed"}));
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GT(events[i].sequence(), events[i - 1].sequence());
  }
  EXPECT_EQ(Bytes(events, 0), video);
  EXPECT_EQ(events.back().completed().size_bytes(),
            static_cast<int64_t>(video.size()));
  EXPECT_EQ(events.back().completed().video_uri(), job.name() + "/video.mp4");

  std::vector<v1::GenerateVideoEvent> resumed;
  ASSERT_TRUE(Watch(job.name(), 15, &resumed).ok());
  EXPECT_EQ(Bytes(resumed, 15), video.substr(15));
  // At the end: nothing more; past it: OUT_OF_RANGE (it was an empty OK).
  ASSERT_TRUE(Watch(job.name(), video.size(), &resumed).ok());
  EXPECT_EQ(Watch(job.name(), video.size() + 1, &resumed).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);

  v1::VideoJob done = Get(job.name());
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_EQ(done.worker(), "w1");
  EXPECT_EQ(done.progress().step(), 2);
  EXPECT_EQ(done.progress().bytes(), static_cast<int64_t>(video.size()));
  EXPECT_EQ(done.result().frames(), 9);

  v1::DeleteVideoJobRequest del;
  del.set_name(job.name());
  google::protobuf::Empty empty;
  ASSERT_TRUE(video_->DeleteVideoJob(Ctx().get(), del, &empty).ok());
  v1::GetVideoJobRequest get;
  get.set_name(job.name());
  EXPECT_EQ(video_->GetVideoJob(Ctx().get(), get, &done).error_code(),
            grpc::StatusCode::NOT_FOUND);
  worker.Close();
}

TEST_F(ServerTest, ListPagesThroughJobs) {
  options_.video.max_queue = 100;
  StartServer();
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    v1::VideoJob job;
    ASSERT_TRUE(Create(&job).ok());
    names.insert(names.begin(), job.name());
  }
  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    v1::ListVideoJobsRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    req.set_state(v1::QUEUED);
    v1::ListVideoJobsResponse resp;
    ASSERT_TRUE(video_->ListVideoJobs(Ctx().get(), req, &resp).ok());
    for (const auto& j : resp.jobs()) listed.push_back(j.name());
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(listed, names);
  EXPECT_EQ(pages, 3);
  v1::ListVideoJobsRequest req;
  req.set_page_size(-1);
  v1::ListVideoJobsResponse resp;
  EXPECT_EQ(video_->ListVideoJobs(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, EndingGenerateVideoCancelsTheJobOnItsWorker) {
  StartServer();
  ScriptedWorker worker(app_->worker_port(), "w1");
  auto ctx = Ctx();
  auto stream = video_->GenerateVideo(ctx.get(), Request());
  v1::GenerateVideoEvent e;
  ASSERT_TRUE(stream->Read(&e));
  EXPECT_TRUE(e.has_queued());
  const std::string name = e.job();
  v1::JobAssignment a = worker.Lease();
  EXPECT_EQ(a.job(), name);
  ASSERT_TRUE(stream->Read(&e));
  EXPECT_EQ(e.started().worker(), "w1");
  worker.Step(a.lease_id(), 0, 10);
  ASSERT_TRUE(stream->Read(&e));
  EXPECT_EQ(e.step().total(), 10);
  ctx->TryCancel();
  v1::ServerMessage m;
  bool cancelled = false;
  while (!cancelled && worker.Read(&m)) {
    cancelled = m.has_cancel() && m.cancel().lease_id() == a.lease_id();
  }
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(Get(name).state(), v1::CANCELLED);
  worker.Close();
}

TEST_F(ServerTest, AdmissionsAnswerOnlyOnceTheStoreCommitted) {
  StartServer();
  // A disk that refuses every commit: neither admission is acknowledged.
  app_->store()->SetCommitError(absl::UnavailableError("disk gone"));
  auto ctx = Ctx();
  auto stream = video_->GenerateVideo(ctx.get(), Request());
  v1::GenerateVideoEvent e;
  EXPECT_FALSE(stream->Read(&e));
  grpc::Status finished = stream->Finish();
  EXPECT_EQ(finished.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(finished.error_message().find("disk gone"), std::string::npos);
  v1::VideoJob job;
  EXPECT_EQ(Create(&job).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The disk is back: both are admitted, and nothing was stored before.
  app_->store()->SetCommitError(absl::OkStatus());
  ASSERT_TRUE(Create(&job).ok());
  auto ctx2 = Ctx();
  auto stream2 = video_->GenerateVideo(ctx2.get(), Request());
  ASSERT_TRUE(stream2->Read(&e));
  EXPECT_EQ(e.queued().position(), 2);
  ctx2->TryCancel();
  // Cancelling and deleting answer from their commit too: a failed one
  // changes nothing.
  v1::CancelVideoJobRequest cancel;
  cancel.set_name(job.name());
  v1::VideoJob cancelled;
  app_->store()->SetCommitError(absl::UnavailableError("disk gone"));
  EXPECT_EQ(
      video_->CancelVideoJob(Ctx().get(), cancel, &cancelled).error_code(),
      grpc::StatusCode::UNAVAILABLE);
  app_->store()->SetCommitError(absl::OkStatus());
  EXPECT_EQ(Get(job.name()).state(), v1::QUEUED);
  ASSERT_TRUE(video_->CancelVideoJob(Ctx().get(), cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  v1::DeleteVideoJobRequest del;
  del.set_name(job.name());
  google::protobuf::Empty empty;
  app_->store()->SetCommitError(absl::UnavailableError("disk gone"));
  EXPECT_EQ(video_->DeleteVideoJob(Ctx().get(), del, &empty).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  app_->store()->SetCommitError(absl::OkStatus());
  EXPECT_EQ(Get(job.name()).state(), v1::CANCELLED);
  EXPECT_TRUE(video_->DeleteVideoJob(Ctx().get(), del, &empty).ok());
}

TEST_F(ServerTest, FollowersSeeTheirJobMoveUpTheQueue) {
  StartServer();
  v1::VideoJob first;
  ASSERT_TRUE(Create(&first).ok());
  v1::VideoJob second;
  ASSERT_TRUE(Create(&second).ok());
  auto ctx = Ctx();
  auto stream = video_->GenerateVideo(ctx.get(), Request("third"));
  v1::GenerateVideoEvent e;
  ASSERT_TRUE(stream->Read(&e));
  EXPECT_EQ(e.queued().position(), 3);
  EXPECT_EQ(e.queued().ahead(), 2);
  // The first job is cancelled, the second leased: the third moves up twice.
  v1::CancelVideoJobRequest cancel;
  cancel.set_name(first.name());
  v1::VideoJob cancelled;
  ASSERT_TRUE(video_->CancelVideoJob(Ctx().get(), cancel, &cancelled).ok());
  ASSERT_TRUE(stream->Read(&e));
  EXPECT_EQ(e.queued().position(), 2);
  ScriptedWorker worker(app_->worker_port(), "w1");
  EXPECT_EQ(worker.Lease().job(), second.name());
  ASSERT_TRUE(stream->Read(&e));
  EXPECT_EQ(e.queued().position(), 1);
  EXPECT_EQ(e.queued().ahead(), 0);
  ctx->TryCancel();
  worker.Close();
}

TEST_F(ServerTest, WatchersOfQueuedJobsGetTheirPositionsPushed) {
  StartServer();
  std::vector<v1::VideoJob> jobs(4);
  for (v1::VideoJob& job : jobs) ASSERT_TRUE(Create(&job).ok());
  // Watchers of the jobs at positions 2, 3 and 4 (two of the last).
  struct Watcher {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::GenerateVideoEvent>> reader;
    // The next event, which must be a Queued event: its position.
    int Position() {
      v1::GenerateVideoEvent e;
      EXPECT_TRUE(reader->Read(&e));
      EXPECT_TRUE(e.has_queued()) << e.DebugString();
      EXPECT_EQ(e.queued().ahead(), e.queued().position() - 1);
      return e.queued().position();
    }
  };
  std::vector<Watcher> watchers;
  for (int i : {1, 2, 3, 3}) {
    v1::WatchVideoJobRequest req;
    req.set_name(jobs[i].name());
    Watcher w;
    w.ctx = Ctx();
    w.reader = video_->WatchVideoJob(w.ctx.get(), req);
    watchers.push_back(std::move(w));
  }
  EXPECT_EQ(watchers[0].Position(), 2);
  EXPECT_EQ(watchers[1].Position(), 3);
  EXPECT_EQ(watchers[2].Position(), 4);
  EXPECT_EQ(watchers[3].Position(), 4);
  // The first job is cancelled: everyone moves up one. The positions are
  // pushed: the only store read is the CancelVideoJob call's own lookup.
  const int64_t reads = SettledStoreReads();
  v1::CancelVideoJobRequest cancel;
  cancel.set_name(jobs[0].name());
  v1::VideoJob cancelled;
  ASSERT_TRUE(video_->CancelVideoJob(Ctx().get(), cancel, &cancelled).ok());
  EXPECT_EQ(watchers[0].Position(), 1);
  EXPECT_EQ(watchers[1].Position(), 2);
  EXPECT_EQ(watchers[2].Position(), 3);
  EXPECT_EQ(watchers[3].Position(), 3);
  EXPECT_EQ(SettledStoreReads() - reads, 1);
  // The head is leased: its watcher sees it start, the others move up.
  ScriptedWorker worker(app_->worker_port(), "w1");
  EXPECT_EQ(worker.Lease().job(), jobs[1].name());
  v1::GenerateVideoEvent e;
  ASSERT_TRUE(watchers[0].reader->Read(&e));
  EXPECT_TRUE(e.has_started()) << e.DebugString();
  EXPECT_EQ(watchers[1].Position(), 1);
  EXPECT_EQ(watchers[2].Position(), 2);
  EXPECT_EQ(watchers[3].Position(), 2);
  // The job between them is cancelled: its watcher ends, the last moves up.
  cancel.set_name(jobs[2].name());
  ASSERT_TRUE(video_->CancelVideoJob(Ctx().get(), cancel, &cancelled).ok());
  EXPECT_FALSE(watchers[1].reader->Read(&e));
  EXPECT_EQ(watchers[1].reader->Finish().error_code(),
            grpc::StatusCode::CANCELLED);
  EXPECT_EQ(watchers[2].Position(), 1);
  EXPECT_EQ(watchers[3].Position(), 1);
  for (Watcher& w : watchers) w.ctx->TryCancel();
  worker.Close();
}

TEST_F(ServerTest, CancelVideoJobEndsWatchersWithCancelled) {
  StartServer();
  v1::VideoJob job;
  ASSERT_TRUE(Create(&job).ok());
  auto watch = std::async(std::launch::async, [&] {
    std::vector<v1::GenerateVideoEvent> events;
    return Watch(job.name(), 0, &events).error_code();
  });
  v1::CancelVideoJobRequest req;
  req.set_name(job.name());
  v1::VideoJob cancelled;
  ASSERT_TRUE(video_->CancelVideoJob(Ctx().get(), req, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  EXPECT_EQ(watch.get(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(video_->CancelVideoJob(Ctx().get(), req, &cancelled).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ServerTest, DrainLetsTheRunningJobFinishAndRefusesNewOnes) {
  StartServer();
  ScriptedWorker worker(app_->worker_port(), "w1");
  v1::VideoJob job;
  ASSERT_TRUE(Create(&job).ok());
  v1::JobAssignment a = worker.Lease();
  std::thread drain([&] { app_->Drain(); });
  // The server stops admitting and reports NOT_SERVING while it waits.
  v1::VideoJob refused;
  grpc::Status s;
  for (int i = 0; i < 100; ++i) {
    s = Create(&refused);
    if (!s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(HealthStatus(channel_, ""), 2);
  worker.Chunk(a.lease_id(), 0, "video");
  worker.Complete(a.lease_id());
  drain.join();
  RealClock clock;
  auto store = JobStore::Open(options_.store, &clock);
  ASSERT_TRUE(store.ok());
  auto id = ParseJobName(JobKind::kVideo, job.name(), "name");
  EXPECT_EQ((*store)->Get(JobKind::kVideo, *id)->state, v1::SUCCEEDED);
}

TEST_F(ServerTest, RunningJobIsRequeuedAcrossRestart) {
  StartServer();
  ScriptedWorker worker(app_->worker_port(), "w1");
  v1::VideoJob job;
  ASSERT_TRUE(Create(&job).ok());
  v1::JobAssignment a = worker.Lease();
  worker.Chunk(a.lease_id(), 0, "partial");
  app_->Shutdown();
  // Shutdown itself put the job back: its log is Requeued, Queued.
  auto id = ParseJobName(JobKind::kVideo, job.name(), "name");
  ASSERT_TRUE(id.ok());
  auto events = app_->store()->ReadEvents(*id, 0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  v1::GenerateVideoEvent requeued;
  ASSERT_TRUE(requeued.ParseFromString((*events)[0].body));
  EXPECT_EQ(requeued.requeued().reason(), "the server shut down");
  app_.reset();
  StartServer();
  v1::VideoJob after = Get(job.name());
  EXPECT_EQ(after.state(), v1::QUEUED);
  EXPECT_EQ(after.attempts(), 0);
  EXPECT_EQ(after.progress().bytes(), 0);
  ScriptedWorker second(app_->worker_port(), "w2");
  v1::JobAssignment b = second.Lease();
  EXPECT_EQ(b.job(), job.name());
  EXPECT_EQ(b.attempt(), 1);
  second.Close();
}

TEST_F(ServerTest, MetricsPassPromtool) {
  StartServer();
  ScriptedWorker worker(app_->worker_port(), "w\"1");
  v1::VideoJob job;
  ASSERT_TRUE(Create(&job).ok());
  v1::JobAssignment a = worker.Lease();
  worker.Step(a.lease_id(), 0, 1);
  worker.Chunk(a.lease_id(), 0, "x");
  worker.Complete(a.lease_id());
  std::vector<v1::GenerateVideoEvent> events;
  ASSERT_TRUE(Watch(job.name(), 0, &events).ok());
  v1::VideoJob missing;
  Create(&missing, "", "wrong");
  std::string text;
  httplib::Client http("127.0.0.1", app_->metrics_port());
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  text = res->body;
  EXPECT_NE(text.find("lvs_jobs_total{state=\"SUCCEEDED\"} 1\n"),
            std::string::npos);
  // Labels in name order (prometheus-cpp's text serializer).
  EXPECT_NE(text.find("lvs_grpc_requests_total{code=\"OK\",method=\"lumina."
                      "video.v1.VideoService/CreateVideoJob\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("lvs_grpc_requests_total{code=\"UNAUTHENTICATED\","),
            std::string::npos);
  EXPECT_NE(text.find("lvs_server_build_info{build_type=\""),
            std::string::npos);
  EXPECT_NE(text.find("\nprocess_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(text.find("\nprocess_start_time_seconds "), std::string::npos);
  EXPECT_NE(text.find("lvs_worker_gpu_memory_bytes{worker=\"w\\\"1\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("lvs_time_to_first_chunk_seconds_count 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("lvs_workers{kind=\"generator\",state=\"idle\"} 1\n"),
            std::string::npos);
  const size_t reads_at = text.find("\nlvs_store_reads_total ");
  ASSERT_NE(reads_at, std::string::npos) << text;
  const double reads =
      std::atof(text.c_str() + reads_at + strlen("\nlvs_store_reads_total "));
  EXPECT_GT(reads, 0);  // At least the watch's replay.
  EXPECT_LE(reads, app_->store()->reads());
  const std::string path = dir_.path() + "/metrics.txt";
  std::ofstream(path) << text;
  ASSERT_EQ(std::system("command -v promtool > /dev/null"), 0)
      << "promtool (Debian package prometheus) is required";
  EXPECT_EQ(std::system(("promtool check metrics < " + path).c_str()), 0)
      << text;
  worker.Close();
}

TEST_F(ServerTest, SeedZeroIsFixedAtAdmission) {
  StartServer();
  v1::GenerateVideoRequest request = Request();
  request.set_seed(0);
  v1::VideoJob a, b;
  ASSERT_TRUE(Create(&a, "", kClientKey, request).ok());
  ASSERT_TRUE(Create(&b, "", kClientKey, request).ok());
  // The stored request carries the chosen seed, so every attempt of the job
  // (and every reader of it) sees the same one.
  EXPECT_NE(a.request().seed(), 0);
  EXPECT_EQ(Get(a.name()).request().seed(), a.request().seed());
  EXPECT_NE(a.request().seed(), b.request().seed());
  request.set_seed(42);
  v1::VideoJob c;
  ASSERT_TRUE(Create(&c, "", kClientKey, request).ok());
  EXPECT_EQ(c.request().seed(), 42);
}

}  // namespace
}  // namespace lvs::server

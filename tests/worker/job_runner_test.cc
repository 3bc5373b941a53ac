// Tests of JobRunner with the fake model: the JobEvent sequence sent to the
// server, the streamed fragmented MP4 (contiguous chunks that decode to the
// model's frames), cancellation, failures and a stream that goes away.
#include "worker/job_runner.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "model/media/video_decoder.h"
#include "worker/fake_model.h"

namespace lvs::worker {
namespace {

namespace pb = ::lumina::video::v1;

pb::JobAssignment Assignment(int width, int height, int frames, int steps) {
  pb::JobAssignment a;
  a.set_lease_id("lease-1");
  a.set_job("jobs/abc");
  a.set_attempt(1);
  a.mutable_request()->set_prompt("a red fox");
  a.mutable_request()->set_width(width);
  a.mutable_request()->set_height(height);
  a.mutable_request()->set_frames(frames);
  a.mutable_request()->set_fps(8);
  a.mutable_request()->set_steps(steps);
  a.mutable_request()->set_seed(5);
  return a;
}

FakeVideoModelOptions Fast() {
  FakeVideoModelOptions o;
  o.step_time = absl::Milliseconds(1);
  o.chunk_frames = 4;
  return o;
}

EncoderSettings FastEncoder() {
  EncoderSettings e;
  e.preset = "ultrafast";
  e.crf = 18;
  e.gop_size = 4;
  return e;
}

// Collects what the runner sends.
struct Capture {
  std::vector<pb::WorkerMessage> messages;
  int fail_after = -1;  // Writes fail once this many succeeded.
  MessageWriter Writer() {
    return [this](const pb::WorkerMessage& m) {
      if (fail_after >= 0 && static_cast<int>(messages.size()) >= fail_after) {
        return false;
      }
      messages.push_back(m);
      return true;
    };
  }
};

double Psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double se = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    se += d * d;
  }
  const double mse = se / a.size();
  return mse == 0 ? 100 : 10 * std::log10(255.0 * 255.0 / mse);
}

TEST(JobRunnerTest, StreamsEventsAndADecodableMp4) {
  FakeVideoModel model(Fast());
  JobRunner runner(&model, FastEncoder());
  Capture capture;
  CancelToken cancel;
  // 4 grid points: 3 denoising steps.
  const pb::WorkerMessage final_message =
      runner.Run(Assignment(64, 48, 10, 4), cancel, capture.Writer());

  ASSERT_TRUE(final_message.has_job_result());
  const pb::JobResult& result = final_message.job_result();
  EXPECT_EQ(result.lease_id(), "lease-1");
  ASSERT_TRUE(result.has_completed()) << result.error().message();
  EXPECT_FALSE(result.has_error());

  std::vector<uint8_t> mp4;
  int steps = 0, text = 0, decoded = 0;
  bool seen_chunk = false;
  for (const pb::WorkerMessage& m : capture.messages) {
    ASSERT_TRUE(m.has_job_event());
    EXPECT_EQ(m.job_event().lease_id(), "lease-1");
    const pb::GenerateVideoEvent& e = m.job_event().event();
    if (e.has_text_encoded()) {
      EXPECT_EQ(steps, 0);
      ++text;
    } else if (e.has_step()) {
      EXPECT_EQ(e.step().index(), steps);
      EXPECT_EQ(e.step().total(), 3);
      EXPECT_EQ(e.step().patch(), "1x2");
      EXPECT_GT(e.step().it_per_s(), 0);
      ++steps;
    } else if (e.has_decoded()) {
      EXPECT_EQ(steps, 3);
      EXPECT_EQ(e.decoded().frames_total(), 10);
      ++decoded;
    } else if (e.has_chunk()) {
      seen_chunk = true;
      EXPECT_EQ(e.chunk().offset(), static_cast<int64_t>(mp4.size()));
      EXPECT_LE(e.chunk().data().size(), 1u << 20);
      mp4.insert(mp4.end(), e.chunk().data().begin(), e.chunk().data().end());
    } else {
      ADD_FAILURE() << "unexpected event " << e.DebugString();
    }
  }
  EXPECT_TRUE(seen_chunk);
  EXPECT_EQ(text, 1);
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(decoded, 3);  // 4 + 4 + 2 frames.

  const pb::Completed& c = result.completed();
  EXPECT_EQ(c.frames(), 10);
  EXPECT_EQ(c.fps(), 8);
  EXPECT_EQ(c.width(), 64);
  EXPECT_EQ(c.height(), 48);
  EXPECT_EQ(c.seed(), 5);
  EXPECT_EQ(c.size_bytes(), static_cast<int64_t>(mp4.size()));
  EXPECT_GT(c.timings().total().seconds() * 1e9 + c.timings().total().nanos(),
            0);

  auto decoder = media::VideoDecoder::OpenBuffer(mp4, "streamed");
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  EXPECT_EQ((*decoder)->info().codec, "h264");
  EXPECT_EQ((*decoder)->info().width, 64);
  EXPECT_EQ((*decoder)->info().height, 48);
  auto frames = (*decoder)->DecodeAll();
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 10u);
  std::vector<uint8_t> expected(64 * 48 * 3);
  for (int i : {0, 9}) {
    FakeVideoModel::RenderFrame(5, i, 64, 48, expected.data());
    EXPECT_GT(Psnr((*frames)[i].rgb, expected), 28.0) << "frame " << i;
  }
}

TEST(JobRunnerTest, AnswersACancellationWithCancelAck) {
  FakeVideoModel model(Fast());
  JobRunner runner(&model, FastEncoder());
  Capture capture;
  CancelToken cancel;
  cancel.Cancel();
  const pb::WorkerMessage m =
      runner.Run(Assignment(64, 48, 10, 3), cancel, capture.Writer());
  ASSERT_TRUE(m.has_cancel_ack());
  EXPECT_EQ(m.cancel_ack().lease_id(), "lease-1");
}

TEST(JobRunnerTest, ReportsAModelFailureAsRetryable) {
  FakeVideoModelOptions o = Fast();
  o.fail_at_step = 2;
  FakeVideoModel model(o);
  JobRunner runner(&model, FastEncoder());
  Capture capture;
  CancelToken cancel;
  const pb::WorkerMessage m =
      runner.Run(Assignment(64, 48, 10, 3), cancel, capture.Writer());
  ASSERT_TRUE(m.has_job_result());
  EXPECT_FALSE(m.job_result().has_completed());
  EXPECT_EQ(m.job_result().error().code(), 13);  // INTERNAL.
  EXPECT_NE(m.job_result().error().message().find("step 2"), std::string::npos);
  EXPECT_FALSE(m.job_result().permanent());
}

TEST(JobRunnerTest, ReportsABadRequestAsPermanent) {
  FakeVideoModel model(Fast());
  JobRunner runner(&model, FastEncoder());
  Capture capture;
  CancelToken cancel;
  const pb::WorkerMessage m =
      runner.Run(Assignment(63, 48, 10, 3), cancel, capture.Writer());
  ASSERT_TRUE(m.has_job_result());
  EXPECT_EQ(m.job_result().error().code(), 3);  // INVALID_ARGUMENT.
  EXPECT_NE(m.job_result().error().message().find("width"), std::string::npos);
  EXPECT_TRUE(m.job_result().permanent());
}

TEST(JobRunnerTest, StopsWhenTheStreamIsGone) {
  FakeVideoModel model(Fast());
  JobRunner runner(&model, FastEncoder());
  Capture capture;
  capture.fail_after = 5;  // Text encoded, 3 steps, then the first chunk.
  CancelToken cancel;
  const pb::WorkerMessage m =
      runner.Run(Assignment(64, 48, 10, 4), cancel, capture.Writer());
  ASSERT_TRUE(m.has_job_result());
  EXPECT_EQ(m.job_result().error().code(), 14);  // UNAVAILABLE.
}

TEST(JobRunnerTest, PicksAndReportsASeedWhenTheRequestHasNone) {
  FakeVideoModel model(Fast());
  JobRunner runner(&model, FastEncoder());
  pb::JobAssignment a = Assignment(64, 48, 5, 2);
  a.mutable_request()->set_seed(0);
  Capture first, second;
  CancelToken cancel;
  const pb::WorkerMessage m1 = runner.Run(a, cancel, first.Writer());
  const pb::WorkerMessage m2 = runner.Run(a, cancel, second.Writer());
  ASSERT_TRUE(m1.job_result().has_completed());
  EXPECT_GT(m1.job_result().completed().seed(), 0);
  EXPECT_NE(m1.job_result().completed().seed(),
            m2.job_result().completed().seed());
}

TEST(JobRunnerTest, ConvertsTheRequest) {
  pb::JobAssignment a = Assignment(320, 192, 33, 12);
  a.mutable_request()->set_negative_prompt("blurry");
  a.mutable_request()->set_sample_config("f24F96R960-MultiScale");
  a.mutable_request()->set_precision(pb::PRECISION_FP32);
  a.mutable_request()->set_cache_threshold(0.25f);
  const absl::StatusOr<GenerateRequest> converted = ToGenerateRequest(a);
  ASSERT_TRUE(converted.ok()) << converted.status();
  const GenerateRequest& r = *converted;
  EXPECT_EQ(r.job_id, "jobs/abc");
  EXPECT_EQ(r.prompt, "a red fox");
  EXPECT_EQ(r.negative_prompt, "blurry");
  EXPECT_EQ(r.width, 320);
  EXPECT_EQ(r.height, 192);
  EXPECT_EQ(r.frames, 33);
  EXPECT_EQ(r.fps, 8);
  EXPECT_EQ(r.grid_points, 12);
  EXPECT_EQ(r.seed, 5u);
  EXPECT_EQ(r.sample_config, "f24F96R960-MultiScale");
  EXPECT_EQ(r.precision, "fp32");
  EXPECT_FLOAT_EQ(r.cache_threshold, 0.25f);
  EXPECT_FALSE(r.sample.has_value());
}

// The explicit `sample` config reaches the model (it used to be dropped):
// written like the named f24F96R960-MultiScale, it converts to that config.
TEST(JobRunnerTest, ConvertsTheExplicitSampleConfig) {
  pb::JobAssignment a = Assignment(320, 192, 33, 12);
  pb::SampleConfig* s = a.mutable_request()->mutable_sample();
  s->mutable_patch()->set_initial("2x4");
  auto* p1 = s->mutable_patch()->add_switches();
  p1->set_from_t(0.03f);
  p1->set_patch("2x2");
  auto* p2 = s->mutable_patch()->add_switches();
  p2->set_from_t(0.125f);
  p2->set_patch("1x2");
  s->set_time_shift(24);
  s->set_renorm_cfg(2);
  s->mutable_cfg_scale()->set_initial(20);
  auto* c1 = s->mutable_cfg_scale()->add_switches();
  c1->set_from_t(0.2f);
  c1->set_value(0);
  s->mutable_motion_score()->set_initial(6);
  s->mutable_negative_motion_score()->set_initial(2);
  auto* n1 = s->mutable_negative_motion_score()->add_switches();
  n1->set_from_t(0.05f);
  n1->set_value(6);
  const absl::StatusOr<GenerateRequest> r = ToGenerateRequest(a);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->sample.has_value());
  absl::StatusOr<sampler::SampleConfig> named =
      sampler::NamedSampleConfig("f24F96R960-MultiScale");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(r->sample->patch, named->patch);
  EXPECT_EQ(r->sample->time_shift, named->time_shift);
  EXPECT_EQ(r->sample->renorm, named->renorm);
  EXPECT_EQ(r->sample->motion, named->motion);
  EXPECT_EQ(r->sample->neg_motion, named->neg_motion);
  EXPECT_EQ(r->sample->cfg, named->cfg);

  s->mutable_patch()->set_initial("bad");
  EXPECT_EQ(ToGenerateRequest(a).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Completed's decode time is the remainder of the total; it used to go
// negative when encoding (which overlaps decoding) took the rest.
TEST(DecodeTimeTest, IsTheRemainderClampedAtZero) {
  const absl::Duration ms = absl::Milliseconds(1);
  EXPECT_EQ(DecodeTime(100 * ms, 10 * ms, 50 * ms, 15 * ms), 25 * ms);
  EXPECT_EQ(DecodeTime(100 * ms, 10 * ms, 50 * ms, 40 * ms),
            absl::ZeroDuration());
  EXPECT_EQ(DecodeTime(100 * ms, 10 * ms, 50 * ms, 45 * ms),
            absl::ZeroDuration());
  EXPECT_EQ(DecodeTime(absl::ZeroDuration(), absl::ZeroDuration(), ms, ms),
            absl::ZeroDuration());
}

}  // namespace
}  // namespace lvs::worker

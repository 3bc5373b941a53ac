#include "worker/job_runner.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "model/media/video_encoder.h"

namespace lvs::worker {
namespace {

namespace pb = ::lumina::video::v1;

// Receives the model's progress for one lease: encodes frames and sends
// JobEvents. Owned by the model-owner thread for the duration of one job.
class JobSink : public ProgressSink {
 public:
  JobSink(std::string lease_id, const EncoderSettings& settings,
          const MessageWriter& write)
      : lease_id_(std::move(lease_id)), settings_(settings), write_(write) {}

  void OnPlan(const VideoPlan& plan) override { plan_ = plan; }

  void OnTextEncoded(int tokens, double seconds) override {
    text_encode_ = absl::Seconds(seconds);
    denoise_start_ = absl::Now();
    pb::GenerateVideoEvent event;
    event.mutable_text_encoded()->set_tokens(tokens);
    Send(event);
  }

  void OnStep(const StepEvent& step) override {
    const absl::Time now = absl::Now();
    denoise_end_ = now;
    // Throughput and ETA are measured here once and passed along as is.
    const double elapsed = absl::ToDoubleSeconds(now - denoise_start_);
    const int done = step.index + 1;  // Steps finished, a count.
    const double it_per_s = elapsed > 0 ? done / elapsed : 0;
    pb::GenerateVideoEvent event;
    pb::Step* s = event.mutable_step();
    s->set_index(step.index);
    s->set_total(step.denoise_steps);
    s->set_t(static_cast<float>(step.t));
    s->set_patch(step.patch);
    s->set_guided(step.guided);
    s->set_it_per_s(static_cast<float>(it_per_s));
    if (it_per_s > 0) {
      common::ToProto(absl::Seconds((step.denoise_steps - done) / it_per_s),
                      s->mutable_eta());
    }
    Send(event);
  }

  absl::Status OnFrames(const FrameBatch& frames) override {
    if (encoder_ == nullptr) {
      media::VideoEncoderOptions options;
      options.width = frames.width;
      options.height = frames.height;
      options.fps_num = plan_.fps > 0 ? plan_.fps : 16;
      options.crf = settings_.crf;
      options.preset = settings_.preset;
      options.gop_size = settings_.gop_size;
      const absl::Time start = absl::Now();
      auto encoder = media::VideoEncoder::CreateStreaming(
          options, [this](const media::Chunk& c) { return SendChunk(c); });
      if (!encoder.ok()) return encoder.status();
      encoder_ = *std::move(encoder);
      encode_ += absl::Now() - start;
    }
    const size_t frame_bytes =
        static_cast<size_t>(frames.width) * frames.height * 3;
    const absl::Time start = absl::Now();
    for (int i = 0; i < frames.count; ++i) {
      absl::Status s =
          encoder_->AddFrame(frames.rgb.subspan(i * frame_bytes, frame_bytes));
      if (!s.ok()) return s;
    }
    encode_ += absl::Now() - start;
    frames_ += frames.count;
    return absl::OkStatus();
  }

  void OnDecoded(int frames_done, int frames_total) override {
    pb::GenerateVideoEvent event;
    event.mutable_decoded()->set_frames_done(frames_done);
    event.mutable_decoded()->set_frames_total(frames_total);
    Send(event);
  }

  void OnDiTForwards(int64_t computed, int64_t cached) override {
    dit_forwards_computed_ = computed;
    dit_forwards_cached_ = cached;
  }

  // Flushes the encoder and fills `completed`.
  absl::Status Finish(absl::Duration total, pb::Completed* completed) {
    if (encoder_ == nullptr) {
      return absl::InternalError("the model produced no frames");
    }
    const absl::Time start = absl::Now();
    absl::Status s = encoder_->Finish();
    if (!s.ok()) return s;
    encode_ += absl::Now() - start;
    completed->set_frames(frames_);
    completed->set_fps(plan_.fps);
    completed->set_width(encoder_->output_width());
    completed->set_height(encoder_->output_height());
    completed->set_seed(static_cast<int64_t>(plan_.seed));
    completed->set_size_bytes(encoder_->stats().bytes);
    pb::Timings* t = completed->mutable_timings();
    common::ToProto(text_encode_, t->mutable_text_encode());
    common::ToProto(denoise_end_ - denoise_start_, t->mutable_denoise());
    common::ToProto(
        DecodeTime(total, text_encode_, denoise_end_ - denoise_start_, encode_),
        t->mutable_decode());
    common::ToProto(encode_, t->mutable_encode());
    common::ToProto(total, t->mutable_total());
    t->set_dit_forwards_computed(static_cast<int32_t>(dit_forwards_computed_));
    t->set_dit_forwards_cached(static_cast<int32_t>(dit_forwards_cached_));
    return absl::OkStatus();
  }

 private:
  // Sends one MP4 chunk; fails the encode when the stream is gone.
  absl::Status SendChunk(const media::Chunk& chunk) {
    pb::GenerateVideoEvent event;
    event.mutable_chunk()->set_offset(chunk.offset);
    event.mutable_chunk()->set_data(chunk.bytes.data(), chunk.bytes.size());
    if (!Send(event)) {
      return absl::UnavailableError("the stream to the server closed");
    }
    return absl::OkStatus();
  }

  bool Send(pb::GenerateVideoEvent& event) {
    pb::WorkerMessage message;
    message.mutable_job_event()->set_lease_id(lease_id_);
    message.mutable_job_event()->mutable_event()->Swap(&event);
    return write_(message);
  }

  const std::string lease_id_;
  const EncoderSettings& settings_;
  const MessageWriter& write_;
  VideoPlan plan_;
  std::unique_ptr<media::VideoEncoder> encoder_;
  int frames_ = 0;
  int64_t dit_forwards_computed_ = 0;
  int64_t dit_forwards_cached_ = 0;
  absl::Duration text_encode_;
  absl::Duration encode_;
  absl::Time denoise_start_ = absl::Now();
  absl::Time denoise_end_ = denoise_start_;
};

// The double a person means by a float of the API: 0.03f becomes 0.03 (its
// shortest decimal form), so an explicit config equal to a named one runs
// the same grid switches.
double Decimal(float value) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof(buf), value).ptr;
  return std::strtod(std::string(buf, end).c_str(), nullptr);
}

template <typename T, typename Schedule, typename Convert>
sampler::TimeAware<T> ToTimeAware(const Schedule& s, Convert convert) {
  sampler::TimeAware<T> out;
  out.default_value = convert(s.initial());
  for (const auto& sw : s.switches()) {
    if constexpr (std::is_same_v<Schedule, pb::PatchSchedule>) {
      out.steps.emplace_back(Decimal(sw.from_t()), convert(sw.patch()));
    } else {
      out.steps.emplace_back(Decimal(sw.from_t()), convert(sw.value()));
    }
  }
  return out;
}

}  // namespace

absl::Duration DecodeTime(absl::Duration total, absl::Duration text_encode,
                          absl::Duration denoise, absl::Duration encode) {
  return std::max(absl::ZeroDuration(), total - text_encode - denoise - encode);
}

absl::StatusOr<sampler::SampleConfig> ToSampleConfig(
    const pb::SampleConfig& sample) {
  sampler::SampleConfig c;
  c.name = "custom";
  absl::Status bad;
  auto patch = [&bad](const std::string& text) {
    absl::StatusOr<sampler::PatchComb> p = dit::ParsePatchComb(text);
    if (!p.ok()) {
      if (bad.ok()) {
        bad = absl::InvalidArgumentError(
            absl::StrCat("sample.patch: ", p.status().message()));
      }
      return sampler::PatchComb();
    }
    return *p;
  };
  auto number = [](float v) { return Decimal(v); };
  c.patch = ToTimeAware<sampler::PatchComb>(sample.patch(), patch);
  c.time_shift = Decimal(sample.time_shift());
  // The proto's 0 disables renormalisation; the sampler's switch is <= 0.
  c.renorm = sample.renorm_cfg() > 0 ? Decimal(sample.renorm_cfg()) : -1;
  c.cfg = ToTimeAware<double>(sample.cfg_scale(), number);
  c.motion = ToTimeAware<double>(sample.motion_score(), number);
  c.neg_motion = ToTimeAware<double>(sample.negative_motion_score(), number);
  if (!bad.ok()) return bad;
  return c;
}

absl::StatusOr<GenerateRequest> ToGenerateRequest(
    const pb::JobAssignment& assignment) {
  const pb::GenerateVideoRequest& r = assignment.request();
  GenerateRequest out;
  out.job_id = assignment.job();
  out.prompt = r.prompt();
  out.negative_prompt = r.negative_prompt();
  out.width = r.width();
  out.height = r.height();
  out.frames = r.frames();
  out.fps = r.fps();
  out.sample_config = r.sample_config();
  out.grid_points = r.steps();
  out.seed = static_cast<uint64_t>(r.seed());
  out.cache_threshold = r.cache_threshold();
  if (r.has_sample() && r.sample_config().empty()) {
    absl::StatusOr<sampler::SampleConfig> sample = ToSampleConfig(r.sample());
    if (!sample.ok()) return sample.status();
    out.sample = *std::move(sample);
  }
  switch (r.precision()) {
    case pb::PRECISION_BF16:
      out.precision = "bf16";
      break;
    case pb::PRECISION_FP32:
      out.precision = "fp32";
      break;
    default:
      break;
  }
  return out;
}

JobRunner::JobRunner(VideoModel* model, EncoderSettings settings)
    : model_(model), settings_(std::move(settings)) {}

pb::WorkerMessage JobRunner::Run(const pb::JobAssignment& assignment,
                                 const CancelToken& cancel,
                                 const MessageWriter& write) {
  const absl::Time start = absl::Now();
  JobSink sink(assignment.lease_id(), settings_, write);
  absl::StatusOr<GenerateRequest> converted = ToGenerateRequest(assignment);
  absl::Status status = converted.status();
  GenerateRequest request = converted.ok() ? *converted : GenerateRequest();
  if (request.seed == 0) {
    // "0 picks a random seed"; Completed reports the one used.
    request.seed = absl::Uniform<uint64_t>(rng_, 1, uint64_t{1} << 62);
  }
  if (status.ok()) status = model_->Generate(request, sink, cancel);
  pb::WorkerMessage out;
  if (cancel.cancelled()) {
    out.mutable_cancel_ack()->set_lease_id(assignment.lease_id());
    return out;
  }
  pb::JobResult* result = out.mutable_job_result();
  result->set_lease_id(assignment.lease_id());
  if (status.ok()) {
    status = sink.Finish(absl::Now() - start, result->mutable_completed());
  }
  if (!status.ok()) {
    result->clear_completed();
    result->mutable_error()->set_code(static_cast<int>(status.code()));
    result->mutable_error()->set_message(std::string(status.message()));
    result->set_permanent(status.code() == absl::StatusCode::kInvalidArgument);
  }
  return out;
}

}  // namespace lvs::worker

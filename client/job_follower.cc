#include "client/job_follower.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lvs::client {
namespace {

namespace pb = ::lumina::video::v1;

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

double Seconds(const google::protobuf::Duration& d) {
  return d.seconds() + d.nanos() * 1e-9;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobFollower>> JobFollower::Create(
    const std::string& output, int64_t from_offset, ProgressBar* progress) {
  if (from_offset < 0) {
    return absl::InvalidArgumentError("--from-offset: must be >= 0");
  }
  if (output.empty()) {
    return std::unique_ptr<JobFollower>(
        new JobFollower(output, -1, from_offset, progress));
  }
  const std::string part = absl::StrCat(output, ".part");
  if (from_offset > 0) {
    // Resume: continue the partial file (or a complete one being re-read).
    struct stat st {};
    if (stat(part.c_str(), &st) != 0 &&
        std::rename(output.c_str(), part.c_str()) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--from-offset: neither '", part, "' nor '", output, "' exists"));
    }
  }
  const int fd = open(
      part.c_str(),
      O_WRONLY | O_CREAT | O_CLOEXEC | (from_offset > 0 ? 0 : O_TRUNC), 0644);
  if (fd < 0) return Errno("cannot open", part);
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < from_offset) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat("--from-offset: '", part,
                                                      "' holds fewer than ",
                                                      from_offset, " bytes"));
  }
  if (ftruncate(fd, from_offset) != 0) {
    close(fd);
    return Errno("cannot truncate", part);
  }
  return std::unique_ptr<JobFollower>(
      new JobFollower(output, fd, from_offset, progress));
}

JobFollower::JobFollower(std::string output, int fd, int64_t offset,
                         ProgressBar* progress)
    : output_(std::move(output)),
      fd_(fd),
      next_offset_(offset),
      progress_(progress) {
  state_.bytes = static_cast<uint64_t>(offset);
}

JobFollower::~JobFollower() {
  if (fd_ >= 0) close(fd_);
}

absl::Status JobFollower::WriteChunk(int64_t offset, const std::string& data) {
  const int64_t end = offset + static_cast<int64_t>(data.size());
  if (offset > next_offset_) {
    return absl::DataLossError(absl::StrCat("chunk at offset ", offset,
                                            " leaves a gap after ",
                                            next_offset_, " bytes"));
  }
  if (end <= next_offset_) return absl::OkStatus();  // Already written.
  const int64_t skip = next_offset_ - offset;
  if (fd_ >= 0) {
    const char* p = data.data() + skip;
    size_t left = data.size() - skip;
    int64_t at = next_offset_;
    while (left > 0) {
      const ssize_t n = pwrite(fd_, p, left, at);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("cannot write", absl::StrCat(output_, ".part"));
      }
      p += n;
      left -= n;
      at += n;
    }
  }
  next_offset_ = end;
  return absl::OkStatus();
}

absl::Status JobFollower::Consume(const pb::GenerateVideoEvent& event) {
  using Phase = ProgressState::Phase;
  if (!event.job().empty()) job_ = event.job();
  switch (event.event_case()) {
    case pb::GenerateVideoEvent::kQueued:
      state_.phase = Phase::kQueued;
      state_.queue_position = event.queued().position();
      state_.queue_ahead = event.queued().ahead();
      break;
    case pb::GenerateVideoEvent::kStarted:
      state_.phase = Phase::kStarted;
      state_.worker = event.started().worker();
      break;
    case pb::GenerateVideoEvent::kTextEncoded:
      break;
    case pb::GenerateVideoEvent::kStep:
      state_.phase = Phase::kDenoising;
      state_.step_index = event.step().index();
      state_.total_steps = event.step().total();
      state_.it_per_s = event.step().it_per_s();
      state_.eta_seconds =
          event.step().has_eta() ? Seconds(event.step().eta()) : -1;
      break;
    case pb::GenerateVideoEvent::kDecoded:
      state_.phase = Phase::kDecoding;
      state_.eta_seconds = 0;
      state_.frames_done = event.decoded().frames_done();
      state_.frames_total = event.decoded().frames_total();
      break;
    case pb::GenerateVideoEvent::kChunk: {
      const absl::Status s =
          WriteChunk(event.chunk().offset(), event.chunk().data());
      if (!s.ok()) return s;
      state_.bytes = static_cast<uint64_t>(next_offset_);
      break;
    }
    case pb::GenerateVideoEvent::kRequeued:
      // The lost attempt's bytes are void; the next one starts at 0.
      if (fd_ >= 0 && ftruncate(fd_, 0) != 0) {
        return Errno("cannot truncate", absl::StrCat(output_, ".part"));
      }
      next_offset_ = 0;
      state_ = ProgressState();
      state_.phase = Phase::kQueued;
      break;
    case pb::GenerateVideoEvent::kCompleted:
      completed_ = true;
      result_ = event.completed();
      state_.phase = Phase::kDone;
      state_.eta_seconds = 0;
      state_.frames_done = state_.frames_total = result_.frames();
      break;
    default:
      break;
  }
  if (progress_ != nullptr) progress_->Update(state_);
  return absl::OkStatus();
}

FollowOutcome JobFollower::Follow(
    grpc::ClientReaderInterface<pb::GenerateVideoEvent>& reader,
    grpc::ClientContext& context) {
  FollowOutcome outcome;
  pb::GenerateVideoEvent event;
  while (reader.Read(&event)) {
    outcome.local = Consume(event);
    if (!outcome.local.ok()) {
      context.TryCancel();
      break;
    }
  }
  outcome.rpc = reader.Finish();
  if (!outcome.ok() && progress_ != nullptr) progress_->Finish();
  return outcome;
}

absl::Status JobFollower::Finish() {
  if (progress_ != nullptr) progress_->Finish();
  if (!completed_) {
    return absl::FailedPreconditionError("the job did not complete");
  }
  if (result_.size_bytes() > 0 && next_offset_ != result_.size_bytes()) {
    return absl::DataLossError(
        absl::StrCat("received ", next_offset_, " bytes of a ",
                     result_.size_bytes(), "-byte video"));
  }
  if (fd_ < 0) return absl::OkStatus();
  const std::string part = absl::StrCat(output_, ".part");
  if (fsync(fd_) != 0) return Errno("cannot sync", part);
  close(fd_);
  fd_ = -1;
  if (std::rename(part.c_str(), output_.c_str()) != 0) {
    return Errno("cannot rename to", output_);
  }
  return absl::OkStatus();
}

}  // namespace lvs::client

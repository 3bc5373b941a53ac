// The long calls of lvs-gateway: video content (Range reads of the bytes made
// so far, or the live fMP4 stream) and the Server-Sent Events of a job, both
// read from WatchVideoJob.
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gateway/gateway.h"
#include "gateway/video_json.h"
#include "grpcpp/grpcpp.h"

namespace lvs::gateway {
namespace {

namespace v1 = lumina::video::v1;
using nlohmann::json;

// One WatchVideoJob call, read by one thread at a time.
struct WatchCall {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateVideoEvent>> reader;
  ~WatchCall() {
    if (reader) {
      context.TryCancel();
      reader->Finish();
    }
  }
};

std::unique_ptr<WatchCall> StartWatch(v1::VideoService::Stub& stub,
                                      const std::string& name,
                                      const std::string& key, int64_t offset) {
  auto call = std::make_unique<WatchCall>();
  rpc::PrepareClientContext(&call->context, absl::ZeroDuration(), key);
  v1::WatchVideoJobRequest request;
  request.set_name(name);
  request.set_from_offset(offset);
  call->reader = stub.WatchVideoJob(&call->context, request);
  return call;
}

// A WatchVideoJob call read on its own thread, so the connection's thread
// can wake up while no event comes: to send a keep-alive, to notice a client
// that went away (a failed write) or a gateway that stops, and then cancel
// the call.
class WatchPump {
 public:
  WatchPump(v1::VideoService::Stub& stub, const std::string& name,
            const std::string& key, int64_t offset)
      : call_(StartWatch(stub, name, key, offset)) {
    thread_ = std::thread([this] {
      v1::GenerateVideoEvent event;
      while (call_->reader->Read(&event)) {
        std::lock_guard<std::mutex> lock(mu_);
        events_.push_back(std::move(event));
        cv_.notify_one();
      }
      grpc::Status status = call_->reader->Finish();
      call_->reader.reset();
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(status);
      ended_ = true;
      cv_.notify_one();
    });
  }
  ~WatchPump() {
    call_->context.TryCancel();
    thread_.join();
  }

  enum class Next { kEvent, kIdle, kEnded };
  // Waits up to `wait` for the next event.
  Next Wait(absl::Duration wait, v1::GenerateVideoEvent* event) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(wait),
                 [&] { return ended_ || !events_.empty(); });
    if (!events_.empty()) {
      *event = std::move(events_.front());
      events_.pop_front();
      return Next::kEvent;
    }
    return ended_ ? Next::kEnded : Next::kIdle;
  }
  // The call's status once Wait() returned kEnded.
  grpc::Status status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  std::unique_ptr<WatchCall> call_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::GenerateVideoEvent> events_;  // guarded by mu_
  grpc::Status status_;                        // guarded by mu_
  bool ended_ = false;                         // guarded by mu_
  std::thread thread_;
};

// How often an idle stream wakes up (SSE keep-alive, stop, gone client).
constexpr absl::Duration kIdleWake = absl::Seconds(1);
constexpr int kKeepAliveWakes = 15;

// Sequential reads of a job's MP4 from WatchVideoJob for a content provider.
struct ContentReader {
  v1::VideoService::Stub* stub;
  std::string name, key;
  std::unique_ptr<WatchCall> call;
  int64_t next = -1;   // offset of buffer[0]
  std::string buffer;  // bytes read and not yet written

  // Writes up to `length` bytes from `offset`; false when the call ended.
  bool Write(size_t offset, size_t length, httplib::DataSink& sink) {
    if (call == nullptr || static_cast<int64_t>(offset) != next) {
      call = StartWatch(*stub, name, key, static_cast<int64_t>(offset));
      next = static_cast<int64_t>(offset);
      buffer.clear();
    }
    v1::GenerateVideoEvent event;
    while (buffer.empty()) {
      if (!call->reader->Read(&event)) return false;
      if (event.has_requeued()) return false;  // these bytes are void now
      if (!event.has_chunk()) continue;
      const v1::VideoChunk& c = event.chunk();
      if (c.offset() + static_cast<int64_t>(c.data().size()) <= next) continue;
      if (c.offset() > next) return false;  // a gap
      buffer = c.data().substr(static_cast<size_t>(next - c.offset()));
    }
    const size_t n = std::min(length, buffer.size());
    if (!sink.write(buffer.data(), n)) return false;
    buffer.erase(0, n);
    next += static_cast<int64_t>(n);
    return true;
  }
};

std::string SseFrame(const std::string& event, const json& data, int64_t id) {
  std::string out;
  if (id > 0) absl::StrAppend(&out, "id: ", id, "\n");
  absl::StrAppend(&out, "event: ", event, "\ndata: ", data.dump(), "\n\n");
  return out;
}

bool IsTrue(const std::string& v) {
  return v == "1" || v == "true" || v == "yes";
}

}  // namespace

void Gateway::Content(const httplib::Request& req, httplib::Response& res) {
  std::string key;
  if (!ApiKey(req, res, &key)) return;
  const std::string variant = req.get_param_value("variant");
  if (!variant.empty() && variant != "video") {
    res.status = 400;
    res.set_content(MakeError(400, "variant: lvs has only the video", "variant",
                              "invalid_parameter")
                        .body.dump(),
                    "application/json");
    return;
  }
  const std::string name = absl::StrCat("jobs/", req.matches[1].str());
  v1::VideoJob job;
  if (!GetJob(name, key, res, &job)) return;
  auto write_error = [&](const HttpError& e) {
    if (!e.retry_after.empty()) res.set_header("Retry-After", e.retry_after);
    res.status = e.status;
    res.set_content(e.body.dump(), "application/json");
  };
  if (IsTrue(req.get_param_value("follow"))) {
    if (job.state() != v1::QUEUED && job.state() != v1::RUNNING &&
        job.state() != v1::SUCCEEDED) {
      return write_error(MakeError(409, "the video failed or was cancelled", "",
                                   "video_not_available"));
    }
    return FollowContent(name, key, res);
  }
  const int64_t size = job.state() == v1::SUCCEEDED ? job.result().size_bytes()
                                                    : job.progress().bytes();
  if (size <= 0) {
    return write_error(MakeError(409,
                                 absl::StrCat("video ", req.matches[1].str(),
                                              " has no content yet (status ",
                                              VideoStatus(job.state()), ")"),
                                 "", "video_not_ready"));
  }
  // httplib cuts satisfiable ranges; refuse the others here (416).
  if (req.has_header("Range")) {
    httplib::Ranges ranges;
    bool satisfiable = httplib::detail::parse_range_header(
        req.get_header_value("Range"), ranges);
    for (const auto& [first, last] : ranges) {
      if (first >= size || (first < 0 && last <= 0) ||
          (last >= 0 && last < first)) {
        satisfiable = false;
      }
    }
    if (!satisfiable) {
      res.set_header("Content-Range", absl::StrCat("bytes */", size));
      return write_error(MakeError(
          416, absl::StrCat("Range: outside the ", size, " bytes of the video"),
          "Range", "range_not_satisfiable"));
    }
  }
  auto reader = std::make_shared<ContentReader>();
  reader->stub = stub_.get();
  reader->name = name;
  reader->key = key;
  res.set_header("Accept-Ranges", "bytes");
  res.set_header("Cache-Control", job.state() == v1::SUCCEEDED
                                      ? "private, max-age=3600"
                                      : "no-store");
  res.set_header(
      "Content-Disposition",
      absl::StrCat("inline; filename=\"", req.matches[1].str(), ".mp4\""));
  res.set_content_provider(
      static_cast<size_t>(size), "video/mp4",
      [reader](size_t offset, size_t length, httplib::DataSink& sink) {
        return reader->Write(offset, length, sink);
      });
}

void Gateway::FollowContent(const std::string& name, const std::string& key,
                            httplib::Response& res) {
  if (!AcquireStream(res)) return;
  res.set_header("Cache-Control", "no-store");
  v1::VideoService::Stub* stub = stub_.get();
  res.set_chunked_content_provider(
      "video/mp4",
      [this, stub, name, key](size_t, httplib::DataSink& sink) {
        WatchPump pump(*stub, name, key, 0);
        v1::GenerateVideoEvent event;
        int64_t next = 0;
        while (!stopping_) {
          const WatchPump::Next n = pump.Wait(kIdleWake, &event);
          if (n == WatchPump::Next::kEnded) return false;
          if (n == WatchPump::Next::kIdle) {
            if (!sink.is_writable()) return false;
            continue;
          }
          if (event.has_requeued()) return false;  // the bytes are void
          if (event.has_completed()) {
            sink.done();
            return true;
          }
          if (!event.has_chunk() || event.chunk().offset() != next) continue;
          const std::string& data = event.chunk().data();
          if (!sink.write(data.data(), data.size())) return false;
          next += static_cast<int64_t>(data.size());
        }
        return false;
      },
      [this](bool) { ReleaseStream(); });
}

void Gateway::Events(const httplib::Request& req, httplib::Response& res) {
  std::string key;
  if (!ApiKey(req, res, &key)) return;
  const std::string name = absl::StrCat("jobs/", req.matches[1].str());
  v1::VideoJob job;
  if (!GetJob(name, key, res, &job)) return;
  int64_t last = 0;
  std::string last_id = req.get_header_value("Last-Event-ID");
  if (last_id.empty()) last_id = req.get_param_value("last_event_id");
  if (!last_id.empty() && !absl::SimpleAtoi(last_id, &last)) {
    res.status = 400;
    res.set_content(
        MakeError(400, "Last-Event-ID: expected an event sequence number",
                  "Last-Event-ID", "invalid_parameter")
            .body.dump(),
        "application/json");
    return;
  }
  // Chunks are not replayed, events only: the offset is the end of a
  // finished video (the server refuses one past it), else past any video.
  const int64_t skip_chunks = job.state() == v1::SUCCEEDED
                                  ? job.result().size_bytes()
                                  : std::numeric_limits<int64_t>::max() / 2;
  if (!AcquireStream(res)) return;
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");
  v1::VideoService::Stub* stub = stub_.get();
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, stub, name, key, last, skip_chunks](size_t,
                                                 httplib::DataSink& sink) {
        WatchPump pump(*stub, name, key, skip_chunks);
        const std::string hello = "retry: 2000\n\n";
        if (!sink.write(hello.data(), hello.size())) return false;
        v1::GenerateVideoEvent event;
        int idle = 0;
        bool ended = false;
        while (!stopping_) {
          const WatchPump::Next n = pump.Wait(kIdleWake, &event);
          if (n == WatchPump::Next::kEnded) {
            ended = true;
            break;
          }
          if (n == WatchPump::Next::kIdle) {
            if (++idle % kKeepAliveWakes == 0) {
              const std::string ping = ": keep-alive\n\n";
              if (!sink.write(ping.data(), ping.size())) return false;
            }
            continue;
          }
          if (event.has_chunk()) continue;
          if (event.sequence() <= last && !event.has_queued()) continue;
          if (event.has_queued() && event.sequence() < last) continue;
          auto [type, data] = EventPayload(event);
          const std::string frame = SseFrame(type, data, event.sequence());
          if (!sink.write(frame.data(), frame.size())) return false;
          if (event.has_completed()) break;
        }
        if (!ended) {
          sink.done();
          return true;
        }
        const grpc::Status end = pump.status();
        if (!end.ok()) {
          const bool cancelled =
              end.error_code() == grpc::StatusCode::CANCELLED;
          json data = {{"video_id", VideoId(name)},
                       {"error", ErrorFromGrpc(end).body["error"]}};
          const std::string frame =
              SseFrame(cancelled ? "cancelled" : "failed", data, 0);
          sink.write(frame.data(), frame.size());
        }
        sink.done();
        return true;
      },
      [this](bool) { ReleaseStream(); });
}

}  // namespace lvs::gateway

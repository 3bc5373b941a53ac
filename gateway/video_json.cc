#include "gateway/video_json.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "rpc/channel.h"

namespace lvs::gateway {
namespace {

namespace v1 = lumina::video::v1;
using nlohmann::json;

json UnixSeconds(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return nullptr;
  return t.seconds();
}

// "4" for 64 frames at 16 fps, "4.5" for 72; empty when unknown.
std::string Seconds(int frames, int fps) {
  if (frames <= 0 || fps <= 0) return "";
  return absl::StrFormat("%g", static_cast<double>(frames) / fps);
}

std::string Size(int width, int height) {
  if (width <= 0 || height <= 0) return "";
  return absl::StrCat(width, "x", height);
}

const std::set<std::string>& KnownParams() {
  static const auto* known = new std::set<std::string>{
      "prompt",          "model",    "seconds",   "size",
      "negative_prompt", "seed",     "fps",       "frames",
      "width",           "height",   "steps",     "sample_config",
      "cache_threshold", "priority", "precision", "labels"};
  return *known;
}

}  // namespace

std::string VideoId(const std::string& job_name) {
  const size_t slash = job_name.rfind('/');
  return slash == std::string::npos ? job_name : job_name.substr(slash + 1);
}

std::string VideoStatus(v1::JobState state) {
  switch (state) {
    case v1::QUEUED:
      return "queued";
    case v1::RUNNING:
      return "in_progress";
    case v1::SUCCEEDED:
      return "completed";
    case v1::FAILED:
      return "failed";
    case v1::CANCELLED:
      return "cancelled";
    default:
      return "queued";
  }
}

int VideoProgress(const v1::VideoJob& job) {
  if (job.state() == v1::SUCCEEDED) return 100;
  const v1::VideoJobProgress& p = job.progress();
  double done = 0;
  if (p.total_steps() > 0) {
    done += 90.0 * std::clamp(p.step(), 0, p.total_steps()) / p.total_steps();
  }
  if (p.frames_total() > 0) {
    done += 10.0 * std::clamp(p.frames_done(), 0, p.frames_total()) /
            p.frames_total();
  }
  return std::clamp(static_cast<int>(std::floor(done)), 0, 99);
}

json VideoObject(const v1::VideoJob& job) {
  const v1::GenerateVideoRequest& r = job.request();
  const bool done = job.state() == v1::SUCCEEDED;
  const v1::Completed& c = job.result();
  json v = {
      {"id", VideoId(job.name())},
      {"object", "video"},
      {"status", VideoStatus(job.state())},
      {"progress", VideoProgress(job)},
      {"created_at", UnixSeconds(job.create_time())},
      {"completed_at", UnixSeconds(job.end_time())},
      {"expires_at", UnixSeconds(job.expire_time())},
      {"model", r.model().empty() ? "lumina-video" : r.model()},
      {"prompt", r.prompt()},
      {"seconds",
       done ? Seconds(c.frames(), c.fps()) : Seconds(r.frames(), r.fps())},
      {"size",
       done ? Size(c.width(), c.height()) : Size(r.width(), r.height())},
      {"error", nullptr},
      {"remixed_from_video_id", nullptr},
  };
  json lvs = {{"job", job.name()},
              {"request_id", job.request_id()},
              {"attempts", job.attempts()},
              {"worker", job.worker()},
              {"queue_position", job.queue_position()},
              {"step", job.progress().step()},
              {"total_steps", job.progress().total_steps()},
              {"frames_done", job.progress().frames_done()},
              {"frames_total", job.progress().frames_total()},
              {"bytes", job.progress().bytes()}};
  if (done) {
    lvs["frames"] = c.frames();
    lvs["fps"] = c.fps();
    lvs["seed"] = c.seed();
    lvs["size_bytes"] = c.size_bytes();
  }
  v["lvs"] = lvs;
  if (job.has_error() && job.error().code() != 0) {
    v["error"] = {
        {"code", absl::AsciiStrToLower(rpc::StatusCodeName(
                     static_cast<grpc::StatusCode>(job.error().code())))},
        {"message", job.error().message()}};
  }
  return v;
}

absl::StatusOr<Params> ParamsFromJson(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("the body is not a JSON object");
  }
  Params params;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const json& v = it.value();
    if (v.is_null()) continue;
    if (v.is_string()) {
      params[it.key()] = v.get<std::string>();
    } else if (v.is_number() || v.is_boolean()) {
      params[it.key()] = v.dump();
    } else if (it.key() == "sample_config" || it.key() == "labels") {
      params[it.key()] = v.dump();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(it.key(), ": expected a string or a number"));
    }
  }
  return params;
}

absl::StatusOr<v1::GenerateVideoRequest> RequestFromParams(const Params& params,
                                                           int default_fps,
                                                           ParamError* error) {
  auto fail = [&](const std::string& param, const std::string& message) {
    error->param = param;
    error->message = absl::StrCat(param, ": ", message);
    return absl::InvalidArgumentError(error->message);
  };
  for (const auto& [name, value] : params) {
    if (name == "input_reference") {
      return fail(name, "image-to-video is not supported by lvs");
    }
    if (!KnownParams().count(name)) {
      return fail(name, absl::StrCat("unknown parameter (known: ",
                                     absl::StrJoin(KnownParams(), ", "), ")"));
    }
  }
  auto get = [&](const std::string& name) -> const std::string* {
    auto it = params.find(name);
    return it == params.end() ? nullptr : &it->second;
  };
  v1::GenerateVideoRequest r;
  if (const std::string* p = get("prompt")) r.set_prompt(*p);
  if (const std::string* p = get("negative_prompt")) r.set_negative_prompt(*p);
  if (const std::string* p = get("model")) r.set_model(*p);
  struct IntField {
    const char* name;
    void (v1::GenerateVideoRequest::*set)(int32_t);
  };
  for (const IntField& f :
       {IntField{"width", &v1::GenerateVideoRequest::set_width},
        IntField{"height", &v1::GenerateVideoRequest::set_height},
        IntField{"frames", &v1::GenerateVideoRequest::set_frames},
        IntField{"fps", &v1::GenerateVideoRequest::set_fps},
        IntField{"steps", &v1::GenerateVideoRequest::set_steps}}) {
    if (const std::string* p = get(f.name)) {
      int32_t v = 0;
      if (!absl::SimpleAtoi(*p, &v)) return fail(f.name, "expected an integer");
      (r.*f.set)(v);
    }
  }
  if (const std::string* p = get("seed")) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(*p, &v)) return fail("seed", "expected an integer");
    r.set_seed(v);
  }
  if (const std::string* p = get("cache_threshold")) {
    float v = 0;
    if (!absl::SimpleAtof(*p, &v))
      return fail("cache_threshold", "expected a number");
    r.set_cache_threshold(v);
  }
  if (const std::string* p = get("size")) {
    std::vector<std::string> wh = absl::StrSplit(*p, absl::ByAnyChar("xX"));
    int32_t w = 0, h = 0;
    if (wh.size() != 2 || !absl::SimpleAtoi(wh[0], &w) ||
        !absl::SimpleAtoi(wh[1], &h)) {
      return fail("size", "expected WIDTHxHEIGHT in pixels, e.g. 256x160");
    }
    r.set_width(w);
    r.set_height(h);
  }
  if (const std::string* p = get("seconds")) {
    double s = 0;
    if (!absl::SimpleAtod(*p, &s) || !(s > 0) || s > 3600) {
      return fail("seconds", "expected a positive number of seconds");
    }
    if (get("frames") != nullptr) {
      return fail("seconds", "give either seconds or frames, not both");
    }
    if (r.fps() <= 0) r.set_fps(default_fps);
    r.set_frames(static_cast<int32_t>(std::lround(s * r.fps())));
  }
  if (const std::string* p = get("sample_config")) {
    if (!p->empty() && p->front() == '{') {
      auto st =
          google::protobuf::util::JsonStringToMessage(*p, r.mutable_sample());
      if (!st.ok()) {
        return fail("sample_config",
                    absl::StrCat("not a SampleConfig object: ", st.ToString()));
      }
    } else {
      r.set_sample_config(*p);
    }
  }
  if (const std::string* p = get("priority")) {
    const std::string v = absl::AsciiStrToLower(*p);
    if (v == "low")
      r.set_priority(v1::PRIORITY_LOW);
    else if (v == "normal")
      r.set_priority(v1::PRIORITY_NORMAL);
    else if (v == "high")
      r.set_priority(v1::PRIORITY_HIGH);
    else
      return fail("priority", "expected low, normal or high");
  }
  if (const std::string* p = get("precision")) {
    const std::string v = absl::AsciiStrToLower(*p);
    if (v == "bf16")
      r.set_precision(v1::PRECISION_BF16);
    else if (v == "fp32")
      r.set_precision(v1::PRECISION_FP32);
    else
      return fail("precision", "expected bf16 or fp32");
  }
  if (const std::string* p = get("labels")) {
    json j = json::parse(*p, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return fail("labels", "expected an object of strings");
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_string())
        return fail("labels", "values must be strings");
      (*r.mutable_labels())[it.key()] = it.value().get<std::string>();
    }
  }
  return r;
}

HttpError MakeError(int status, const std::string& message,
                    const std::string& param, const std::string& code) {
  std::string type = "api_error";
  if (status == 400 || status == 404 || status == 409 || status == 413 ||
      status == 405 || status == 416) {
    type = "invalid_request_error";
  } else if (status == 401) {
    type = "authentication_error";
  } else if (status == 403) {
    type = "permission_error";
  } else if (status == 429) {
    type = "rate_limit_error";
  } else if (status == 503) {
    type = "service_unavailable_error";
  }
  HttpError e;
  e.status = status;
  e.body = {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", code.empty() ? json(nullptr) : json(code)}}}};
  return e;
}

HttpError ErrorFromGrpc(const grpc::Status& status) {
  int http = 500;
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      http = 400;
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      http = 401;
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      http = 403;
      break;
    case grpc::StatusCode::NOT_FOUND:
      http = 404;
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      http = 409;
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      http = 429;
      break;
    case grpc::StatusCode::UNAVAILABLE:
      http = 503;
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      http = 504;
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      http = 501;
      break;
    case grpc::StatusCode::CANCELLED:
      http = 499;
      break;
    default:
      http = 500;
  }
  const rpc::ErrorDetails d = rpc::DecodeErrorDetails(status);
  std::string param;
  if (!d.field_violations.empty()) {
    const std::string& first = d.field_violations.front();
    param = first.substr(0, first.find(':'));
    // Fields of CreateVideoJobRequest.video are the body's parameters.
    if (param.rfind("video.", 0) == 0) param = param.substr(6);
  }
  std::string message = status.error_message();
  if (!d.field_violations.empty()) {
    absl::StrAppend(&message, " (", absl::StrJoin(d.field_violations, "; "),
                    ")");
  }
  if (!d.quota_violations.empty()) {
    absl::StrAppend(&message, " (", absl::StrJoin(d.quota_violations, "; "),
                    ")");
  }
  const std::string code =
      d.reason.empty() ? rpc::StatusCodeName(status.error_code()) : d.reason;
  HttpError e = MakeError(http, message, param, absl::AsciiStrToLower(code));
  if (d.retry_delay > absl::ZeroDuration()) {
    e.retry_after = absl::StrCat(std::max<int64_t>(
        1, absl::ToInt64Seconds(absl::Ceil(d.retry_delay, absl::Seconds(1)))));
  }
  return e;
}

std::pair<std::string, json> EventPayload(const v1::GenerateVideoEvent& e) {
  json p = {{"video_id", VideoId(e.job())}, {"sequence", e.sequence()}};
  if (e.has_time()) {
    p["time"] =
        static_cast<double>(e.time().seconds()) + e.time().nanos() * 1e-9;
  }
  switch (e.event_case()) {
    case v1::GenerateVideoEvent::kQueued:
      p["position"] = e.queued().position();
      p["ahead"] = e.queued().ahead();
      return {"queued", p};
    case v1::GenerateVideoEvent::kStarted:
      p["worker"] = e.started().worker();
      p["attempt"] = e.started().attempt();
      return {"started", p};
    case v1::GenerateVideoEvent::kTextEncoded:
      p["tokens"] = e.text_encoded().tokens();
      return {"text_encoded", p};
    case v1::GenerateVideoEvent::kStep: {
      const v1::Step& s = e.step();
      p["index"] = s.index();
      p["total"] = s.total();
      p["t"] = s.t();
      p["patch"] = s.patch();
      p["guided"] = s.guided();
      p["it_per_s"] = s.it_per_s();
      p["eta_seconds"] =
          static_cast<double>(s.eta().seconds()) + s.eta().nanos() * 1e-9;
      return {"step", p};
    }
    case v1::GenerateVideoEvent::kDecoded:
      p["frames_done"] = e.decoded().frames_done();
      p["frames_total"] = e.decoded().frames_total();
      return {"decoded", p};
    case v1::GenerateVideoEvent::kChunk:
      p["offset"] = e.chunk().offset();
      p["size"] = e.chunk().data().size();
      return {"chunk", p};
    case v1::GenerateVideoEvent::kCompleted: {
      const v1::Completed& c = e.completed();
      p["frames"] = c.frames();
      p["fps"] = c.fps();
      p["width"] = c.width();
      p["height"] = c.height();
      p["seed"] = c.seed();
      p["size_bytes"] = c.size_bytes();
      p["seconds"] = Seconds(c.frames(), c.fps());
      return {"completed", p};
    }
    case v1::GenerateVideoEvent::kRequeued:
      p["attempt"] = e.requeued().attempt();
      p["reason"] = e.requeued().reason();
      return {"requeued", p};
    default:
      return {"unknown", p};
  }
}

}  // namespace lvs::gateway

// The JSON mapping of lvs-gateway (gateway/video_json.h): create parameters
// to GenerateVideoRequest, VideoJob to the video object, gRPC statuses with
// rich-error details to HTTP errors.
#include "gateway/video_json.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace lvs::gateway {
namespace {

namespace v1 = lumina::video::v1;

TEST(RequestFromParamsTest, ReadsEveryField) {
  ParamError err;
  auto r = RequestFromParams({{"prompt", "a fox"},
                              {"size", "256x160"},
                              {"seconds", "2"},
                              {"fps", "8"},
                              {"steps", "30"},
                              {"seed", "9007199254740993"},
                              {"cache_threshold", "0.05"},
                              {"negative_prompt", "blur"},
                              {"model", "lumina"},
                              {"priority", "high"},
                              {"precision", "fp32"},
                              {"labels", R"({"team":"a"})"},
                              {"sample_config", "f24F96R960"}},
                             16, &err);
  ASSERT_TRUE(r.ok()) << err.message;
  EXPECT_EQ(r->width(), 256);
  EXPECT_EQ(r->height(), 160);
  EXPECT_EQ(r->fps(), 8);
  EXPECT_EQ(r->frames(), 16);
  EXPECT_EQ(r->steps(), 30);
  EXPECT_EQ(r->seed(), 9007199254740993);
  EXPECT_FLOAT_EQ(r->cache_threshold(), 0.05f);
  EXPECT_EQ(r->priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(r->precision(), v1::PRECISION_FP32);
  EXPECT_EQ(r->labels().at("team"), "a");
  EXPECT_EQ(r->sample_config(), "f24F96R960");
}

TEST(RequestFromParamsTest, LeavesAbsentFieldsZeroForTheServer) {
  ParamError err;
  auto r = RequestFromParams({{"prompt", "x"}}, 16, &err);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->width() + r->height() + r->frames() + r->fps() + r->steps(), 0);
  // seconds without fps uses the default frame rate.
  r = RequestFromParams({{"prompt", "x"}, {"seconds", "1.5"}}, 16, &err);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->fps(), 16);
  EXPECT_EQ(r->frames(), 24);
}

TEST(RequestFromParamsTest, SampleConfigObject) {
  ParamError err;
  auto r = RequestFromParams(
      {{"prompt", "x"},
       {"sample_config",
        R"({"timeShift": 6, "cfgScale": {"initial": 4}, "patch": {"initial": "1x2"}})"}},
      16, &err);
  ASSERT_TRUE(r.ok()) << err.message;
  EXPECT_FLOAT_EQ(r->sample().time_shift(), 6);
  EXPECT_FLOAT_EQ(r->sample().cfg_scale().initial(), 4);
  EXPECT_EQ(r->sample().patch().initial(), "1x2");
}

TEST(RequestFromParamsTest, NamesTheBadParameter) {
  const std::vector<std::pair<Params, std::string>> cases = {
      {{{"size", "256"}}, "size"},
      {{{"size", "ax160"}}, "size"},
      {{{"seconds", "-1"}}, "seconds"},
      {{{"seconds", "1"}, {"frames", "8"}}, "seconds"},
      {{{"steps", "1.5"}}, "steps"},
      {{{"priority", "urgent"}}, "priority"},
      {{{"colour", "red"}}, "colour"},
      {{{"input_reference", "x"}}, "input_reference"},
      {{{"sample_config", "{\"nope\": 1}"}}, "sample_config"},
  };
  for (const auto& [params, param] : cases) {
    ParamError err;
    auto r = RequestFromParams(params, 16, &err);
    EXPECT_FALSE(r.ok()) << param;
    EXPECT_EQ(err.param, param);
    EXPECT_NE(err.message.find(param), std::string::npos) << err.message;
  }
}

TEST(ParamsFromJsonTest, ScalarsAndObjects) {
  auto p = ParamsFromJson(
      R"({"prompt":"x","seed":3,"fps":null,"labels":{"a":"b"}})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at("seed"), "3");
  EXPECT_EQ(p->count("fps"), 0u);
  EXPECT_EQ(p->at("labels"), R"({"a":"b"})");
  EXPECT_FALSE(ParamsFromJson("[1]").ok());
  EXPECT_FALSE(ParamsFromJson("{").ok());
  EXPECT_FALSE(ParamsFromJson(R"({"prompt":["x"]})").ok());
}

grpc::Status RichStatus(grpc::StatusCode code, const std::string& message,
                        const google::protobuf::Message& detail) {
  google::rpc::Status s;
  s.set_code(code);
  s.set_message(message);
  s.add_details()->PackFrom(detail);
  return grpc::Status(code, message, s.SerializeAsString());
}

TEST(ErrorFromGrpcTest, BadRequestNamesTheFirstField) {
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field("video.width");
  v->set_description("must be a multiple of 32");
  v = bad.add_field_violations();
  v->set_field("video.frames");
  v->set_description("too many");
  const HttpError e = ErrorFromGrpc(
      RichStatus(grpc::StatusCode::INVALID_ARGUMENT, "invalid request", bad));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.body["error"]["param"], "width");
  EXPECT_EQ(e.body["error"]["type"], "invalid_request_error");
  const std::string message = e.body["error"]["message"];
  EXPECT_NE(message.find("video.frames: too many"), std::string::npos)
      << message;
}

TEST(ErrorFromGrpcTest, StatusCodesAndRetryAfter) {
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(2);
  retry.mutable_retry_delay()->set_nanos(500000000);
  HttpError e = ErrorFromGrpc(
      RichStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full", retry));
  EXPECT_EQ(e.status, 429);
  EXPECT_EQ(e.retry_after, "3");
  EXPECT_EQ(e.body["error"]["type"], "rate_limit_error");
  EXPECT_EQ(
      ErrorFromGrpc(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "")).status,
      401);
  EXPECT_EQ(ErrorFromGrpc(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, ""))
                .status,
            403);
  EXPECT_EQ(ErrorFromGrpc(grpc::Status(grpc::StatusCode::NOT_FOUND, "")).status,
            404);
  EXPECT_EQ(
      ErrorFromGrpc(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, ""))
          .status,
      409);
  EXPECT_EQ(
      ErrorFromGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "")).status,
      503);
  EXPECT_EQ(ErrorFromGrpc(grpc::Status(grpc::StatusCode::INTERNAL, "")).status,
            500);
  EXPECT_EQ(ErrorFromGrpc(grpc::Status(grpc::StatusCode::NOT_FOUND, ""))
                .body["error"]["code"],
            "not_found");
}

TEST(VideoObjectTest, StatusProgressAndResult) {
  v1::VideoJob job;
  job.set_name("jobs/abc");
  job.set_state(v1::RUNNING);
  job.mutable_create_time()->set_seconds(1700000000);
  job.mutable_request()->set_frames(48);
  job.mutable_request()->set_fps(16);
  job.mutable_progress()->set_step(5);
  job.mutable_progress()->set_total_steps(10);
  auto v = VideoObject(job);
  EXPECT_EQ(v["id"], "abc");
  EXPECT_EQ(v["object"], "video");
  EXPECT_EQ(v["status"], "in_progress");
  EXPECT_EQ(v["progress"], 45);
  EXPECT_EQ(v["seconds"], "3");
  EXPECT_EQ(v["size"], "");
  EXPECT_EQ(v["created_at"], 1700000000);
  EXPECT_TRUE(v["completed_at"].is_null());
  job.mutable_progress()->set_step(10);
  job.mutable_progress()->set_frames_done(24);
  job.mutable_progress()->set_frames_total(48);
  EXPECT_EQ(VideoObject(job)["progress"], 95);
  job.set_state(v1::SUCCEEDED);
  job.mutable_result()->set_frames(49);
  job.mutable_result()->set_fps(16);
  job.mutable_result()->set_width(256);
  job.mutable_result()->set_height(160);
  v = VideoObject(job);
  EXPECT_EQ(v["status"], "completed");
  EXPECT_EQ(v["progress"], 100);
  EXPECT_EQ(v["seconds"], "3.0625");
  EXPECT_EQ(v["size"], "256x160");
  job.set_state(v1::CANCELLED);
  job.mutable_error()->set_code(1);
  job.mutable_error()->set_message("cancelled by the client");
  v = VideoObject(job);
  EXPECT_EQ(v["status"], "cancelled");
  EXPECT_EQ(v["error"]["code"], "cancelled");
}

}  // namespace
}  // namespace lvs::gateway

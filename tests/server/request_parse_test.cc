// Requests whose string fields are not UTF-8: protobuf cannot parse them,
// and the callback API used to answer UNIMPLEMENTED with no message. Raw
// bytes go to the running server through a generic stub; the answer is
// INVALID_ARGUMENT naming the field.
#include "server/request_parse.h"

#include <gtest/gtest.h>

#include <future>
#include <string>

#include "common/utf8.h"
#include "server/rich_status.h"
#include "tests/server/server_fixture.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;
using testing::kClientKey;

// A length-delimited field `number` holding `body` (short bodies only).
std::string Field(int number, const std::string& body) {
  std::string out;
  out.push_back(static_cast<char>(number << 3 | 2));
  out.push_back(static_cast<char>(body.size()));
  return out + body;
}

// A varint field `number` holding `value` (< 128).
std::string Varint(int number, int value) {
  return {static_cast<char>(number << 3), static_cast<char>(value)};
}

// GenerateVideoRequest{prompt, width 64, height 64, frames 9}.
std::string VideoRequest(const std::string& prompt) {
  v1::GenerateVideoRequest r;
  r.set_width(64);
  r.set_height(64);
  r.set_frames(9);
  return Field(v1::GenerateVideoRequest::kPromptFieldNumber, prompt) +
         r.SerializeAsString();
}

TEST(Utf8Test, FollowsRfc3629) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("a red fox"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9t\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\xa6\x8a"));
  EXPECT_FALSE(IsValidUtf8("a \xff fox"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // Truncated.
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // Overlong '/'.
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // Overlong, 3 bytes.
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // Surrogate U+D800.
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // U+110000.
}

TEST(RequestParseTest, NamesTheNonUtf8Field) {
  const auto* type = v1::CreateVideoJobRequest::descriptor();
  EXPECT_EQ(FirstNonUtf8Field(Field(1, VideoRequest("a \xff fox")), type),
            "video.prompt");
  EXPECT_EQ(FirstNonUtf8Field(Field(1, VideoRequest("a fox")), type), "");
  EXPECT_EQ(FirstNonUtf8Field(Field(2, "\xfe"), type), "request_id");
  // A map's key or value is reported as the map.
  const int labels = v1::GenerateVideoRequest::kLabelsFieldNumber;
  const std::string entry = Field(1, "team") + Field(2, "\xc0\xaf");
  EXPECT_EQ(FirstNonUtf8Field(Field(1, Field(labels, entry)), type),
            "video.labels");
  // Not wire format at all.
  EXPECT_EQ(FirstNonUtf8Field("\x0a\x7f", type), "");
}

TEST(RequestParseTest, ParsesValidBytesAndExplainsOthers) {
  v1::CreateVideoJobRequest in;
  in.mutable_video()->set_prompt("a red fox");
  in.set_request_id("k");
  v1::CreateVideoJobRequest out;
  ASSERT_TRUE(ParseRequest(ToByteBuffer(in), &out).ok());
  EXPECT_EQ(out.video().prompt(), "a red fox");
  EXPECT_EQ(out.request_id(), "k");
  grpc::Slice junk(std::string("\x0a\x7f"));
  grpc::Status s = ParseRequest(grpc::ByteBuffer(&junk, 1), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("lumina.video.v1.CreateVideoJobRequest"),
            std::string::npos)
      << s.error_message();
}

class RawRequestTest : public testing::ServerFixture {
 protected:
  // Sends `bytes` to `method` of the VideoService as they are.
  grpc::Status Call(const std::string& method, const std::string& bytes) {
    grpc::GenericStub stub(channel_);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer in(&slice, 1), out;
    auto ctx = Ctx();
    std::promise<grpc::Status> done;
    stub.UnaryCall(ctx.get(), "/lumina.video.v1.VideoService/" + method,
                   grpc::StubOptions(), &in, &out,
                   [&](grpc::Status s) { done.set_value(s); });
    return done.get_future().get();
  }
};

TEST_F(RawRequestTest, NonUtf8PromptIsInvalidArgumentNamingTheField) {
  StartServer();
  grpc::Status s = Call("CreateVideoJob", Field(1, VideoRequest("a \xff fox")));
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_code() << " " << s.error_message();
  EXPECT_NE(s.error_message().find("video.prompt"), std::string::npos)
      << s.error_message();
  google::rpc::BadRequest bad;
  const google::rpc::Status details = DetailsOf(s);
  for (const auto& any : details.details()) any.UnpackTo(&bad);
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "video.prompt");
  // Bytes that are no message at all are INVALID_ARGUMENT too.
  s = Call("CreateVideoJob", "\x0a\x7f");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_message();
  // The same bytes with a valid prompt create the job.
  s = Call("CreateVideoJob", Field(1, VideoRequest("a red fox")));
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  // Nothing was queued for the refused ones.
  v1::ListVideoJobsRequest list;
  v1::ListVideoJobsResponse jobs;
  ASSERT_TRUE(video_->ListVideoJobs(Ctx().get(), list, &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 1);
}

TEST_F(RawRequestTest, GenerateVideoStreamRefusesNonUtf8NegativePrompt) {
  StartServer();
  // The typed stub sends what it is given (protobuf only logs on
  // serialization); the stream still carries typed events.
  v1::GenerateVideoRequest r = Request();
  r.set_negative_prompt("blurry \xe0\x80\xaf");
  auto ctx = Ctx(kClientKey);
  auto stream = video_->GenerateVideo(ctx.get(), r);
  v1::GenerateVideoEvent e;
  EXPECT_FALSE(stream->Read(&e));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_message();
  EXPECT_NE(s.error_message().find("negative_prompt"), std::string::npos)
      << s.error_message();
  // A valid request streams typed events from the raw method.
  auto ok_ctx = Ctx(kClientKey);
  auto ok = video_->GenerateVideo(ok_ctx.get(), Request());
  ASSERT_TRUE(ok->Read(&e));
  EXPECT_TRUE(e.has_queued());
  EXPECT_FALSE(e.job().empty());
  ok_ctx->TryCancel();
}

}  // namespace
}  // namespace lvs::server

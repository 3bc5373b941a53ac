// Validation (every bad field listed), credentials (API keys, admin key,
// worker token), page tokens and the rich error encoding.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "server/auth.h"
#include "server/call_context.h"
#include "server/rich_status.h"
#include "server/validation.h"
#include "server/video_service.h"
#include "tests/server/test_util.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;

std::set<std::string> Fields(const google::rpc::BadRequest& bad) {
  std::set<std::string> out;
  for (const auto& v : bad.field_violations()) out.insert(v.field());
  return out;
}

v1::GenerateVideoRequest Good() {
  v1::GenerateVideoRequest r;
  r.set_prompt("a cat");
  r.set_width(256);
  r.set_height(128);
  r.set_frames(16);
  return r;
}

TEST(ValidationTest, GoodRequestPasses) {
  EXPECT_EQ(ValidateGenerateRequest(Good(), {}, "").field_violations_size(), 0);
}

TEST(ValidationTest, ListsEveryBadField) {
  AdmissionCaps caps;
  caps.max_prompt_bytes = 8;
  v1::GenerateVideoRequest r;
  r.set_prompt("far too long");
  r.set_negative_prompt("also far too long");
  r.set_width(100);
  r.set_height(4096);
  r.set_frames(0);
  r.set_fps(-1);
  r.set_sample_config("bad name!");
  r.mutable_sample()->mutable_patch()->set_initial("2by2");
  r.mutable_sample()->mutable_cfg_scale()->add_switches()->set_from_t(2);
  r.set_steps(1);
  r.set_seed(-5);
  r.set_precision(static_cast<v1::Precision>(9));
  r.set_priority(static_cast<v1::Priority>(7));
  (*r.mutable_labels())["Bad Key"] = "v";
  r.set_model(std::string(200, 'm'));
  google::rpc::BadRequest bad = ValidateGenerateRequest(r, caps, "video.");
  EXPECT_EQ(
      Fields(bad),
      (std::set<std::string>{
          "video.prompt", "video.negative_prompt", "video.width",
          "video.height", "video.frames", "video.fps", "video.sample_config",
          "video.sample", "video.sample.patch.initial",
          "video.sample.cfg_scale.switches[0].from_t", "video.steps",
          "video.seed", "video.precision", "video.priority",
          "video.labels[Bad Key]", "video.model"}));
  for (const auto& v : bad.field_violations()) {
    EXPECT_FALSE(v.description().empty()) << v.field();
  }
}

TEST(ValidationTest, EmptyRequestNamesRequiredFields) {
  google::rpc::BadRequest bad =
      ValidateGenerateRequest(v1::GenerateVideoRequest(), {}, "");
  EXPECT_EQ(Fields(bad),
            (std::set<std::string>{"prompt", "width", "height", "frames"}));
}

TEST(ValidationTest, TrainingSpecListsEveryBadField) {
  v1::TrainingJobSpec s;
  v1::TrainingTask* t = s.add_tasks();
  t->set_name("v");
  t->set_media_type(v1::MEDIA_TYPE_VIDEO);
  t->set_micro_batch_size(2);
  t->set_global_batch_size(3);
  t->set_image_size(100);
  t->set_patch("3");
  t->set_snr_type("gauss");
  s.set_learning_rate(0);
  google::rpc::BadRequest bad = ValidateTrainingSpec(s, "spec.");
  EXPECT_EQ(Fields(bad),
            (std::set<std::string>{
                "spec.tasks[0].records", "spec.tasks[0].global_batch_size",
                "spec.tasks[0].image_size", "spec.tasks[0].max_frames",
                "spec.tasks[0].snr_type", "spec.tasks[0].task_ratio",
                "spec.tasks[0].patch", "spec.model", "spec.learning_rate",
                "spec.max_steps"}));
}

TEST(ValidationTest, VaeTrainingSpecsTakeTheirOwnFields) {
  v1::TrainingJobSpec s;
  s.set_model_type(v1::MODEL_TYPE_VAE);
  s.add_records("clips/train.jsonl");
  (*s.mutable_vae_config()->mutable_fields())["latent_channels"]
      .set_number_value(8);
  s.set_learning_rate(1e-3);
  s.set_max_steps(10);
  EXPECT_EQ(ValidateTrainingSpec(s, "spec.").field_violations_size(), 0);

  // Every rule of a VAE job, each naming its field.
  v1::TrainingJobSpec bad = s;
  bad.clear_records();
  bad.add_heldout("");
  bad.set_model("NextDiT");
  bad.set_init_from("/ckpt");  // With vae_config: one of the two.
  bad.add_tasks()->set_name("v");
  bad.set_crop_size(36);
  bad.set_max_frames(8);
  bad.set_kl_weight(-1);
  bad.set_data_parallel(2);
  EXPECT_EQ(Fields(ValidateTrainingSpec(bad, "spec.")),
            (std::set<std::string>{
                "spec.records", "spec.heldout[0]", "spec.model",
                "spec.vae_config", "spec.tasks", "spec.crop_size",
                "spec.max_frames", "spec.kl_weight", "spec.data_parallel"}));

  // An unknown model type, and VAE fields on a DiT job.
  bad = s;
  bad.set_model_type(static_cast<v1::ModelType>(7));
  EXPECT_EQ(Fields(ValidateTrainingSpec(bad, "spec.")),
            (std::set<std::string>{"spec.model_type"}));
  bad.set_model_type(v1::MODEL_TYPE_DIT);
  bad.set_model("NextDiT");
  v1::TrainingTask* t = bad.add_tasks();
  t->set_name("v");
  t->set_media_type(v1::MEDIA_TYPE_VIDEO);
  t->add_records("latents/records.jsonl");
  t->set_micro_batch_size(1);
  t->set_global_batch_size(1);
  t->set_image_size(64);
  t->set_max_frames(8);
  t->set_task_ratio(1);
  t->set_patch("1x2");
  EXPECT_EQ(Fields(ValidateTrainingSpec(bad, "spec.")),
            (std::set<std::string>{"spec.records", "spec.vae_config"}));
}

TEST(ValidationTest, RequestIdAndPageSize) {
  google::rpc::BadRequest bad;
  ValidateRequestId("0b6e6f7e-2d1c-4c36-9d2b-1f0e7b3a9c11", "request_id", &bad);
  ValidatePageSize(0, "page_size", &bad);
  EXPECT_EQ(bad.field_violations_size(), 0);
  ValidateRequestId("spaces are bad", "request_id", &bad);
  ValidatePageSize(-1, "page_size", &bad);
  EXPECT_EQ(Fields(bad), (std::set<std::string>{"request_id", "page_size"}));
  EXPECT_EQ(EffectivePageSize(0), 50);
  EXPECT_EQ(EffectivePageSize(5000), 1000);
}

TEST(PageTokenTest, RoundTripsAndRejectsForeignTokens) {
  const std::string token = EncodePageToken(42, 3);
  EXPECT_EQ(*DecodePageToken(token, 3, "page_token"), 42);
  EXPECT_EQ(DecodePageToken(token, 1, "page_token").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodePageToken("garbage", 3, "page_token").ok());
}

class CredentialsTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  static Metadata Bearer(const std::string& key) {
    return {{"authorization", "Bearer " + key}};
  }
  testing::TempDir dir_;
};

TEST_F(CredentialsTest, ApiKeysWithLimits) {
  auto c =
      Credentials::Load(Write("keys", "# clients\nalpha:2:5\nbeta\n"),
                        Write("admin", "root\n"), Write("worker", "tok\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  auto alpha = c->AuthenticateClient(Bearer("alpha"));
  ASSERT_TRUE(alpha.ok());
  EXPECT_EQ(alpha->max_concurrent, 2);
  EXPECT_EQ(alpha->max_queued, 5);
  auto beta = c->AuthenticateClient(Bearer("beta"));
  ASSERT_TRUE(beta.ok());
  EXPECT_NE(alpha->owner, beta->owner);
  EXPECT_EQ(beta->owner.find("beta"), std::string::npos);  // No key in ids.
  EXPECT_EQ(c->AuthenticateClient(Bearer("gamma")).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(c->AuthenticateClient({}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(c->AuthenticateClient(Bearer("alph")).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(CredentialsTest, AdminNeedsTheAdminKey) {
  auto c =
      Credentials::Load(Write("keys", "alpha\n"), Write("admin", "root"), "");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->AuthorizeAdmin(Bearer("root")).ok());
  EXPECT_EQ(c->AuthorizeAdmin(Bearer("alpha")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(c->AuthorizeAdmin(Bearer("wrong")).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(c->AuthorizeAdmin({}).code(), absl::StatusCode::kUnauthenticated);
  // The admin key is not a client key.
  EXPECT_FALSE(c->AuthenticateClient(Bearer("root")).ok());
  // No worker token configured: workers are not checked.
  EXPECT_TRUE(c->AuthenticateWorker({}).ok());
}

// With client keys and no admin key the admin API used to be open to
// anyone; now every admin call is refused until an admin key is configured.
TEST_F(CredentialsTest, ClientKeysWithoutAdminKeyCloseTheAdminApi) {
  auto c = Credentials::Load(Write("keys", "alpha\n"), "", "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->AuthorizeAdmin({}).code(), absl::StatusCode::kPermissionDenied);
  const absl::Status s = c->AuthorizeAdmin(Bearer("alpha"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("--admin-key-file"), std::string::npos);
  // No credential at all: the loopback default stays open.
  auto open = Credentials::Load("", "", "");
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->AuthorizeAdmin({}).ok());
}

TEST_F(CredentialsTest, WorkerToken) {
  auto c = Credentials::Load("", "", Write("worker", "tok"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->AuthenticateWorker({{"x-lvs-worker-token", "tok"}}).ok());
  EXPECT_FALSE(c->AuthenticateWorker({{"x-lvs-worker-token", "tok2"}}).ok());
  EXPECT_FALSE(c->AuthenticateWorker({}).ok());
  // Without API keys clients are anonymous.
  EXPECT_EQ(c->AuthenticateClient({})->owner, "anonymous");
}

TEST_F(CredentialsTest, MalformedFilesAreRejectedWithTheirName) {
  const std::string keys = Write("keys", "alpha:x\n");
  auto c = Credentials::Load(keys, "", "");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(keys), std::string::npos);
  EXPECT_FALSE(Credentials::Load(dir_.path() + "/missing", "", "").ok());
  EXPECT_FALSE(Credentials::Load("", Write("admin", "a\nb\n"), "").ok());
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secretsecret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "sec"));
  EXPECT_FALSE(ConstantTimeEquals("", ""));
}

TEST(RichErrorTest, CarriesOneErrorInfoAndEachDetailOnce) {
  grpc::Status s =
      RichError(grpc::StatusCode::RESOURCE_EXHAUSTED, "full", "QUEUE_FULL")
          .Quota("queue", "at most 3")
          .RetryAfter(absl::Seconds(5))
          .Build();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  google::rpc::Status details = DetailsOf(s);
  EXPECT_EQ(details.code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_EQ(details.details_size(), 3);
  google::rpc::ErrorInfo info;
  google::rpc::QuotaFailure quota;
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "QUEUE_FULL");
  EXPECT_EQ(info.domain(), kErrorDomain);
  ASSERT_TRUE(details.details(1).UnpackTo(&quota));
  EXPECT_EQ(quota.violations(0).subject(), "queue");
  ASSERT_TRUE(details.details(2).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 5);
  grpc::Status nf = ToGrpc(absl::NotFoundError("jobs/x does not exist"));
  ASSERT_TRUE(DetailsOf(nf).details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "NOT_FOUND");
}

}  // namespace
}  // namespace lvs::server

// TLS and mutual TLS on the public and worker ports, with certificates made
// by the openssl command line for the test.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/server/server_fixture.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TlsTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    ASSERT_EQ(std::system("command -v openssl > /dev/null"), 0);
    const std::string d = dir_.path();
    std::ofstream(d + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
    const std::string script = absl::StrCat(
        "cd ", d, " && set -e; ",
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt "
        "-days 1 -subj /CN=lvs-test-ca; ",
        "for n in server client; do ",
        "openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr "
        "-subj /CN=$n; ",
        "openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key "
        "-CAcreateserial -out $n.crt -days 1 -extfile san.ext; done",
        " > openssl.log 2>&1");
    ASSERT_EQ(std::system(script.c_str()), 0) << Slurp(d + "/openssl.log");
    options_.tls_cert = d + "/server.crt";
    options_.tls_key = d + "/server.key";
    options_.tls_client_ca = d + "/ca.crt";
    options_.health_listen.clear();
  }

  std::shared_ptr<grpc::Channel> Channel(int port, bool client_cert) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Slurp(dir_.path() + "/ca.crt");
    if (client_cert) {
      ssl.pem_private_key = Slurp(dir_.path() + "/client.key");
      ssl.pem_cert_chain = Slurp(dir_.path() + "/client.crt");
    }
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                               grpc::SslCredentials(ssl));
  }

  grpc::Status CreateOn(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = v1::VideoService::NewStub(channel);
    v1::CreateVideoJobRequest req;
    *req.mutable_video() = Request();
    v1::VideoJob job;
    auto ctx = Ctx();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(5));
    return stub->CreateVideoJob(ctx.get(), req, &job);
  }
};

TEST_F(TlsTest, MutualTlsAcceptsOnlyCertifiedClients) {
  auto app = ServerApp::Create(options_);
  ASSERT_TRUE(app.ok()) << app.status();
  app_ = *std::move(app);
  ASSERT_TRUE(app_->Start().ok());
  EXPECT_TRUE(CreateOn(Channel(app_->port(), true)).ok());
  EXPECT_FALSE(CreateOn(Channel(app_->port(), false)).ok());
  auto plaintext = grpc::CreateChannel(absl::StrCat("127.0.0.1:", app_->port()),
                                       grpc::InsecureChannelCredentials());
  EXPECT_EQ(CreateOn(plaintext).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(testing::HealthStatus(Channel(app_->worker_port(), true), ""), 1);
}

TEST_F(TlsTest, MissingKeyOrUnreadableFilesAreStartupErrors) {
  ServerOptions bad = options_;
  bad.tls_key.clear();
  EXPECT_EQ(ServerApp::Create(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = options_;
  bad.tls_cert = dir_.path() + "/missing.crt";
  auto app = ServerApp::Create(bad);
  ASSERT_FALSE(app.ok());
  EXPECT_NE(app.status().message().find("missing.crt"), std::string::npos);
}

}  // namespace
}  // namespace lvs::server

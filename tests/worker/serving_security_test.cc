// Security with real processes: API keys, the admin key and the worker
// token across the CLI and lvs-worker; TLS and mutual TLS with certificates
// made by openssl in the test.
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/worker/cluster.h"

namespace lvs::testing {
namespace {

namespace pb = ::lumina::video::v1;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Runs the CLI against `c` with `args`; returns the exit code and output.
int Cli(const Cluster& c, std::vector<std::string> args, std::string* output) {
  args.insert(args.begin(),
              {CliBinary(), absl::StrCat("--server=", c.address())});
  absl::StatusOr<int> rc = RunCommand(args, absl::Seconds(60), output);
  return rc.ok() && WIFEXITED(*rc) ? WEXITSTATUS(*rc) : -1;
}

TEST(ServingSecurityTest, KeysAndWorkerTokenAcrossProcesses) {
  Cluster c("auth");
  WriteFile(c.dir() + "/keys", "client-key-1:4:8\n");
  WriteFile(c.dir() + "/admin", "admin-key-1\n");
  WriteFile(c.dir() + "/token", "worker-token-1\n");
  WriteFile(c.dir() + "/wrong-token", "not-the-token\n");
  c.set_admin_key("admin-key-1");
  c.set_api_key("client-key-1");
  absl::Status st =
      c.StartServer({"--api-keys-file=" + c.dir() + "/keys",
                     "--admin-key-file=" + c.dir() + "/admin",
                     "--worker-token-file=" + c.dir() + "/token"});
  ASSERT_TRUE(st.ok()) << st;

  // A worker with the wrong token never registers; the right one does.
  st = c.LaunchWorker("intruder",
                      {"--worker-token-file=" + c.dir() + "/wrong-token"});
  ASSERT_TRUE(st.ok());
  st = c.StartWorker(
      "w1", {"--fake-step-ms=5", "--worker-token-file=" + c.dir() + "/token"});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_FALSE(c.WorkerListed("intruder", absl::Milliseconds(500)));
  EXPECT_TRUE(absl::StrContains(ReadFile(c.worker("intruder").log_path()),
                                "UNAUTHENTICATED"));

  std::string out;
  const std::string mp4 = c.dir() + "/a.mp4";
  const std::vector<std::string> generate = {
      "generate", "a heron",  "-o", mp4,       "--resolution",
      "64x64",    "--frames", "5",  "--steps", "2"};
  // Missing and wrong keys.
  EXPECT_EQ(Cli(c, generate, &out), 1);
  EXPECT_TRUE(absl::StrContains(out, "UNAUTHENTICATED")) << out;
  std::vector<std::string> args = generate;
  args.push_back("--api-key=wrong");
  EXPECT_EQ(Cli(c, args, &out), 1);
  EXPECT_TRUE(absl::StrContains(out, "UNAUTHENTICATED")) << out;
  // The right key.
  args.back() = "--api-key=client-key-1";
  EXPECT_EQ(Cli(c, args, &out), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "5 frames")) << out;
  // Admin commands need the admin key, not a client key.
  EXPECT_EQ(Cli(c, {"workers", "--api-key=client-key-1"}, &out), 1);
  EXPECT_TRUE(absl::StrContains(out, "PERMISSION_DENIED") ||
              absl::StrContains(out, "UNAUTHENTICATED"))
      << out;
  EXPECT_EQ(Cli(c, {"workers", "--api-key=admin-key-1"}, &out), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "w1")) << out;
  EXPECT_FALSE(absl::StrContains(out, "intruder")) << out;
}

// Makes a CA, a server certificate for 127.0.0.1 and a client certificate.
absl::Status MakeCertificates(const std::string& dir) {
  const std::string ec = "ec:" + dir + "/ec.pem";
  const std::vector<std::vector<std::string>> steps = {
      {"/usr/bin/openssl", "ecparam", "-name", "prime256v1", "-out",
       dir + "/ec.pem"},
      {"/usr/bin/openssl", "req", "-x509", "-newkey", ec, "-nodes", "-keyout",
       dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "1", "-subj",
       "/CN=lvs-test-ca"},
      {"/usr/bin/openssl", "req", "-newkey", ec, "-nodes", "-keyout",
       dir + "/server.key", "-out", dir + "/server.csr", "-subj",
       "/CN=127.0.0.1"},
      {"/usr/bin/openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA",
       dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial", "-out",
       dir + "/server.pem", "-days", "1", "-extfile", dir + "/san.ext"},
      {"/usr/bin/openssl", "req", "-newkey", ec, "-nodes", "-keyout",
       dir + "/client.key", "-out", dir + "/client.csr", "-subj",
       "/CN=lvs-test-client"},
      {"/usr/bin/openssl", "x509", "-req", "-in", dir + "/client.csr", "-CA",
       dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial", "-out",
       dir + "/client.pem", "-days", "1"}};
  WriteFile(dir + "/san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  for (const auto& argv : steps) {
    std::string output;
    absl::StatusOr<int> rc = RunCommand(argv, absl::Seconds(30), &output);
    if (!rc.ok() || *rc != 0) {
      return absl::InternalError(absl::StrCat(argv[1], ": ", output));
    }
  }
  return absl::OkStatus();
}

TEST(ServingSecurityTest, MutualTlsForClientsAndWorkers) {
  Cluster c("mtls");
  absl::Status st = MakeCertificates(c.dir());
  ASSERT_TRUE(st.ok()) << st;
  const std::string d = c.dir();
  rpc::ChannelOptions tls;
  tls.tls_ca = d + "/ca.pem";
  tls.tls_cert = d + "/client.pem";
  tls.tls_key = d + "/client.key";
  c.set_channel_options(tls);
  st = c.StartServer({"--tls-cert=" + d + "/server.pem",
                      "--tls-key=" + d + "/server.key",
                      "--tls-client-ca=" + d + "/ca.pem"});
  ASSERT_TRUE(st.ok()) << st;
  // A plaintext worker cannot join; one with the CA and a client cert can.
  ASSERT_TRUE(c.LaunchWorker("plain").ok());
  st = c.StartWorker("w1", {"--fake-step-ms=5", "--tls-ca=" + d + "/ca.pem",
                            "--tls-cert=" + d + "/client.pem",
                            "--tls-key=" + d + "/client.key"});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_FALSE(c.WorkerListed("plain", absl::Milliseconds(300)));

  std::string out;
  const std::vector<std::string> generate = {"generate",
                                             "a heron",
                                             "-o",
                                             d + "/tls.mp4",
                                             "--resolution",
                                             "64x64",
                                             "--frames",
                                             "5",
                                             "--steps",
                                             "2",
                                             "--tls-ca=" + d + "/ca.pem"};
  // Without a client certificate the handshake fails.
  EXPECT_EQ(Cli(c, generate, &out), 1);
  EXPECT_TRUE(absl::StrContains(out, "UNAVAILABLE")) << out;
  std::vector<std::string> args = generate;
  args.insert(args.end(), {"--tls-cert=" + d + "/client.pem",
                           "--tls-key=" + d + "/client.key"});
  EXPECT_EQ(Cli(c, args, &out), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "5 frames")) << out;
  // A missing certificate file is a usage error naming the flag.
  args.back() = "--tls-key=" + d + "/missing.key";
  EXPECT_EQ(Cli(c, args, &out), 2);
  EXPECT_TRUE(absl::StrContains(out, "--tls-key")) << out;
}

}  // namespace
}  // namespace lvs::testing

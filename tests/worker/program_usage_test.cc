// Every lvs program, as a user runs it: usage errors (unknown flag, bad
// value, missing required flag) exit 2 with a message naming the flag;
// lvs-server warns when it serves without authentication beyond loopback;
// workers and trainers open no port unless --metrics-listen asks for one;
// `lvs workers reload` says when a worker waits behind its running job.
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/worker/cluster.h"
#include "tests/worker/subprocess.h"

namespace lvs::testing {
namespace {

namespace v1 = ::lumina::video::v1;

// A usage error to try and a word its message must contain.
struct Misuse {
  std::vector<std::string> args;
  std::string named;
};

// A program and its usage errors.
struct Program {
  std::string binary;
  std::vector<Misuse> misuses;
};

std::vector<Program> Programs() {
  // An unknown flag, after what the program requires (CLI11 reports a
  // missing required flag first).
  auto unknown = [](std::vector<std::string> required) {
    required.push_back("--no-such-flag=1");
    return Misuse{required, "no-such-flag"};
  };
  std::vector<Program> out = {
      {ServerBinary(),
       {unknown({}),
        {{"--max-queue=many"}, "max-queue"},
        {{"--lease-seconds"}, "lease-seconds"},
        {{"stray"}, "stray"}}},
      {WorkerBinary(),
       {unknown({"--model=fake"}),
        {{"--model=fake", "--fake-step-ms=slow"}, "fake-step-ms"},
        {{"--server=127.0.0.1:1"}, "--model"}}},
      {CliBinary(),
       {unknown({"generate", "a fox"}),
        {{"generate", "a fox", "--frames=many"}, "frames"},
        {{"jobs", "get"}, "job"}}},
  };
#ifdef LVS_GATEWAY_BIN
  out.push_back(
      {LVS_GATEWAY_BIN,
       {unknown({}), {{"--threads=many"}, "threads"}, {{"stray"}, "stray"}}});
#endif
#ifdef LVS_TRAINER_BIN
  out.push_back({LVS_TRAINER_BIN,
                 {unknown({}),
                  {{"--rank=first", "--spec=x.json"}, "rank"},
                  {{"--server=127.0.0.1:1"}, "--name"}}});
  out.push_back(
      {LVS_EXTRACT_BIN,
       {unknown({"--items=a", "--out=b", "--vae=c"}),
        {{"--items=a", "--out=b", "--vae=c", "--dtype=int4"}, "dtype"},
        {{"--out=b", "--vae=c"}, "items"}}});
  out.push_back({LVS_MOTION_BIN,
                 {unknown({"--records=a", "--out=b"}),
                  {{"--records=a", "--out=b", "--method=magic"}, "method"},
                  {{"--out=b"}, "records"}}});
  out.push_back({LVS_CONVERT_BIN,
                 {unknown({"in.pth", "out.safetensors"}),
                  {{"in.pth", "out.safetensors", "extra"}, "extra"},
                  {{}, "IN"}}});
  out.push_back({LVS_SYNTH_BIN,
                 {unknown({"--out=d"}),
                  {{"--out=d", "--fps=0"}, "fps"},
                  {{"--train=4"}, "out"}}});
  out.push_back({LVS_MODEL_BIN,
                 {unknown({"conform", "--golden=g", "--out=o"}),
                  {{"generate", "--prompt=x", "--steps=many"}, "steps"},
                  {{"conform"}, "golden"}}});
#endif
  return out;
}

// Each misuse exits 2 and names the flag; --help exits 0.
TEST(ProgramUsageTest, UsageErrorsExitTwoNamingTheFlag) {
  for (const Program& p : Programs()) {
    const std::string name = p.binary.substr(p.binary.rfind('/') + 1);
    std::string output;
    absl::StatusOr<int> rc =
        RunCommand({p.binary, "--help"}, absl::Seconds(60), &output);
    ASSERT_TRUE(rc.ok()) << rc.status();
    EXPECT_TRUE(WIFEXITED(*rc) && WEXITSTATUS(*rc) == 0) << name << " --help\n"
                                                         << output;
    for (const Misuse& m : p.misuses) {
      std::vector<std::string> argv = {p.binary};
      argv.insert(argv.end(), m.args.begin(), m.args.end());
      const std::string shown = absl::StrJoin(argv, " ");
      rc = RunCommand(argv, absl::Seconds(60), &output);
      ASSERT_TRUE(rc.ok()) << rc.status();
      EXPECT_TRUE(WIFEXITED(*rc) && WEXITSTATUS(*rc) == 2)
          << shown << " -> status " << *rc << "\n"
          << output;
      EXPECT_TRUE(absl::StrContains(output, m.named))
          << shown << " does not name " << m.named << ":\n"
          << output;
    }
  }
}

// TCP ports `pid` listens on (its sockets in LISTEN state).
std::set<int> ListeningPorts(pid_t pid) {
  std::set<std::string> inodes;
  const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
  if (DIR* d = opendir(fd_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      char target[256];
      const ssize_t n = readlink((fd_dir + "/" + e->d_name).c_str(), target,
                                 sizeof(target) - 1);
      if (n <= 0) continue;
      const std::string link(target, n);
      if (absl::StartsWith(link, "socket:[")) {
        inodes.insert(link.substr(8, link.size() - 9));
      }
    }
    closedir(d);
  }
  std::set<int> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // Header.
    while (std::getline(in, line)) {
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() < 10 || f[3] != "0A" || inodes.count(f[9]) == 0) continue;
      int port = 0;
      if (absl::SimpleHexAtoi(f[1].substr(f[1].rfind(':') + 1), &port)) {
        ports.insert(port);
      }
    }
  }
  return ports;
}

// Starts `argv` and waits until the server lists `name`.
std::unique_ptr<Subprocess> StartListed(Cluster& c, const std::string& name,
                                        const std::vector<std::string>& argv) {
  auto p = Subprocess::Start(argv, c.dir() + "/" + name + ".log");
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return nullptr;
  auto out = std::make_unique<Subprocess>(*std::move(p));
  EXPECT_TRUE(c.WorkerListed(name, absl::Seconds(60)))
      << name << ": " << ReadFile(out->log_path());
  return out;
}

// Worker and trainer metrics used to default to fixed ports, so a second
// one on a host failed to start; now no port unless --metrics-listen.
TEST(ProgramUsageTest, WorkerAndTrainerOpenNoPortUnlessAsked) {
  Cluster c("ports");
  ASSERT_TRUE(c.StartServer().ok());
  const std::string server =
      absl::StrCat("--server=127.0.0.1:", c.worker_port());
  std::vector<std::pair<std::string, std::vector<std::string>>> programs = {
      {"w1", {WorkerBinary(), server, "--name=w1", "--model=fake"}}};
#ifdef LVS_TRAINER_BIN
  programs.push_back({"t1",
                      {LVS_TRAINER_BIN, server, "--name=t1",
                       "--work-dir=" + c.dir() + "/t1"}});
#endif
  for (auto& [name, argv] : programs) {
    auto quiet = StartListed(c, name, argv);
    ASSERT_NE(quiet, nullptr);
    EXPECT_EQ(ListeningPorts(quiet->pid()), std::set<int>()) << name;
    quiet.reset();
    // The same program with --metrics-listen listens there, and only there.
    const int port = FreePort();
    std::vector<std::string> metered = argv;
    metered[2] = "--name=" + name + "m";
    metered.push_back(absl::StrCat("--metrics-listen=127.0.0.1:", port));
    auto loud = StartListed(c, name + "m", metered);
    ASSERT_NE(loud, nullptr);
    EXPECT_EQ(ListeningPorts(loud->pid()), std::set<int>{port}) << name;
    EXPECT_EQ(HttpGetPort(port, "/metrics"), 200) << name;
  }
}

// Polls `path` until it contains `text` (or 15 s pass).
bool LogShows(const std::string& path, const std::string& text) {
  for (int i = 0; i < 150; ++i) {
    if (absl::StrContains(ReadFile(path), text)) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

// Serving without authentication on a non-loopback address warns; on
// loopback, or with API keys, it does not.
TEST(ProgramUsageTest, ServerWarnsWithoutAuthBeyondLoopback) {
  Cluster c("auth-warning");  // For its directory only.
  const std::string warning = "serving without authentication";
  {
    std::ofstream(c.dir() + "/keys") << "client-key\n";
    std::ofstream(c.dir() + "/admin") << "admin-key\n";
  }
  struct Case {
    std::string host;
    std::vector<std::string> auth;
    bool warns;
  };
  const std::vector<Case> cases = {{"0.0.0.0", {}, true},
                                   {"127.0.0.1", {}, false},
                                   {"0.0.0.0",
                                    {"--api-keys-file=" + c.dir() + "/keys",
                                     "--admin-key-file=" + c.dir() + "/admin"},
                                    false}};
  int n = 0;
  for (const Case& k : cases) {
    const int port = FreePort();
    std::vector<std::string> argv = {
        ServerBinary(), absl::StrCat("--listen=", k.host, ":", port),
        absl::StrCat("--worker-listen=127.0.0.1:", FreePort()),
        "--metrics-listen=",
        absl::StrCat("--data-dir=", c.dir(), "/data", ++n)};
    argv.insert(argv.end(), k.auth.begin(), k.auth.end());
    auto server =
        Subprocess::Start(argv, absl::StrCat(c.dir(), "/server", n, ".log"));
    ASSERT_TRUE(server.ok()) << server.status();
    // Reached through loopback (0.0.0.0 includes it).
    ASSERT_TRUE(WaitForPort(port, absl::Seconds(30)))
        << ReadFile(server->log_path());
    if (k.warns) {
      EXPECT_TRUE(LogShows(server->log_path(), warning))
          << ReadFile(server->log_path());
      EXPECT_TRUE(
          absl::StrContains(ReadFile(server->log_path()), "--api-keys-file"));
    } else {
      EXPECT_FALSE(absl::StrContains(ReadFile(server->log_path()), warning))
          << k.host << ": " << ReadFile(server->log_path());
    }
  }
}

// `lvs workers reload` used to block silently for minutes behind a running
// job; it says which worker waits for which job.
TEST(ProgramUsageTest, WorkersReloadSaysItWaitsForRunningJob) {
  Cluster c("reload-wait");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("w1", {"--fake-step-ms=100"}).ok());
  absl::StatusOr<v1::VideoJob> job = c.Create(SmallRequest(30));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(
      c.WaitFor(
           job->name(),
           [](const v1::VideoJob& j) { return j.state() == v1::RUNNING; },
           absl::Seconds(30))
          .ok());
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({CliBinary(), "--server=" + c.address(), "workers", "reload",
                  "--checkpoint", c.dir() + "/no-such-checkpoint"},
                 absl::Seconds(60), &output);
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_TRUE(absl::StrContains(
      output, absl::StrCat("w1: waiting for its running job ", job->name())))
      << output;
  // The reload came after the job: it finished first.
  absl::StatusOr<v1::VideoJob> done =
      c.WaitFinished(job->name(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::SUCCEEDED);
}

}  // namespace
}  // namespace lvs::testing

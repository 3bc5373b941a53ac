// rpc::MetricsRegistry on prometheus-cpp: families, label escaping,
// cumulative histogram buckets, collectors, the build info and process
// metrics, and `promtool check metrics` on the whole exposition.
#include "rpc/metrics.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace lvs::rpc {
namespace {

// The value of the sample `series` (exactly as rendered) in `text`.
std::optional<double> Value(const std::string& text,
                            const std::string& series) {
  const std::string key = "\n" + series + " ";
  const size_t at = ("\n" + text).find(key);
  if (at == std::string::npos) return std::nullopt;
  const size_t begin = at + key.size() - 1;
  const std::string rest = text.substr(begin, text.find('\n', begin) - begin);
  double v = 0;
  if (!absl::SimpleAtod(rest, &v)) return std::nullopt;
  return v;
}

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  MetricsRegistry r;
  MetricFamily* c = r.Counter("lvs_things_total", "Things.", {"kind"});
  MetricFamily* g = r.Gauge("lvs_level", "Level.");
  MetricFamily* h = r.Histogram("lvs_wait_seconds", "Wait.", {0.5, 2});
  c->Add({"a\"b\\c\nd"}, 2);
  c->Add({"plain"}, 1.5);
  int collected = 0;
  r.AddCollector([&] { g->Set({}, ++collected); });
  h->Observe({}, 0.1);
  h->Observe({}, 1);
  h->Observe({}, 3);
  const std::string text = r.Render();
  EXPECT_EQ(collected, 1);
  EXPECT_NE(text.find("# HELP lvs_things_total Things.\n"
                      "# TYPE lvs_things_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(Value(text, R"(lvs_things_total{kind="a\"b\\c\nd"})"), 2) << text;
  EXPECT_EQ(Value(text, R"(lvs_things_total{kind="plain"})"), 1.5);
  EXPECT_EQ(Value(text, "lvs_level"), 1);
  EXPECT_EQ(Value(text, R"(lvs_wait_seconds_bucket{le="0.5"})"), 1);
  EXPECT_EQ(Value(text, R"(lvs_wait_seconds_bucket{le="2"})"), 2);
  EXPECT_EQ(Value(text, R"(lvs_wait_seconds_bucket{le="+Inf"})"), 3);
  EXPECT_NEAR(*Value(text, "lvs_wait_seconds_sum"), 4.1, 1e-12);
  EXPECT_EQ(Value(text, "lvs_wait_seconds_count"), 3);
  EXPECT_EQ(c->Value({"plain"}), 1.5);
  // Clear drops every series of a family.
  MetricFamily* s = r.Gauge("lvs_snapshot", "Snapshot.", {"k"});
  s->Set({"a"}, 1);
  EXPECT_EQ(Value(r.Render(), R"(lvs_snapshot{k="a"})"), 1);
  s->Clear();
  EXPECT_EQ(s->Value({"a"}), 0);
  EXPECT_FALSE(Value(r.Render(), R"(lvs_snapshot{k="a"})").has_value());
}

TEST(MetricsTest, LabelledHistogramsKeepLabelsBeforeLe) {
  MetricsRegistry r;
  MetricFamily* h = r.Histogram("lvs_d_seconds", "D.", {1}, {"method"});
  h->Observe({"m"}, 5);
  const std::string text = r.Render();
  EXPECT_EQ(Value(text, R"(lvs_d_seconds_bucket{method="m",le="1"})"), 0);
  EXPECT_EQ(Value(text, R"(lvs_d_seconds_bucket{method="m",le="+Inf"})"), 1);
  EXPECT_EQ(Value(text, R"(lvs_d_seconds_sum{method="m"})"), 5);
}

TEST(MetricsTest, FamiliesWithoutSeriesKeepTheirHelpAndType) {
  MetricsRegistry r;
  r.Counter("lvs_rejected_total", "Rejected.", {"reason"});
  r.Histogram("lvs_wait_seconds", "Wait.", {1}, {"kind"});
  MetricFamily* g = r.Gauge("lvs_busy", "Busy.", {"w"});
  g->Set({"a"}, 1);
  g->Clear();
  const std::string text = r.Render();
  EXPECT_NE(text.find("# HELP lvs_rejected_total Rejected.\n"
                      "# TYPE lvs_rejected_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE lvs_wait_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE lvs_busy gauge\n"), std::string::npos);
  EXPECT_EQ(text.find("lvs_rejected_total{"), std::string::npos);
}

TEST(MetricsTest, CounterSetNeverGoesDown) {
  MetricsRegistry r;
  MetricFamily* c = r.Counter("lvs_snap_total", "Snapshot.", {"w"});
  c->Set({"a"}, 5);
  c->Set({"a"}, 3);
  EXPECT_EQ(c->Value({"a"}), 5);
  c->Set({"a"}, 7);
  EXPECT_EQ(c->Value({"a"}), 7);
}

TEST(MetricsTest, BuildInfoAndProcessMetrics) {
  MetricsRegistry r;
  r.AddBuildInfo("lvs_test_build_info", {{"worker", "w1"}});
  const double before = static_cast<double>(absl::ToUnixSeconds(absl::Now()));
  const std::string text = r.Render();
  const size_t info = text.find("lvs_test_build_info{");
  ASSERT_NE(info, std::string::npos) << text;
  const std::string line = text.substr(info, text.find('\n', info) - info);
  EXPECT_NE(line.find(absl::StrCat("version=\"", BuildVersion(), "\"")),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("worker=\"w1\""), std::string::npos) << line;
  EXPECT_EQ(line.substr(line.size() - 2), " 1") << line;
  EXPECT_GT(*Value(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(*Value(text, "process_cpu_seconds_total"), 0);
  EXPECT_GE(*Value(text, "process_open_fds"), 3);
  EXPECT_GT(*Value(text, "process_max_fds"), 0);
  // Started in the last hour (the test process).
  const double start = *Value(text, "process_start_time_seconds");
  EXPECT_LE(start, before + 1);
  EXPECT_GT(start, before - 3600);
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"),
            std::string::npos);
}

// promtool (Debian's prometheus package) accepts the whole exposition.
TEST(MetricsTest, PromtoolCheckMetricsIsClean) {
  if (access("/usr/bin/promtool", X_OK) != 0) {
    GTEST_SKIP() << "promtool not installed";
  }
  MetricsRegistry r;
  r.Counter("lvs_things_total", "Things.", {"kind"})->Add({"a\"b\nc"}, 1);
  r.Gauge("lvs_level", "Level.")->Set({}, -2.5);
  r.Histogram("lvs_wait_seconds", "Wait.", {0.5, 2}, {"m"})->Observe({"x"}, 1);
  r.AddBuildInfo("lvs_test_build_info");
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/metrics-", getpid(), ".prom");
  std::ofstream(path) << r.Render();
  const std::string command =
      absl::StrCat("/usr/bin/promtool check metrics < ", path, " 2>&1");
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) output.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace lvs::rpc

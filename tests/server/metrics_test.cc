// The Prometheus text exposition written by rpc::MetricsRegistry, compared with
// the exact text format 0.0.4 output.
#include "rpc/metrics.h"

#include <gtest/gtest.h>

namespace lvs::server {
namespace {

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  rpc::MetricsRegistry r;
  rpc::MetricFamily* c =
      r.Counter("lvs_things_total", "Things.\nSecond \\ line.", {"kind"});
  rpc::MetricFamily* g = r.Gauge("lvs_level", "Level.");
  rpc::MetricFamily* h = r.Histogram("lvs_wait_seconds", "Wait.", {0.5, 2});
  c->Add({"a\"b\\c\nd"}, 2);
  c->Add({"plain"}, 1.5);
  int collected = 0;
  r.AddCollector([&] { g->Set({}, ++collected); });
  h->Observe({}, 0.1);
  h->Observe({}, 1);
  h->Observe({}, 3);
  EXPECT_EQ(r.Render(),
            "# HELP lvs_things_total Things.\\nSecond \\\\ line.\n"
            "# TYPE lvs_things_total counter\n"
            "lvs_things_total{kind=\"a\\\"b\\\\c\\nd\"} 2\n"
            "lvs_things_total{kind=\"plain\"} 1.5\n"
            "# HELP lvs_level Level.\n"
            "# TYPE lvs_level gauge\n"
            "lvs_level 1\n"
            "# HELP lvs_wait_seconds Wait.\n"
            "# TYPE lvs_wait_seconds histogram\n"
            "lvs_wait_seconds_bucket{le=\"0.5\"} 1\n"
            "lvs_wait_seconds_bucket{le=\"2\"} 2\n"
            "lvs_wait_seconds_bucket{le=\"+Inf\"} 3\n"
            "lvs_wait_seconds_sum 4.0999999999999996\n"
            "lvs_wait_seconds_count 3\n");
  EXPECT_EQ(collected, 1);
  g->Clear();
  EXPECT_EQ(g->Value({}), 0);
  EXPECT_EQ(c->Value({"plain"}), 1.5);
}

TEST(MetricsTest, LabelledHistogramsKeepLabelsBeforeLe) {
  rpc::MetricsRegistry r;
  rpc::MetricFamily* h = r.Histogram("lvs_d_seconds", "D.", {1}, {"method"});
  h->Observe({"m"}, 5);
  const std::string text = r.Render();
  EXPECT_NE(text.find("lvs_d_seconds_bucket{method=\"m\",le=\"1\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("lvs_d_seconds_bucket{method=\"m\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("lvs_d_seconds_sum{method=\"m\"} 5\n"),
            std::string::npos);
}

}  // namespace
}  // namespace lvs::server

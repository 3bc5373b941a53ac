// A small Prometheus metrics registry: counters, gauges and histograms with
// labels, rendered in the text exposition format 0.0.4 (one HELP and TYPE per
// family, escaped label values, cumulative `le` buckets ending with +Inf,
// `_sum` and `_count`). prometheus-cpp is not packaged in Debian, so lvs
// writes the format itself.
//
// Thread-safety: thread-safe. Families are created at start-up; updates and
// Render() may run concurrently from any thread.
#ifndef LVS_RPC_METRICS_H_
#define LVS_RPC_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lvs::rpc {

// Label values of one series, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

// One metric family: a name, a help text, label names and its series.
class MetricFamily {
 public:
  // The exposition TYPE.
  enum class Type { kCounter, kGauge, kHistogram };

  MetricFamily(std::string name, std::string help, Type type,
               std::vector<std::string> label_names,
               std::vector<double> buckets = {});

  // Adds `v` to a counter or gauge series (created at 0).
  void Add(const LabelValues& labels, double v);
  // Sets a gauge series.
  void Set(const LabelValues& labels, double v);
  // Removes every series (a gauge refreshed as a whole snapshot).
  void Clear();
  // Records one observation of a histogram.
  void Observe(const LabelValues& labels, double v);
  // Current value of a counter or gauge series (0 when absent).
  double Value(const LabelValues& labels) const;
  // Appends the family in text format to `out`.
  void Render(std::string* out) const;

  const std::string& name() const { return name_; }

 private:
  struct Series {
    double value = 0;  // Counter or gauge.
    std::vector<uint64_t>
        bucket_hits;  // Histogram, per bucket (not cumulative).
    uint64_t count = 0;
    double sum = 0;
  };
  Series& SeriesFor(const LabelValues& labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string LabelText(const LabelValues& labels,
                        const std::string& extra) const;

  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, Series> series_ ABSL_GUARDED_BY(mu_);
};

// A set of families plus collectors run before each rendering.
class MetricsRegistry {
 public:
  // Adds a family; the registry owns it.
  MetricFamily* Counter(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {});
  MetricFamily* Gauge(const std::string& name, const std::string& help,
                      std::vector<std::string> label_names = {});
  MetricFamily* Histogram(const std::string& name, const std::string& help,
                          std::vector<double> buckets,
                          std::vector<std::string> label_names = {});

  // Registers a function that refreshes gauges just before Render().
  void AddCollector(std::function<void()> collect);

  // Runs the collectors and renders every family (text format 0.0.4).
  std::string Render();

 private:
  MetricFamily* Add(std::unique_ptr<MetricFamily> family);

  absl::Mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> collectors_ ABSL_GUARDED_BY(mu_);
};

// Escapes a label value (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& v);

}  // namespace lvs::rpc

#endif  // LVS_RPC_METRICS_H_

// The Prometheus metrics of the lvs processes, on prometheus-cpp: one
// registry per process, families of counters, gauges and histograms with
// labels, collectors that refresh snapshot values just before a scrape, the
// process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
// process_start_time_seconds, process_open_fds, ...) and a
// `<prefix>_build_info{version,build_type}` gauge, rendered by
// prometheus-cpp's text serializer (exposition format 0.0.4).
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

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace lvs::rpc {

// Label values of one series, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

// One metric family: a name, a help text, label names and its series.
class MetricFamily {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Adds `v` (>= 0 for counters) to a counter or gauge series (created at
  // 0). On a histogram, only creates the series (empty buckets).
  void Add(const LabelValues& labels, double v);
  // Sets a gauge series. On a counter (a snapshot of a count kept
  // elsewhere), raises the series to `v`; a counter never goes down.
  void Set(const LabelValues& labels, double v);
  // Removes every series (a gauge refreshed as a whole snapshot).
  void Clear();
  // Records one observation of a histogram.
  void Observe(const LabelValues& labels, double v);
  // Current value of a counter or gauge series (0 when absent).
  double Value(const LabelValues& labels) const;

  const std::string& name() const { return name_; }

 private:
  friend class MetricsRegistry;
  struct Series {
    prometheus::Counter* counter = nullptr;
    prometheus::Gauge* gauge = nullptr;
    prometheus::Histogram* histogram = nullptr;
  };

  MetricFamily(std::string name, Type type,
               std::vector<std::string> label_names,
               std::vector<double> buckets);
  Series& SeriesFor(const LabelValues& labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  std::string help_;  // Set once by the registry before the family is shared.
  const Type type_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;
  // Exactly one is set, by the registry; owned by it.
  prometheus::Family<prometheus::Counter>* counters_ = nullptr;
  prometheus::Family<prometheus::Gauge>* gauges_ = nullptr;
  prometheus::Family<prometheus::Histogram>* histograms_ = nullptr;
  mutable absl::Mutex mu_;
  std::map<LabelValues, Series> series_ ABSL_GUARDED_BY(mu_);
};

// A process's families plus collectors run before each rendering.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();

  // Adds a family; the registry owns it. Names and label names must be
  // valid Prometheus names (checked: a bad one is a programming error).
  MetricFamily* Counter(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {});
  MetricFamily* Gauge(const std::string& name, const std::string& help,
                      std::vector<std::string> label_names = {});
  MetricFamily* Histogram(const std::string& name, const std::string& help,
                          std::vector<double> buckets,
                          std::vector<std::string> label_names = {});

  // Adds `name` (e.g. "lvs_worker_build_info") = 1 with the labels version
  // and build_type, plus `labels`.
  void AddBuildInfo(const std::string& name,
                    const std::map<std::string, std::string>& labels = {});

  // Registers a function that refreshes gauges just before Render().
  void AddCollector(std::function<void()> collect);

  // Runs the collectors and renders every family and the process metrics
  // (text format 0.0.4).
  std::string Render();

 private:
  MetricFamily* Keep(std::unique_ptr<MetricFamily> family);

  const std::shared_ptr<prometheus::Registry> registry_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> collectors_ ABSL_GUARDED_BY(mu_);
};

// The version lvs was built as (CMake's project version).
const char* BuildVersion();

}  // namespace lvs::rpc

#endif  // LVS_RPC_METRICS_H_

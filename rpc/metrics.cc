#include "rpc/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

#ifndef LVS_VERSION
#define LVS_VERSION "unknown"
#endif
#ifndef LVS_BUILD_TYPE
#define LVS_BUILD_TYPE "unknown"
#endif

namespace lvs::rpc {
namespace {

prometheus::Labels ToLabels(const std::vector<std::string>& names,
                            const LabelValues& values) {
  prometheus::Labels labels;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    labels[names[i]] = values[i];
  }
  return labels;
}

// Fields of /proc/self/stat after the command name (field 3 on).
std::vector<std::string> ProcSelfStat() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return {};
  return absl::StrSplit(text.substr(close + 2), ' ', absl::SkipEmpty());
}

// Seconds since the epoch at which the machine booted (/proc/stat btime).
double BootTime() {
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("btime ", 0) == 0) {
      double t = 0;
      if (absl::SimpleAtod(line.substr(6), &t)) return t;
    }
  }
  return 0;
}

int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // The directory stream itself.
}

prometheus::MetricFamily Single(const std::string& name,
                                const std::string& help,
                                prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

// The standard process metrics of the Prometheus client libraries, read
// from /proc at scrape time.
std::vector<prometheus::MetricFamily> ProcessMetrics() {
  std::vector<prometheus::MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::vector<std::string> stat = ProcSelfStat();
  // After the name: utime is field 14, stime 15, starttime 22, vsize 23 and
  // rss 24 (1-based), i.e. indices 11, 12, 19, 20 and 21 here.
  auto field = [&](size_t i) {
    double v = 0;
    if (i < stat.size()) (void)absl::SimpleAtod(stat[i], &v);
    return v;
  };
  if (stat.size() > 21 && ticks > 0) {
    using prometheus::MetricType;
    out.push_back(Single("process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.",
                         MetricType::Counter, (field(11) + field(12)) / ticks));
    out.push_back(
        Single("process_start_time_seconds",
               "Start time of the process since unix epoch in seconds.",
               MetricType::Gauge, BootTime() + field(19) / ticks));
    out.push_back(Single("process_virtual_memory_bytes",
                         "Virtual memory size in bytes.", MetricType::Gauge,
                         field(20)));
    out.push_back(Single("process_resident_memory_bytes",
                         "Resident memory size in bytes.", MetricType::Gauge,
                         field(21) * page));
  }
  out.push_back(Single("process_open_fds", "Number of open file descriptors.",
                       prometheus::MetricType::Gauge, OpenFds()));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(Single(
        "process_max_fds", "Maximum number of open file descriptors.",
        prometheus::MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace

const char* BuildVersion() { return LVS_VERSION; }

MetricFamily::MetricFamily(std::string name, Type type,
                           std::vector<std::string> label_names,
                           std::vector<double> buckets)
    : name_(std::move(name)),
      type_(type),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

MetricFamily::Series& MetricFamily::SeriesFor(const LabelValues& labels) {
  auto it = series_.find(labels);
  if (it != series_.end()) return it->second;
  Series s;
  const prometheus::Labels l = ToLabels(label_names_, labels);
  switch (type_) {
    case Type::kCounter:
      s.counter = &counters_->Add(l);
      break;
    case Type::kGauge:
      s.gauge = &gauges_->Add(l);
      break;
    case Type::kHistogram:
      s.histogram = &histograms_->Add(l, buckets_);
      break;
  }
  return series_.emplace(labels, s).first->second;
}

void MetricFamily::Add(const LabelValues& labels, double v) {
  absl::MutexLock lock(&mu_);
  Series& s = SeriesFor(labels);
  if (s.counter != nullptr) s.counter->Increment(v);
  if (s.gauge != nullptr) s.gauge->Increment(v);
}

void MetricFamily::Set(const LabelValues& labels, double v) {
  absl::MutexLock lock(&mu_);
  Series& s = SeriesFor(labels);
  if (s.gauge != nullptr) s.gauge->Set(v);
  if (s.counter != nullptr && v > s.counter->Value()) {
    s.counter->Increment(v - s.counter->Value());
  }
}

void MetricFamily::Clear() {
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, s] : series_) {
    if (s.counter != nullptr) counters_->Remove(s.counter);
    if (s.gauge != nullptr) gauges_->Remove(s.gauge);
    if (s.histogram != nullptr) histograms_->Remove(s.histogram);
  }
  series_.clear();
}

void MetricFamily::Observe(const LabelValues& labels, double v) {
  absl::MutexLock lock(&mu_);
  Series& s = SeriesFor(labels);
  if (s.histogram != nullptr) s.histogram->Observe(v);
}

double MetricFamily::Value(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(labels);
  if (it == series_.end()) return 0;
  if (it->second.counter != nullptr) return it->second.counter->Value();
  if (it->second.gauge != nullptr) return it->second.gauge->Value();
  return 0;
}

MetricsRegistry::MetricsRegistry()
    : registry_(std::make_shared<prometheus::Registry>()) {}

MetricsRegistry::~MetricsRegistry() = default;

MetricFamily* MetricsRegistry::Keep(std::unique_ptr<MetricFamily> family) {
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return families_.back().get();
}

MetricFamily* MetricsRegistry::Counter(const std::string& name,
                                       const std::string& help,
                                       std::vector<std::string> label_names) {
  std::unique_ptr<MetricFamily> f(new MetricFamily(
      name, MetricFamily::Type::kCounter, std::move(label_names), {}));
  f->counters_ =
      &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
  f->help_ = help;
  return Keep(std::move(f));
}

MetricFamily* MetricsRegistry::Gauge(const std::string& name,
                                     const std::string& help,
                                     std::vector<std::string> label_names) {
  std::unique_ptr<MetricFamily> f(new MetricFamily(
      name, MetricFamily::Type::kGauge, std::move(label_names), {}));
  f->gauges_ =
      &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
  f->help_ = help;
  return Keep(std::move(f));
}

MetricFamily* MetricsRegistry::Histogram(const std::string& name,
                                         const std::string& help,
                                         std::vector<double> buckets,
                                         std::vector<std::string> label_names) {
  std::unique_ptr<MetricFamily> f(
      new MetricFamily(name, MetricFamily::Type::kHistogram,
                       std::move(label_names), std::move(buckets)));
  f->histograms_ =
      &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
  f->help_ = help;
  return Keep(std::move(f));
}

void MetricsRegistry::AddBuildInfo(
    const std::string& name, const std::map<std::string, std::string>& labels) {
  prometheus::Labels l(labels.begin(), labels.end());
  l["version"] = LVS_VERSION;
  l["build_type"] = LVS_BUILD_TYPE;
  prometheus::BuildGauge()
      .Name(name)
      .Help("Always 1; the labels describe the build.")
      .Register(*registry_)
      .Add(l)
      .Set(1);
}

void MetricsRegistry::AddCollector(std::function<void()> collect) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collect));
}

std::string MetricsRegistry::Render() {
  std::vector<std::function<void()>> collectors;
  {
    absl::MutexLock lock(&mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : ProcessMetrics()) {
    families.push_back(std::move(f));
  }
  // prometheus-cpp leaves out families without series (a labelled counter
  // before its first event); they keep their HELP and TYPE lines so that
  // dashboards and alerts find every name from the start.
  std::set<std::string> present;
  for (const prometheus::MetricFamily& f : families) present.insert(f.name);
  {
    absl::MutexLock lock(&mu_);
    for (const std::unique_ptr<MetricFamily>& f : families_) {
      if (present.count(f->name_) > 0) continue;
      prometheus::MetricFamily empty;
      empty.name = f->name_;
      empty.help = f->help_;
      empty.type = f->type_ == MetricFamily::Type::kCounter
                       ? prometheus::MetricType::Counter
                   : f->type_ == MetricFamily::Type::kGauge
                       ? prometheus::MetricType::Gauge
                       : prometheus::MetricType::Histogram;
      families.push_back(std::move(empty));
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace lvs::rpc

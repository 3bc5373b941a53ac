#include "rpc/metrics.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lvs::rpc {
namespace {

std::string FormatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrFormat("%d", static_cast<int64_t>(v));
  }
  return absl::StrFormat("%.17g", v);
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

const char* TypeName(MetricFamily::Type type) {
  switch (type) {
    case MetricFamily::Type::kCounter:
      return "counter";
    case MetricFamily::Type::kGauge:
      return "gauge";
    case MetricFamily::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

MetricFamily::MetricFamily(std::string name, std::string help, Type type,
                           std::vector<std::string> label_names,
                           std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

MetricFamily::Series& MetricFamily::SeriesFor(const LabelValues& labels) {
  Series& s = series_[labels];
  if (type_ == Type::kHistogram && s.bucket_hits.empty()) {
    s.bucket_hits.assign(buckets_.size(), 0);
  }
  return s;
}

void MetricFamily::Add(const LabelValues& labels, double v) {
  absl::MutexLock lock(&mu_);
  SeriesFor(labels).value += v;
}

void MetricFamily::Set(const LabelValues& labels, double v) {
  absl::MutexLock lock(&mu_);
  SeriesFor(labels).value = v;
}

void MetricFamily::Clear() {
  absl::MutexLock lock(&mu_);
  series_.clear();
}

void MetricFamily::Observe(const LabelValues& labels, double v) {
  absl::MutexLock lock(&mu_);
  Series& s = SeriesFor(labels);
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (v <= buckets_[i]) {
      ++s.bucket_hits[i];
      break;
    }
  }
  ++s.count;
  s.sum += v;
}

double MetricFamily::Value(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.value;
}

std::string MetricFamily::LabelText(const LabelValues& labels,
                                    const std::string& extra) const {
  std::string out;
  for (size_t i = 0; i < label_names_.size() && i < labels.size(); ++i) {
    absl::StrAppend(&out, out.empty() ? "" : ",", label_names_[i], "=\"",
                    EscapeLabelValue(labels[i]), "\"");
  }
  if (!extra.empty()) absl::StrAppend(&out, out.empty() ? "" : ",", extra);
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

void MetricFamily::Render(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", EscapeHelp(help_), "\n",
                  "# TYPE ", name_, " ", TypeName(type_), "\n");
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, s] : series_) {
    if (type_ != Type::kHistogram) {
      absl::StrAppend(out, name_, LabelText(labels, ""), " ",
                      FormatNumber(s.value), "\n");
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      cumulative += s.bucket_hits[i];
      absl::StrAppend(
          out, name_, "_bucket",
          LabelText(labels,
                    absl::StrCat("le=\"", FormatNumber(buckets_[i]), "\"")),
          " ", cumulative, "\n");
    }
    absl::StrAppend(out, name_, "_bucket", LabelText(labels, "le=\"+Inf\""),
                    " ", s.count, "\n");
    absl::StrAppend(out, name_, "_sum", LabelText(labels, ""), " ",
                    FormatNumber(s.sum), "\n");
    absl::StrAppend(out, name_, "_count", LabelText(labels, ""), " ", s.count,
                    "\n");
  }
}

MetricFamily* MetricsRegistry::Add(std::unique_ptr<MetricFamily> family) {
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return families_.back().get();
}

MetricFamily* MetricsRegistry::Counter(const std::string& name,
                                       const std::string& help,
                                       std::vector<std::string> label_names) {
  return Add(std::make_unique<MetricFamily>(
      name, help, MetricFamily::Type::kCounter, std::move(label_names)));
}

MetricFamily* MetricsRegistry::Gauge(const std::string& name,
                                     const std::string& help,
                                     std::vector<std::string> label_names) {
  return Add(std::make_unique<MetricFamily>(
      name, help, MetricFamily::Type::kGauge, std::move(label_names)));
}

MetricFamily* MetricsRegistry::Histogram(const std::string& name,
                                         const std::string& help,
                                         std::vector<double> buckets,
                                         std::vector<std::string> label_names) {
  return Add(std::make_unique<MetricFamily>(
      name, help, MetricFamily::Type::kHistogram, std::move(label_names),
      std::move(buckets)));
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
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& family : families_) family->Render(&out);
  return out;
}

}  // namespace lvs::rpc

#include "net/server/metrics_registry.h"

#include <glog/logging.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace ballot {

namespace {

bool ValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// Shortest text that reads back as the same double; Prometheus spells infinities +Inf / -Inf.
void AppendNumber(double v, std::string* out) {
  if (std::isnan(v)) {
    *out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    *out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  CHECK(ec == std::errc()) << "formatting " << v;
  out->append(buf, end);
}

void AppendNumber(uint64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  CHECK(ec == std::errc());
  out->append(buf, end);
}

// HELP text escapes backslash and newline; label values also escape the double quote.
void AppendEscaped(const std::string& s, bool quote, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (quote && c == '"') {
      *out += "\\\"";
    } else {
      *out += c;
    }
  }
}

// `{a="x",le="0.5"}`, or nothing for no labels at all.
void AppendLabels(const MetricLabels& labels, const char* le, double le_value, std::string* out) {
  if (labels.empty() && le == nullptr) return;
  *out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) *out += ',';
    first = false;
    *out += name;
    *out += "=\"";
    AppendEscaped(value, /*quote=*/true, out);
    *out += '"';
  }
  if (le != nullptr) {
    if (!first) *out += ',';
    *out += le;
    *out += "=\"";
    AppendNumber(le_value, out);
    *out += '"';
  }
  *out += '}';
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Histogram

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  CHECK(!bounds_.empty()) << "a histogram needs at least one bucket bound";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    CHECK(std::isfinite(bounds_[i])) << "histogram bounds must be finite";
    CHECK(i == 0 || bounds_[i - 1] < bounds_[i]) << "histogram bounds must increase";
  }
}

void Histogram::Observe(double v) {
  // The first bound >= v; past the last bound, the +Inf bucket.
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, size_t count) {
  CHECK(start > 0 && factor > 1 && count > 0) << "bad exponential buckets";
  std::vector<double> bounds;
  double b = start;
  for (size_t i = 0; i < count; ++i, b *= factor) bounds.push_back(b);
  return bounds;
}

std::vector<double> LatencySecondsBuckets() { return ExponentialBuckets(50e-6, 2, 18); }

// ---------------------------------------------------------------------------------------------
// Registry

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name, Type type,
                                                    const std::string& help,
                                                    const MetricLabels& labels) {
  CHECK(ValidName(name, /*allow_colon=*/true)) << "bad metric name '" << name << "'";
  for (const auto& [label, value] : labels) {
    CHECK(ValidName(label, /*allow_colon=*/false) && label.rfind("__", 0) != 0 && label != "le")
        << "bad label name '" << label << "' on " << name;
  }
  auto [it, inserted] = families_.try_emplace(name);
  Family& f = it->second;
  if (inserted) {
    f.type = type;
    f.help = help;
  }
  CHECK(f.type == type) << "metric " << name << " registered again with another type";
  CHECK(f.help == help) << "metric " << name << " registered again with another help text";
  return f;
}

Counter& MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     MetricLabels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = FamilyFor(name, Type::kCounter, help, labels);
  std::unique_ptr<Counter>& c = f.counters[std::move(labels)];
  if (c == nullptr) c = std::make_unique<Counter>();
  return *c;
}

Gauge& MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                 MetricLabels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = FamilyFor(name, Type::kGauge, help, labels);
  std::unique_ptr<Gauge>& g = f.gauges[std::move(labels)];
  if (g == nullptr) g = std::make_unique<Gauge>();
  return *g;
}

Histogram& MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, MetricLabels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = FamilyFor(name, Type::kHistogram, help, labels);
  if (f.histograms.empty()) f.bounds = bounds;
  CHECK(f.bounds == bounds) << "histogram " << name << " registered again with other buckets";
  std::unique_ptr<Histogram>& h = f.histograms[std::move(labels)];
  if (h == nullptr) h = std::make_unique<Histogram>(std::move(bounds));
  return *h;
}

uint64_t MetricsRegistry::AddCollector(std::function<void()> collect) {
  std::lock_guard<std::mutex> lock(collectors_mu_);
  collectors_[++last_collector_id_] = std::move(collect);
  return last_collector_id_;
}

void MetricsRegistry::RemoveCollector(uint64_t id) {
  std::lock_guard<std::mutex> lock(collectors_mu_);  // waits for a Render running it
  collectors_.erase(id);
}

std::string MetricsRegistry::Render() const {
  std::lock_guard<std::mutex> collecting(collectors_mu_);  // one Render at a time
  for (const auto& [id, collect] : collectors_) collect();
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(families_.size() * 256);
  for (const auto& [name, family] : families_) RenderFamily(name, family, &out);
  return out;
}

void MetricsRegistry::RenderFamily(const std::string& name, const Family& family,
                                   std::string* out) {
  static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
  *out += "# HELP " + name + " ";
  AppendEscaped(family.help, /*quote=*/false, out);
  *out += "\n# TYPE " + name + " " + kTypeNames[static_cast<int>(family.type)] + "\n";
  for (const auto& [labels, counter] : family.counters) {
    *out += name;
    AppendLabels(labels, nullptr, 0, out);
    *out += ' ';
    AppendNumber(counter->value(), out);
    *out += '\n';
  }
  for (const auto& [labels, gauge] : family.gauges) {
    *out += name;
    AppendLabels(labels, nullptr, 0, out);
    *out += ' ';
    AppendNumber(gauge->value(), out);
    *out += '\n';
  }
  for (const auto& [labels, histogram] : family.histograms) {
    const Histogram::Snapshot s = histogram->Read();
    for (size_t i = 0; i <= s.bounds.size(); ++i) {
      *out += name + "_bucket";
      const double le = i < s.bounds.size() ? s.bounds[i] : HUGE_VAL;
      AppendLabels(labels, "le", le, out);
      *out += ' ';
      AppendNumber(s.cumulative[i], out);
      *out += '\n';
    }
    *out += name + "_sum";
    AppendLabels(labels, nullptr, 0, out);
    *out += ' ';
    AppendNumber(s.sum, out);
    *out += '\n' + name + "_count";
    AppendLabels(labels, nullptr, 0, out);
    *out += ' ';
    AppendNumber(s.count, out);
    *out += '\n';
  }
}

}  // namespace ballot

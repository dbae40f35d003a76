#include "trellis/common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace trellis::metrics {

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double value) {
  auto it = std::lower_bound(bounds_->begin(), bounds_->end(), value);
  counts_[static_cast<size_t>(it - bounds_->begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (value > 0) {
    sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(value * 1e6)),
                          std::memory_order_relaxed);
  }
}

std::vector<uint64_t> Histogram::buckets() const {
  std::vector<uint64_t> cumulative(bounds_->size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    cumulative[i] = running;
  }
  return cumulative;
}

double Histogram::sum() const {
  return static_cast<double>(sum_micros_.load()) / 1e6;
}
uint64_t Histogram::count() const {
  return count_.load();
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return bounds;
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> labels) {
  std::lock_guard lock(mutex_);
  counters_.push_back(std::make_unique<Family<Counter>>(
      name, help, std::move(labels), [] { return std::make_unique<Counter>(); }));
  return *counters_.back();
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> labels) {
  std::lock_guard lock(mutex_);
  gauges_.push_back(std::make_unique<Family<Gauge>>(name, help, std::move(labels),
                                                    [] { return std::make_unique<Gauge>(); }));
  return *gauges_.back();
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels,
                                       const std::vector<double>& bounds) {
  std::lock_guard lock(mutex_);
  bounds_.push_back(std::make_unique<std::vector<double>>(bounds));
  const auto* stored = bounds_.back().get();
  histograms_.push_back(std::make_unique<Family<Histogram>>(
      name, help, std::move(labels), [stored] { return std::make_unique<Histogram>(stored); }));
  return *histograms_.back();
}

void Registry::on_collect(std::function<void()> collector) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collector));
}

namespace {

std::string label_text(const std::vector<std::string>& names, const Labels& values,
                       const std::string& extra = {}) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += (out.empty() ? "" : ",") + names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? "" : "{" + out + "}";
}

// Shortest text that reads back as the same double ("0.1", not "0.10000000000000001").
std::string number(double value) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc() ? std::string(buffer, end) : "NaN";
}

}  // namespace

std::string Registry::render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lock(mutex_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();

  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& family : counters_) {
    out << "# HELP " << family->name() << ' ' << family->help() << "\n# TYPE " << family->name()
        << " counter\n";
    family->each([&](const Labels& labels, const Counter& counter) {
      out << family->name() << label_text(family->label_names(), labels) << ' ' << counter.value()
          << '\n';
    });
  }
  for (const auto& family : gauges_) {
    out << "# HELP " << family->name() << ' ' << family->help() << "\n# TYPE " << family->name()
        << " gauge\n";
    family->each([&](const Labels& labels, const Gauge& gauge) {
      out << family->name() << label_text(family->label_names(), labels) << ' ' << gauge.value()
          << '\n';
    });
  }
  for (size_t f = 0; f < histograms_.size(); ++f) {
    const auto& family = histograms_[f];
    out << "# HELP " << family->name() << ' ' << family->help() << "\n# TYPE " << family->name()
        << " histogram\n";
    family->each([&](const Labels& labels, const Histogram& histogram) {
      auto cumulative = histogram.buckets();
      const auto& bounds = *bounds_[f];
      for (size_t i = 0; i <= bounds.size(); ++i) {
        auto le = i < bounds.size() ? number(bounds[i]) : std::string("+Inf");
        out << family->name() << "_bucket"
            << label_text(family->label_names(), labels, "le=\"" + le + "\"") << ' '
            << cumulative[i] << '\n';
      }
      out << family->name() << "_sum" << label_text(family->label_names(), labels) << ' '
          << number(histogram.sum()) << '\n';
      out << family->name() << "_count" << label_text(family->label_names(), labels) << ' '
          << histogram.count() << '\n';
    });
  }
  return out.str();
}

}  // namespace trellis::metrics

// Prometheus metrics without a dependency: counters, gauges and histograms with labels, rendered
// in the text exposition format (version 0.0.4). Label children are created once and then updated
// with atomics only, so the hot path takes no lock: keep the returned references.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace trellis::metrics {

using Labels = std::vector<std::string>;  // values, in the order of the family's label names

class Counter {
 public:
  void inc(uint64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t by) { value_.fetch_add(by, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void observe(double value);
  // Cumulative bucket counts (one per bound, then +Inf), sum and count.
  std::vector<uint64_t> buckets() const;
  double sum() const;
  uint64_t count() const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{
      0};  // sum kept in millionths: atomics have no fetch_add(double)
};

// Default latency buckets in seconds, 0.5 ms .. 10 s.
const std::vector<double>& latency_buckets();

template <class Metric>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Metric>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  // The child for these label values (created on first use); the reference stays valid.
  Metric& with(const Labels& values) {
    std::lock_guard lock(mutex_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls fn(labels, metric) for every child, under the family's lock.
  template <class Fn>
  void each(Fn&& fn) const {
    std::lock_guard lock(mutex_);
    for (const auto& [labels, metric] : children_) fn(labels, *metric);
  }

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mutex_;
  std::map<Labels, std::unique_ptr<Metric>> children_;
};

// Owns every family of one process. Families live as long as the registry.
class Registry {
 public:
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> labels = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> labels = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> labels = {},
                               const std::vector<double>& bounds = latency_buckets());
  // Called before each render, e.g. to read a pool's current size into a gauge.
  void on_collect(std::function<void()> collector);

  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  std::vector<std::unique_ptr<std::vector<double>>> bounds_;
  std::vector<std::function<void()>> collectors_;
};

// "a\"b" → "a\\\"b": label values are escaped as the exposition format requires.
std::string escape_label_value(const std::string& value);

}  // namespace trellis::metrics

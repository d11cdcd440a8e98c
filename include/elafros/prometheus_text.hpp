#pragma once
// Prometheus' text exposition format (0.0.4), as /metrics writes it: every family's HELP and
// TYPE, then its samples; histograms from a Histogram's snapshot.

#include <string>

#include "elafros/histogram.hpp"

namespace elafros {

// A label value escaped as the format wants (backslash, quote, newline).
std::string prometheus_escape(const std::string& value);

class PrometheusText {
 public:
  void family(const char* name, const char* type, const char* help);
  // `labels` without the braces: namespace="default",broker="b"; empty for none.
  void sample(const std::string& name, const std::string& labels, double value);
  void histogram(const std::string& name, const std::string& labels, const Histogram::Snapshot& h);
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace elafros

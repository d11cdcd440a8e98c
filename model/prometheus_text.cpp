#include "elafros/prometheus_text.hpp"

#include <fmt/format.h>

namespace elafros {

std::string prometheus_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += {'\\', c};
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void PrometheusText::family(const char* name, const char* type, const char* help) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void PrometheusText::sample(const std::string& name, const std::string& labels, double value) {
  out_ += name;
  if (!labels.empty()) out_ += "{" + labels + "}";
  out_ += fmt::format(" {}\n", value);
}

void PrometheusText::histogram(const std::string& name, const std::string& labels,
                               const Histogram::Snapshot& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    std::string le =
        i < Histogram::kBounds.size() ? fmt::format("{}", Histogram::kBounds[i]) : "+Inf";
    sample(name + "_bucket", labels + (labels.empty() ? "" : ",") + fmt::format(R"(le="{}")", le),
           static_cast<double>(cumulative));
  }
  sample(name + "_sum", labels, h.sum);
  sample(name + "_count", labels, static_cast<double>(cumulative));
}

}  // namespace elafros

// The evaluation report as one self-contained HTML file (write_html_report, declared in
// replay/eval_report.h): a header table, decoded-vs-true traces, per-trial R² and per-stage
// latency histograms, drawn as inline SVG (no scripts, no stylesheets or fonts fetched, no URLs).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "replay/eval_report.h"
#include "replay/eval_report_text.h"

namespace spikeflow::replay {
namespace {

using eval_text::fmt;
using eval_text::write_text_file;

// R² for captions: fixed 3 decimals, or 3 significant digits when a bad fit makes it huge.
std::string fmt_r2(double v) { return fmt(v, std::abs(v) < 1e3 ? "%.3f" : "%.3g"); }

std::string escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string duration_text(double ns) {
  if (ns < 1e3) return fmt(ns, "%.0f ns");
  if (ns < 1e6) return fmt(ns / 1e3, "%.3g us");
  if (ns < 1e9) return fmt(ns / 1e6, "%.3g ms");
  return fmt(ns / 1e9, "%.3g s");
}

// Ticks at 1, 2 or 5 x 10^k, about `target` of them across [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  std::vector<double> t;
  if (!(hi > lo)) return t;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r < 1.5 ? 1.0 : r < 3.5 ? 2.0 : r < 7.5 ? 5.0 : 10.0) * mag;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                               "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

// One chart: data coordinates mapped into a fixed plot area with margins for the axes.
class Svg {
 public:
  Svg(double width, double height) : w_(width), h_(height) {
    o_ << "<svg width=\"" << w_ << "\" height=\"" << h_ << "\" viewBox=\"0 0 " << w_ << ' ' << h_
       << "\" role=\"img\">\n";
  }
  void range(double x0, double x1, double y0, double y1) {
    x0_ = x0;
    x1_ = x1 > x0 ? x1 : x0 + 1.0;
    y0_ = y0;
    y1_ = y1 > y0 ? y1 : y0 + 1.0;
  }
  double px(double x) const { return kLeft + (x - x0_) / (x1_ - x0_) * (w_ - kLeft - kRight); }
  double py(double y) const {
    return h_ - kBottom - (y - y0_) / (y1_ - y0_) * (h_ - kTop - kBottom);
  }

  void axes(const std::string& title, const std::string& xlabel, const std::string& ylabel,
            const std::vector<std::pair<double, std::string>>& xticks,
            const std::vector<std::pair<double, std::string>>& yticks) {
    o_ << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << w_ - kLeft - kRight
       << "\" height=\"" << h_ - kTop - kBottom << "\" fill=\"#fff\" stroke=\"#999\"/>\n";
    for (const auto& [x, label] : xticks) {
      const double X = px(x);
      o_ << "<line x1=\"" << f(X) << "\" y1=\"" << kTop << "\" x2=\"" << f(X) << "\" y2=\""
         << h_ - kBottom << "\" stroke=\"#eee\"/>"
         << "<text x=\"" << f(X) << "\" y=\"" << h_ - kBottom + 14
         << "\" text-anchor=\"middle\" class=\"tick\">" << escape(label) << "</text>\n";
    }
    for (const auto& [y, label] : yticks) {
      const double Y = py(y);
      o_ << "<line x1=\"" << kLeft << "\" y1=\"" << f(Y) << "\" x2=\"" << w_ - kRight << "\" y2=\""
         << f(Y) << "\" stroke=\"#eee\"/>"
         << "<text x=\"" << kLeft - 4 << "\" y=\"" << f(Y + 4)
         << "\" text-anchor=\"end\" class=\"tick\">" << escape(label) << "</text>\n";
    }
    o_ << "<text x=\"" << kLeft << "\" y=\"" << kTop - 8 << "\" class=\"ttl\">" << escape(title)
       << "</text>\n"
       << "<text x=\"" << f((kLeft + w_ - kRight) / 2) << "\" y=\"" << h_ - 4
       << "\" text-anchor=\"middle\" class=\"lbl\">" << escape(xlabel) << "</text>\n"
       << "<text transform=\"translate(12," << f((kTop + h_ - kBottom) / 2)
       << ") rotate(-90)\" text-anchor=\"middle\" class=\"lbl\">" << escape(ylabel) << "</text>\n";
  }
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys, const char* color,
                double width, bool dashed = false) {
    o_ << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"" << width << '"'
       << (dashed ? " stroke-dasharray=\"4 3\"" : "") << " points=\"";
    for (size_t i = 0; i < xs.size(); ++i) o_ << f(px(xs[i])) << ',' << f(py(ys[i])) << ' ';
    o_ << "\"/>\n";
  }
  void dot(double x, double y, const char* color, bool hollow, const std::string& tip) {
    o_ << "<circle cx=\"" << f(px(x)) << "\" cy=\"" << f(py(y)) << "\" r=\"3\" "
       << (hollow ? "fill=\"none\" stroke=\"" : "fill=\"") << color << "\"><title>" << escape(tip)
       << "</title></circle>\n";
  }
  void bar(double x0, double x1, double y, const char* color, const std::string& tip) {
    const double top = py(y);
    o_ << "<rect x=\"" << f(px(x0)) << "\" y=\"" << f(top) << "\" width=\""
       << f(std::max(0.5, px(x1) - px(x0) - 0.5)) << "\" height=\"" << f(py(y0_) - top)
       << "\" fill=\"" << color << "\"><title>" << escape(tip) << "</title></rect>\n";
  }
  void hline(double y, const char* color, const std::string& label) {
    o_ << "<line x1=\"" << kLeft << "\" y1=\"" << f(py(y)) << "\" x2=\"" << w_ - kRight
       << "\" y2=\"" << f(py(y)) << "\" stroke=\"" << color << "\" stroke-dasharray=\"4 3\"/>";
    if (!label.empty()) {
      o_ << "<text x=\"" << w_ - kRight - 4 << "\" y=\"" << f(py(y) - 3)
         << "\" text-anchor=\"end\" class=\"tick\" fill=\"" << color << "\">" << escape(label)
         << "</text>";
    }
    o_ << '\n';
  }
  void vline(double x, const char* color, const std::string& label) {
    o_ << "<line x1=\"" << f(px(x)) << "\" y1=\"" << kTop << "\" x2=\"" << f(px(x)) << "\" y2=\""
       << h_ - kBottom << "\" stroke=\"" << color << "\" stroke-dasharray=\"4 3\"/>"
       << "<text x=\"" << f(px(x) + 3) << "\" y=\"" << kTop + 12 << "\" class=\"tick\" fill=\""
       << color << "\">" << escape(label) << "</text>\n";
  }
  void legend(const std::vector<std::pair<std::string, const char*>>& items) {
    double x = w_ - kRight - 8;
    for (auto it = items.rbegin(); it != items.rend(); ++it) {
      o_ << "<text x=\"" << f(x) << "\" y=\"" << kTop - 8 << "\" text-anchor=\"end\" class=\"tick\""
         << " fill=\"" << it->second << "\">" << escape(it->first) << "</text>";
      x -= 9.0 * static_cast<double>(it->first.size()) + 14.0;
    }
    o_ << '\n';
  }
  std::string str() {
    o_ << "</svg>\n";
    return o_.str();
  }

 private:
  static std::string f(double v) { return fmt(v, "%.1f"); }
  static constexpr double kLeft = 56, kRight = 12, kTop = 24, kBottom = 36;
  double w_, h_;
  double x0_ = 0, x1_ = 1, y0_ = 0, y1_ = 1;
  std::ostringstream o_;
};

std::vector<std::pair<double, std::string>> labelled(const std::vector<double>& ticks,
                                                     const char* spec = "%g") {
  std::vector<std::pair<double, std::string>> out;
  for (double t : ticks) out.emplace_back(t, fmt(t, spec));
  return out;
}

// Decoded vs true traces of the chunks [b, e) of result.chunks, one panel per dimension.
std::string trace_panels(const EvalResult& r, size_t b, size_t e, int64_t t0_ns,
                         const std::string& caption) {
  std::string html = "<div class=\"row\">";
  const auto dim = static_cast<size_t>(r.dim);
  for (size_t d = 0; d < dim; ++d) {
    std::vector<double> xs, yt, yp;
    for (size_t i = b; i < e; ++i) {
      const auto& c = r.chunks[i];
      xs.push_back(static_cast<double>(c.start_ns + (c.end_ns - c.start_ns) / 2 - t0_ns) * 1e-9);
      yt.push_back(r.truth[i * dim + d]);
      yp.push_back(r.pred[i * dim + d]);
    }
    double lo = 0, hi = 0;
    if (!xs.empty()) {
      lo = std::min(*std::min_element(yt.begin(), yt.end()),
                    *std::min_element(yp.begin(), yp.end()));
      hi = std::max(*std::max_element(yt.begin(), yt.end()),
                    *std::max_element(yp.begin(), yp.end()));
    }
    const double pad = hi > lo ? 0.05 * (hi - lo) : 1.0;
    const double x1 = xs.empty() ? 1.0 : std::max(xs.back(), xs.front() + 1e-3);
    Svg svg(440, 200);
    svg.range(xs.empty() ? 0.0 : xs.front(), x1, lo - pad, hi + pad);
    svg.axes(caption + ": " + r.names[d], "time (s)", r.names[d],
             labelled(nice_ticks(xs.empty() ? 0.0 : xs.front(), x1)),
             labelled(nice_ticks(lo - pad, hi + pad)));
    svg.legend({{"true", "#222"}, {"decoded", kColors[d % 8]}});
    svg.polyline(xs, yt, "#222", 1.5);
    svg.polyline(xs, yp, kColors[d % 8], 1.5);
    html += svg.str();
  }
  return html + "</div>\n";
}

std::string traces_section(const EvalResult& r, const ReportOptions& o) {
  std::string html = "<h2>Decoded vs true</h2>\n";
  if (r.chunks.empty()) return html + "<p>No matched chunks.</p>\n";
  if (!r.trials.empty()) {
    const size_t n = r.trials.size();
    const auto k = static_cast<size_t>(std::clamp(o.trace_trials, 0, static_cast<int>(n)));
    std::vector<size_t> pick;
    for (size_t i = 0; i < k; ++i) {
      const size_t idx = k == 1 ? 0
                                : static_cast<size_t>(std::llround(static_cast<double>(i) *
                                                                   static_cast<double>(n - 1) /
                                                                   static_cast<double>(k - 1)));
      if (pick.empty() || pick.back() != idx) pick.push_back(idx);
    }
    for (size_t idx : pick) {
      const TrialEval& t = r.trials[idx];
      size_t b = 0;
      while (b < r.chunks.size() && r.chunks[b].trial != t.trial) ++b;
      size_t e = b;
      while (e < r.chunks.size() && r.chunks[e].trial == t.trial) ++e;
      html +=
          trace_panels(r, b, e, t.start_ns,
                       "trial " + std::to_string(t.trial) + " (condition " +
                           std::to_string(t.condition) + ", R\u00b2 " + fmt_r2(t.mean_r2) + ")");
    }
    return html;
  }
  const int64_t t0 = r.chunks.front().start_ns;
  const auto window = static_cast<int64_t>(o.trace_window_s * 1e9);
  size_t e = 0;
  while (e < r.chunks.size() && r.chunks[e].end_ns - t0 <= window) ++e;
  return html + trace_panels(r, 0, std::max<size_t>(e, 1), t0,
                             "first " + fmt(o.trace_window_s, "%g") + " s");
}

// x ticks of the per-trial plot: positions are ranks among the scored trials, labels their index.
std::vector<std::pair<double, std::string>> trial_ticks(const EvalResult& r) {
  std::vector<std::pair<double, std::string>> out;
  for (double x : nice_ticks(0.0, static_cast<double>(r.trials.size() - 1), 8)) {
    const auto i = static_cast<size_t>(std::llround(x));
    if (i < r.trials.size()) out.emplace_back(x, std::to_string(r.trials[i].trial));
  }
  return out;
}

std::string trial_r2_section(const EvalResult& r) {
  std::string html = "<h2>R\u00b2 per trial</h2>\n";
  if (r.trials.empty()) return html + "<p>No trials in the evaluated range.</p>\n";
  const double lo = -1.0;
  Svg svg(900, 240);
  svg.range(-0.5, static_cast<double>(r.trials.size()) - 0.5, lo, 1.0);
  svg.axes("mean R\u00b2 per trial over its varying dimensions (hollow: below -1, drawn at -1)",
           "trial", "R\u00b2", trial_ticks(r), labelled(nice_ticks(lo, 1.0), "%.1f"));
  svg.hline(0.0, "#999", "");
  svg.hline(r.mean_r2, "#d62728", "overall " + fmt(r.mean_r2, "%.3f"));
  for (size_t i = 0; i < r.trials.size(); ++i) {
    const TrialEval& t = r.trials[i];
    const bool clipped = t.mean_r2 < lo;
    std::string tip = "trial " + std::to_string(t.trial) + ", condition " +
                      std::to_string(t.condition) + ", " + std::to_string(t.chunks) +
                      " chunks, R\u00b2 " + fmt_r2(t.mean_r2);
    svg.dot(static_cast<double>(i), clipped ? lo : t.mean_r2, kColors[0], clipped, tip);
  }
  return html + svg.str();
}

std::string latency_section(const EvalResult& r) {
  std::string html = "<h2>Latency per stage</h2>\n";
  if (r.latency.empty()) return html + "<p>The predictions carry no timing.</p>\n";
  html += "<div class=\"row\">";
  constexpr int kBinsPerDecade = 10;
  for (const StageLatency& s : r.latency) {
    if (s.samples_ns.empty()) continue;
    const auto [mn, mx] = std::minmax_element(s.samples_ns.begin(), s.samples_ns.end());
    const double lo = std::floor(std::log10(std::max<double>(1.0, static_cast<double>(*mn))));
    double hi = std::ceil(std::log10(std::max<double>(1.0, static_cast<double>(*mx)) * 1.0001));
    if (hi <= lo) hi = lo + 1;
    const auto bins = static_cast<size_t>((hi - lo) * kBinsPerDecade);
    std::vector<uint64_t> counts(bins, 0);
    for (int64_t v : s.samples_ns) {
      const double x = std::log10(std::max<double>(1.0, static_cast<double>(v)));
      const auto b = static_cast<size_t>(
          std::clamp((x - lo) * kBinsPerDecade, 0.0, static_cast<double>(bins - 1)));
      ++counts[b];
    }
    const uint64_t peak = *std::max_element(counts.begin(), counts.end());
    Svg svg(440, 200);
    svg.range(lo, hi, 0.0, static_cast<double>(peak) * 1.1);
    std::vector<std::pair<double, std::string>> xt;
    for (double d = lo; d <= hi + 1e-9; d += 1.0)
      xt.emplace_back(d, duration_text(std::pow(10.0, d)));
    svg.axes(s.name + " (" + s.definition + "), n=" + std::to_string(s.samples_ns.size()),
             "duration (log scale)", "chunks", xt,
             labelled(nice_ticks(0.0, static_cast<double>(peak) * 1.1), "%.0f"));
    for (size_t b = 0; b < bins; ++b) {
      if (counts[b] == 0) continue;
      const double x0 = lo + static_cast<double>(b) / kBinsPerDecade;
      const double x1 = x0 + 1.0 / kBinsPerDecade;
      svg.bar(x0, x1, static_cast<double>(counts[b]), kColors[0],
              duration_text(std::pow(10.0, x0)) + " - " + duration_text(std::pow(10.0, x1)) + ": " +
                  std::to_string(counts[b]));
    }
    const auto p50 = static_cast<double>(s.histogram.percentile(0.5));
    const auto p99 = static_cast<double>(s.histogram.percentile(0.99));
    svg.vline(std::log10(std::max(1.0, p50)), "#2ca02c", "p50 " + duration_text(p50));
    svg.vline(std::log10(std::max(1.0, p99)), "#d62728", "p99 " + duration_text(p99));
    html += svg.str();
  }
  return html + "</div>\n";
}

std::string header_section(const EvalResult& r, const ReportOptions& o) {
  std::ostringstream h;
  h << "<table class=\"head\">\n";
  auto row = [&](const std::string& k, const std::string& v) {
    h << "<tr><th>" << escape(k) << "</th><td>" << escape(v) << "</td></tr>\n";
  };
  for (const auto& [k, v] : o.info) row(k, v);
  const bool whole = r.from_ns == INT64_MIN && r.to_ns == INT64_MAX;
  row("evaluated range", whole ? std::string("whole session")
                               : fmt(static_cast<double>(r.from_ns) * 1e-9, "%.3f") + " s to " +
                                     fmt(static_cast<double>(r.to_ns) * 1e-9, "%.3f") + " s");
  row("chunk width", fmt(static_cast<double>(r.width_ns) * 1e-6, "%g") + " ms");
  row("chunks", std::to_string(r.matched) + " matched of " + std::to_string(r.chunks_in_range) +
                    " in range (" + std::to_string(r.missing) + " missing; " +
                    std::to_string(r.outside_range) + " predictions outside the range, " +
                    std::to_string(r.extent_mismatch) + " with another extent, " +
                    std::to_string(r.duplicates) + " duplicates)");
  row("mean R\u00b2", fmt(r.mean_r2));
  for (size_t d = 0; d < r.r2.size(); ++d) row("R\u00b2 " + r.names[d], fmt(r.r2[d]));
  row("mean Pearson r", fmt(r.mean_pearson));
  for (size_t d = 0; d < r.pearson.size(); ++d) row("r " + r.names[d], fmt(r.pearson[d]));
  if (!r.trials.empty()) {
    std::vector<double> m;
    for (const auto& t : r.trials) m.push_back(t.mean_r2);
    std::nth_element(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(m.size() / 2), m.end());
    row("trials scored", std::to_string(r.trials.size()) + " (median per-trial R\u00b2 " +
                             fmt(m[m.size() / 2]) + ")");
  }
  h << "</table>\n";
  if (!r.latency.empty()) {
    h << "<table class=\"lat\"><tr><th>stage</th><th>definition</th><th>n</th><th>p50</th>"
         "<th>p90</th><th>p99</th><th>max</th><th>not reached</th></tr>\n";
    for (const StageLatency& s : r.latency) {
      const auto& hg = s.histogram;
      h << "<tr><td>" << escape(s.name) << "</td><td>" << escape(s.definition) << "</td><td>"
        << hg.count() << "</td><td>" << duration_text(static_cast<double>(hg.percentile(0.5)))
        << "</td><td>" << duration_text(static_cast<double>(hg.percentile(0.9))) << "</td><td>"
        << duration_text(static_cast<double>(hg.percentile(0.99))) << "</td><td>"
        << duration_text(static_cast<double>(hg.max())) << "</td><td>" << s.missing
        << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  return h.str();
}

}  // namespace

void write_html_report(const EvalResult& result, const std::string& path,
                       const ReportOptions& options) {
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
  html += escape(options.title);
  html +=
      "</title>\n<style>\n"
      "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
      "table{border-collapse:collapse;margin:0.5em 0 1em}\n"
      "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:13px}\n"
      "th{background:#f4f4f4}\n"
      ".row{display:flex;flex-wrap:wrap;gap:8px}\n"
      "svg text{font-family:sans-serif}\n"
      ".tick{font-size:10px}.lbl{font-size:11px}.ttl{font-size:12px;font-weight:bold}\n"
      "</style>\n</head>\n<body>\n<h1>";
  html += escape(options.title);
  html += "</h1>\n";
  html += header_section(result, options);
  html += traces_section(result, options);
  html += trial_r2_section(result);
  html += latency_section(result);
  html += "</body>\n</html>\n";
  write_text_file(path, html);
}

}  // namespace spikeflow::replay

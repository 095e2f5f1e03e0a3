#include "pipeline/profile_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace spikeflow::pipeline {

namespace {

using core::LatencyHistogram;

double us_at(const LatencyHistogram& h, double q) {
  return (q >= 1.0 ? static_cast<double>(h.max()) : static_cast<double>(h.percentile(q))) / 1e3;
}

std::string row(const std::string& name, const LatencyHistogram& h) {
  std::string s = fmt::format("  {:<28}", name);
  for (double q : kProfileQuantiles) s += fmt::format(" {:>9.1f}", us_at(h, q));
  return s + "\n";
}

/// a - b per percentile: the overhead of a above b (negative where a was faster).
std::string diff_row(const std::string& name, const LatencyHistogram& a, const LatencyHistogram& b) {
  std::string s = fmt::format("  {:<28}", name);
  for (double q : kProfileQuantiles) s += fmt::format(" {:>+9.1f}", us_at(a, q) - us_at(b, q));
  return s + "\n";
}

std::string head(const std::string& title) {
  std::string s = fmt::format("  {:<28}", title);
  for (const char* n : kProfileQuantileNames) s += fmt::format(" {:>9}", n);
  return s + "\n";
}

std::string counts(const ProfileRun& r) {
  std::string s = fmt::format("{}: {} chunks, {} received, {} closed by deadline/at end, {} timed",
                              r.label, r.chunks, r.received, r.deadline_closed, r.e2e.count());
  if (r.warmups > 0) s += fmt::format(", {} warm-ups", r.warmups);
  if (r.spins > 0) s += fmt::format(", {} of {} spins caught their chunk", r.spin_caught, r.spins);
  return s;
}

/// The floor's stages, sender to subscriber, in order.
std::vector<std::pair<std::string, const LatencyHistogram*>> floor_stages(const ProfileRun& f) {
  return {{"UDP one-way", &f.send_to_arrival},
          {"forward", &f.pipeline},
          {"ZMQ one-way", &f.deliver}};
}

/// A spikeflow run's stages, sender to subscriber (or callback), in order.
std::vector<std::pair<std::string, const LatencyHistogram*>> run_stages(const ProfileRun& r) {
  std::vector<std::pair<std::string, const LatencyHistogram*>> s{
      {"send -> arrival", &r.send_to_arrival}, {"arrival -> close", &r.close},
      {"queue", &r.queue},                     {"decode", &r.decode},
      {"publish", &r.publish}};
  if (r.deliver.count() > 0) s.emplace_back("publish -> subscriber", &r.deliver);
  return s;
}

}  // namespace

std::string load_point_text(const LoadPoint& p) {
  std::string t = fmt::format("{} channels, {:.0f} events/s, decoder {}\n", p.channels,
                              p.events_per_s, p.decoder);
  t += "  " + counts(p.spikeflow) + "\n";
  if (p.has_floor) t += "  " + counts(p.floor) + "\n";
  if (p.has_in_process) t += "  " + counts(p.in_process) + "\n";
  for (const auto& v : p.variants) t += "  " + counts(v) + " [" + v.overrides + "]\n";
  t += head("stage (us)");
  for (const auto& [name, h] : run_stages(p.spikeflow)) t += row(name, *h);
  t += row("END TO END", p.spikeflow.e2e);
  if (p.has_floor) {
    t += head("floor vs spikeflow (us)");
    for (const auto& [name, h] : floor_stages(p.floor)) t += row("floor " + name, *h);
    t += row("FLOOR end to end", p.floor.e2e);
    t += row("spikeflow end to end", p.spikeflow.e2e);
    t += diff_row("DIFFERENCE (spikeflow-floor)", p.spikeflow.e2e, p.floor.e2e);
  }
  if (p.has_in_process) {
    t += head("in-process consumer (us)");
    t += row("in-process end to end", p.in_process.e2e);
    if (p.has_floor) {
      t += row("floor UDP one-way", p.floor.send_to_arrival);
      t += diff_row("DIFFERENCE (in-proc-UDP)", p.in_process.e2e, p.floor.send_to_arrival);
    }
  }
  if (p.has_hot_loop) {
    t += head("decode (us)");
    t += row("live decode stage", p.spikeflow.decode);
    t += row("hot loop decode", p.hot_decode);
    const double hot99 = us_at(p.hot_decode, 0.99);
    t += row("paced loop decode", p.paced_decode);
    t += fmt::format("  {:<28} p50 {:.2f}x  p99 {:.2f}x\n", "live / hot loop",
                     us_at(p.spikeflow.decode, 0.5) / std::max(1e-3, us_at(p.hot_decode, 0.5)),
                     us_at(p.spikeflow.decode, 0.99) / std::max(1e-3, hot99));
    t += fmt::format("  {:<28} p50 {:.2f}x  p99 {:.2f}x\n", "live / paced loop",
                     us_at(p.spikeflow.decode, 0.5) / std::max(1e-3, us_at(p.paced_decode, 0.5)),
                     us_at(p.spikeflow.decode, 0.99) / std::max(1e-3, us_at(p.paced_decode, 0.99)));
  }
  for (const auto& v : p.variants) {
    t += head("variant " + v.label + " (us)");
    t += row("end to end", v.e2e);
    t += diff_row("vs spikeflow", v.e2e, p.spikeflow.e2e);
    if (p.has_floor) t += diff_row("vs floor", v.e2e, p.floor.e2e);
  }
  return t;
}

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/// End to end against load: spikeflow's p50 and p99 (solid) and the floor's (dashed).
void write_latency_vs_load_svg(std::ofstream& o, const std::vector<LoadPoint>& points) {
  double ymax = 1;
  for (const auto& p : points) ymax = std::max(ymax, us_at(p.spikeflow.e2e, 0.99));
  ymax *= 1.2;
  const int W = 560, H = 300, L = 60, B = 40;
  o << "<h2>End-to-end latency vs load</h2><svg width=" << W << " height=" << H
    << " xmlns='http://www.w3.org/2000/svg'>";
  o << fmt::format("<line x1={} y1={} x2={} y2={} stroke=black />", L, H - B, W - 10, H - B);
  o << fmt::format("<line x1={} y1=10 x2={} y2={} stroke=black />", L, L, H - B);
  for (int t = 0; t <= 4; ++t) {
    const double y = H - B - (H - B - 10) * t / 4.0;
    o << fmt::format("<text x=5 y={:.0f} font-size=11>{:.0f} us</text>", y + 4, ymax * t / 4);
  }
  struct Line {
    double q;
    bool floor;
    const char* color;
  };
  const Line lines[] = {{0.5, false, "#1f77b4"}, {0.99, false, "#d62728"},
                        {0.5, true, "#1f77b4"},  {0.99, true, "#d62728"}};
  for (const auto& ln : lines) {
    std::string pts;
    for (size_t i = 0; i < points.size(); ++i) {
      if (ln.floor && !points[i].has_floor) continue;
      const auto& h = ln.floor ? points[i].floor.e2e : points[i].spikeflow.e2e;
      const double x =
          L + 30 + (W - L - 60) * (points.size() > 1 ? double(i) / (points.size() - 1) : 0.5);
      const double y = H - B - (H - B - 10) * us_at(h, ln.q) / ymax;
      pts += fmt::format("{:.1f},{:.1f} ", x, y);
      o << fmt::format("<circle cx={:.1f} cy={:.1f} r=3 fill='{}' />", x, y, ln.color);
      if (ln.q == 0.5 && !ln.floor)
        o << fmt::format("<text x={:.1f} y={} font-size=11 text-anchor=middle>{} ch</text>", x,
                         H - B + 16, points[i].channels);
    }
    o << fmt::format("<polyline fill=none stroke='{}' {} points='{}' />", ln.color,
                     ln.floor ? "stroke-dasharray='4 3'" : "", pts);
  }
  o << fmt::format(
      "<text x={} y=20 font-size=12 fill='#1f77b4'>p50</text><text x={} y=20 font-size=12 "
      "fill='#d62728'>p99</text><text x={} y=36 font-size=11>solid spikeflow, dashed floor</text>"
      "</svg>",
      W - 190, W - 150, W - 190);
}

/// Distributions on one plot: the CDF of each run's end to end (and the floor's UDP one-way),
/// log time axis 10 us .. 100 ms, sampled from each histogram's quantiles.
void write_cdf_svg(std::ofstream& o, const LoadPoint& p) {
  std::vector<std::pair<std::string, const LatencyHistogram*>> series;
  if (p.has_floor) series.emplace_back("floor end to end", &p.floor.e2e);
  series.emplace_back("spikeflow end to end", &p.spikeflow.e2e);
  if (p.has_in_process) series.emplace_back("in-process end to end", &p.in_process.e2e);
  if (p.has_floor) series.emplace_back("floor UDP one-way", &p.floor.send_to_arrival);
  for (const auto& v : p.variants) series.emplace_back("variant " + v.label, &v.e2e);
  const int W = 640, H = 300, L = 50, B = 40, R = 180;
  const double lo = 1.0, hi = 5.0;  // log10 us: 10 us .. 100 ms
  auto x_of = [&](double us) {
    const double l = std::clamp(std::log10(std::max(us, 1e-3)), lo, hi);
    return L + (W - L - R) * (l - lo) / (hi - lo);
  };
  auto y_of = [&](double q) { return H - B - (H - B - 10) * q; };
  o << fmt::format("<h3>End-to-end distributions (CDF)</h3><svg class=cdf width={} height={} "
                   "xmlns='http://www.w3.org/2000/svg'>",
                   W, H);
  o << fmt::format("<line x1={} y1={} x2={} y2={} stroke=black />", L, H - B, W - R, H - B);
  o << fmt::format("<line x1={} y1=10 x2={} y2={} stroke=black />", L, L, H - B);
  const char* ticks[] = {"10 us", "100 us", "1 ms", "10 ms", "100 ms"};
  for (int d = 0; d <= 4; ++d) {
    const double x = L + (W - L - R) * d / 4.0;
    o << fmt::format("<line x1={0:.1f} y1={1} x2={0:.1f} y2={2} stroke='#ddd' />"
                     "<text x={0:.1f} y={3} font-size=11 text-anchor=middle>{4}</text>",
                     x, 10, H - B, H - B + 16, ticks[d]);
  }
  for (double q : {0.0, 0.5, 0.9, 0.99, 1.0})
    o << fmt::format("<text x=5 y={:.1f} font-size=11>{}</text>", y_of(q) + 4, q);
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& h = *series[s].second;
    if (h.count() == 0) continue;
    std::string pts;
    for (int i = 0; i <= 400; ++i) {
      const double q = i / 400.0;
      pts += fmt::format("{:.1f},{:.1f} ", x_of(us_at(h, q)), y_of(q));
    }
    const char* c = kColors[s % std::size(kColors)];
    o << fmt::format("<polyline fill=none stroke='{}' stroke-width=1.5 points='{}' />", c, pts);
    o << fmt::format("<text x={} y={} font-size=11 fill='{}'>{}</text>", W - R + 10, 20 + 16 * s,
                     c, series[s].first);
  }
  o << "</svg>";
}

/// The stage breakdown: per run one bar of its stage medians stacked left to right, with the
/// run's end-to-end median marked (medians do not add up exactly; the tick shows by how much).
void write_stacked_bars_svg(std::ofstream& o, const LoadPoint& p) {
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, const LatencyHistogram*>>>>
      bars;
  std::vector<const LatencyHistogram*> totals;
  if (p.has_floor) {
    // The floor's hops under the names of the spikeflow hops they stand for (same colours).
    bars.emplace_back("floor", std::vector<std::pair<std::string, const LatencyHistogram*>>{
                                   {"send -> arrival", &p.floor.send_to_arrival},
                                   {"forward", &p.floor.pipeline},
                                   {"publish -> subscriber", &p.floor.deliver}});
    totals.push_back(&p.floor.e2e);
  }
  bars.emplace_back("spikeflow", run_stages(p.spikeflow));
  totals.push_back(&p.spikeflow.e2e);
  if (p.has_in_process) {
    bars.emplace_back("in-process", run_stages(p.in_process));
    totals.push_back(&p.in_process.e2e);
  }
  for (const auto& v : p.variants) {
    bars.emplace_back(v.label, run_stages(v));
    totals.push_back(&v.e2e);
  }
  double xmax = 1;
  for (size_t b = 0; b < bars.size(); ++b) {
    double sum = 0;
    for (const auto& st : bars[b].second) sum += us_at(*st.second, 0.5);
    xmax = std::max({xmax, sum, us_at(*totals[b], 0.5)});
  }
  xmax *= 1.1;
  const int W = 640, L = 90, R = 20, bar_h = 22, gap = 10;
  const int H = 60 + static_cast<int>(bars.size()) * (bar_h + gap);
  o << fmt::format("<h3>Stage breakdown (medians, us)</h3><svg class=stacked width={} height={} "
                   "xmlns='http://www.w3.org/2000/svg'>",
                   W, H);
  std::vector<std::string> legend;
  auto color_of = [&](const std::string& stage) {
    auto it = std::find(legend.begin(), legend.end(), stage);
    if (it == legend.end()) it = legend.insert(legend.end(), stage);
    return kColors[static_cast<size_t>(it - legend.begin()) % std::size(kColors)];
  };
  for (size_t b = 0; b < bars.size(); ++b) {
    const int y = 10 + static_cast<int>(b) * (bar_h + gap);
    o << fmt::format("<text x=5 y={} font-size=12>{}</text>", y + 15, bars[b].first);
    double x = L;
    for (const auto& [stage, h] : bars[b].second) {
      const double w = (W - L - R) * us_at(*h, 0.5) / xmax;
      o << fmt::format("<rect x={:.1f} y={} width={:.1f} height={} fill='{}'><title>{}: {:.1f} "
                       "us</title></rect>",
                       x, y, w, bar_h, color_of(stage), stage, us_at(*h, 0.5));
      x += w;
    }
    const double tx = L + (W - L - R) * us_at(*totals[b], 0.5) / xmax;
    o << fmt::format("<line x1={0:.1f} y1={1} x2={0:.1f} y2={2} stroke=black stroke-width=2>"
                     "<title>end to end p50 {3:.1f} us</title></line>",
                     tx, y - 3, y + bar_h + 3, us_at(*totals[b], 0.5));
  }
  const int ly = H - 40;
  for (size_t i = 0; i < legend.size(); ++i) {
    const int lx = L + static_cast<int>(i % 4) * 135, yy = ly + static_cast<int>(i / 4) * 14;
    o << fmt::format("<rect x={} y={} width=10 height=10 fill='{}' /><text x={} y={} "
                     "font-size=11>{}</text>",
                     lx, yy, kColors[i % std::size(kColors)], lx + 14, yy + 9, legend[i]);
  }
  o << "</svg>";
}

void write_table(std::ofstream& o, const std::string& title,
                 const std::vector<std::pair<std::string, const LatencyHistogram*>>& rows,
                 const std::vector<std::pair<std::string, std::pair<const LatencyHistogram*,
                                                                    const LatencyHistogram*>>>&
                     diffs) {
  o << "<table><tr><th>" << title << " (us)</th>";
  for (const char* n : kProfileQuantileNames) o << "<th>" << n << "</th>";
  o << "</tr>";
  for (const auto& [name, h] : rows) {
    o << "<tr><td style=text-align:left>" << name << "</td>";
    for (double q : kProfileQuantiles) o << fmt::format("<td>{:.1f}</td>", us_at(*h, q));
    o << "</tr>";
  }
  for (const auto& [name, ab] : diffs) {
    o << "<tr class=diff><td style=text-align:left><b>" << name << "</b></td>";
    for (double q : kProfileQuantiles)
      o << fmt::format("<td><b>{:+.1f}</b></td>", us_at(*ab.first, q) - us_at(*ab.second, q));
    o << "</tr>";
  }
  o << "</table>";
}

void write_load_point_html(std::ofstream& o, const LoadPoint& p) {
  o << fmt::format("<h2>{} channels, {:.0f} events/s</h2><p>decoder: {}</p><ul>", p.channels,
                   p.events_per_s, p.decoder);
  std::vector<const ProfileRun*> runs{&p.spikeflow};
  if (p.has_floor) runs.push_back(&p.floor);
  if (p.has_in_process) runs.push_back(&p.in_process);
  for (const auto& v : p.variants) runs.push_back(&v);
  for (const auto* r : runs) o << "<li>" << counts(*r) << " " << r->overrides << "</li>";
  o << "</ul>";
  write_cdf_svg(o, p);
  write_stacked_bars_svg(o, p);
  auto rows = run_stages(p.spikeflow);
  rows.emplace_back("spikeflow end to end", &p.spikeflow.e2e);
  write_table(o, "stage", rows, {});
  if (p.has_floor) {
    auto fr = floor_stages(p.floor);
    for (auto& r : fr) r.first = "floor " + r.first;
    fr.emplace_back("floor end to end", &p.floor.e2e);
    fr.emplace_back("spikeflow end to end", &p.spikeflow.e2e);
    write_table(o, "floor vs spikeflow", fr,
                {{"difference (spikeflow - floor)", {&p.spikeflow.e2e, &p.floor.e2e}}});
  }
  if (p.has_in_process && p.has_floor) {
    write_table(o, "in-process consumer",
                {{"in-process end to end", &p.in_process.e2e},
                 {"floor UDP one-way", &p.floor.send_to_arrival}},
                {{"difference (in-process - UDP floor)",
                  {&p.in_process.e2e, &p.floor.send_to_arrival}}});
  }
  if (p.has_hot_loop) {
    write_table(o, "decode",
                {{"live decode stage", &p.spikeflow.decode},
                 {"hot loop", &p.hot_decode},
                 {"paced loop", &p.paced_decode}},
                {{"live - hot loop", {&p.spikeflow.decode, &p.hot_decode}},
                 {"live - paced loop", {&p.spikeflow.decode, &p.paced_decode}}});
  }
  for (const auto& v : p.variants) {
    std::vector<std::pair<std::string, std::pair<const LatencyHistogram*, const LatencyHistogram*>>>
        d{{"vs spikeflow", {&v.e2e, &p.spikeflow.e2e}}};
    if (p.has_floor) d.push_back({"vs floor", {&v.e2e, &p.floor.e2e}});
    write_table(o, "variant " + v.label + " [" + v.overrides + "]", {{"end to end", &v.e2e}}, d);
  }
}

std::string json_hist(const LatencyHistogram& h) {
  std::string s = fmt::format("{{\"count\": {}", h.count());
  for (size_t i = 0; i < std::size(kProfileQuantiles); ++i)
    s += fmt::format(", \"{}_us\": {:.3f}", kProfileQuantileNames[i], us_at(h, kProfileQuantiles[i]));
  return s + "}";
}

std::string json_string(const std::string& v) {
  std::string s = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') s += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      s += fmt::format("\\u{:04x}", c);
      continue;
    }
    s += c;
  }
  return s + "\"";
}

std::string json_run(const ProfileRun& r) {
  return fmt::format(
      "{{\"label\": {}, \"overrides\": {}, \"chunks\": {}, \"received\": {}, "
      "\"deadline_closed\": {}, \"warmups\": {}, \"spins\": {}, \"spin_caught\": {}, "
      "\"send_to_arrival\": {}, \"close\": {}, \"queue\": {}, "
      "\"decode\": {}, \"publish\": {}, \"arrival_to_publish\": {}, \"deliver\": {}, "
      "\"e2e\": {}}}",
      json_string(r.label), json_string(r.overrides), r.chunks, r.received, r.deadline_closed,
      r.warmups, r.spins, r.spin_caught, json_hist(r.send_to_arrival), json_hist(r.close),
      json_hist(r.queue), json_hist(r.decode), json_hist(r.publish), json_hist(r.pipeline),
      json_hist(r.deliver), json_hist(r.e2e));
}

}  // namespace

void write_profile_report(const std::string& path, const ProfileResult& result) {
  std::ofstream o(path);
  if (!o) throw std::runtime_error(path + ": cannot write the report");
  o << "<!doctype html><html><head><meta charset=utf-8><title>spikeflow profile</title><style>"
       "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:8px 0}"
       "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
       "pre{background:#f6f6f6;padding:8px}</style></head><body>"
       "<h1>spikeflow latency profile</h1>"
       "<p>Floor: the same sender and subscriber processes with a bare UDP-to-ZeroMQ relay in "
       "the middle, measured in the same run. Difference = spikeflow minus floor, per "
       "percentile.</p><pre>"
    << result.text << "</pre>";
  write_latency_vs_load_svg(o, result.points);
  for (const auto& p : result.points) write_load_point_html(o, p);
  o << "</body></html>\n";
  if (!o) throw std::runtime_error(path + ": cannot write the report");
}

void write_profile_json(const std::string& path, const ProfileResult& result) {
  std::ofstream o(path);
  if (!o) throw std::runtime_error(path + ": cannot write the JSON");
  o << "{\"header\": " << json_string(result.header) << ", \"points\": [";
  for (size_t i = 0; i < result.points.size(); ++i) {
    const auto& p = result.points[i];
    o << (i ? ", " : "")
      << fmt::format("{{\"channels\": {}, \"events_per_s\": {:.1f}, \"decoder\": {}, "
                     "\"spikeflow\": {}",
                     p.channels, p.events_per_s, json_string(p.decoder), json_run(p.spikeflow));
    if (p.has_floor) o << ", \"floor\": " << json_run(p.floor);
    if (p.has_in_process) o << ", \"in_process\": " << json_run(p.in_process);
    if (p.has_hot_loop) {
      o << ", \"hot_loop_decode\": " << json_hist(p.hot_decode)
        << ", \"paced_loop_decode\": " << json_hist(p.paced_decode);
    }
    o << ", \"variants\": [";
    for (size_t v = 0; v < p.variants.size(); ++v) o << (v ? ", " : "") << json_run(p.variants[v]);
    o << "]}";
  }
  o << "]}\n";
  if (!o) throw std::runtime_error(path + ": cannot write the JSON");
}

}  // namespace spikeflow::pipeline

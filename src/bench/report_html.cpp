// report.html: one self-contained page (inline CSS and SVG charts, no scripts or external assets)
// over report.json: the verdict, the workload, the comparison, the charts, the per-seed table.

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "llmgw/bench/class_report.hpp"
#include "llmgw/bench/report.hpp"
#include "report_internal.hpp"

namespace llmgw::bench {
namespace {

using detail::milliseconds;
using detail::number_at;
using detail::object_at;
using nlohmann::json;

constexpr std::array<std::string_view, 6> kPalette = {"#1f77b4", "#d62728", "#2ca02c",
                                                      "#9467bd", "#ff7f0e", "#8c564b"};

std::string_view colour(std::size_t index) {
  return kPalette[index % kPalette.size()];
}

// Cumulative distribution of TTFT per mode, from the quantiles stored in the report.
std::string ttft_cdf_svg(const json& modes) {
  constexpr double width = 640;
  constexpr double height = 320;
  constexpr double left = 56;
  constexpr double bottom = 40;
  constexpr double top = 16;
  constexpr double right = 140;
  double max_ttft = 0.0;
  for (const auto& mode : modes) {
    for (const auto& value : mode.value("ttft_quantiles", json::array())) {
      max_ttft = std::max(max_ttft, value.get<double>());
    }
  }
  if (max_ttft <= 0.0) {
    max_ttft = 1.0;
  }
  const double plot_w = width - left - right;
  const double plot_h = height - top - bottom;
  std::string svg =
      fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img">)"
                  R"(<title>TTFT cumulative distribution</title>)",
                  width, height);
  // Axes and grid.
  for (int i = 0; i <= 4; ++i) {
    const double y = top + plot_h * (1.0 - i / 4.0);
    const double x = left + plot_w * i / 4.0;
    svg +=
        fmt::format(R"(<line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" stroke="#ddd"/>)"
                    R"(<text x="{3}" y="{4:.1f}" font-size="11" text-anchor="end">{5:.2f}</text>)"
                    R"(<line x1="{6:.1f}" y1="{7}" x2="{6:.1f}" y2="{8}" stroke="#ddd"/>)"
                    R"(<text x="{6:.1f}" y="{9}" font-size="11" text-anchor="middle">{10}</text>)",
                    left, y, left + plot_w, left - 6, y + 4, i / 4.0, x, top, top + plot_h,
                    top + plot_h + 16, milliseconds(max_ttft * i / 4.0));
  }
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="12" text-anchor="middle">TTFT (ms)</text>)"
                     R"svg(<text x="14" y="{}" font-size="12" transform="rotate(-90 14 {})")svg"
                     R"( text-anchor="middle">fraction of requests</text>)",
                     left + plot_w / 2, height - 6, top + plot_h / 2, top + plot_h / 2);
  std::size_t index = 0;
  for (const auto& mode : modes) {
    const auto quantiles = mode.value("ttft_quantiles", json::array());
    std::string points;
    for (std::size_t i = 0; i < quantiles.size(); ++i) {
      const double fraction =
          quantiles.size() > 1 ? static_cast<double>(i) / static_cast<double>(quantiles.size() - 1)
                               : 1.0;
      const double x = left + plot_w * quantiles[i].get<double>() / max_ttft;
      const double y = top + plot_h * (1.0 - fraction);
      points += fmt::format("{:.1f},{:.1f} ", x, y);
    }
    svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)"
                       R"(<rect x="{}" y="{}" width="12" height="12" fill="{}"/>)"
                       R"(<text x="{}" y="{}" font-size="12">{}</text>)",
                       colour(index), points, width - right + 12,
                       top + 18.0 * static_cast<double>(index), colour(index), width - right + 30,
                       top + 10 + 18.0 * static_cast<double>(index),
                       html_escape(mode.value("mode", "")));
    ++index;
  }
  return svg + "</svg>";
}

// Grouped bars: each node's share of the requests per mode, with the even share marked.
std::string node_share_svg(const json& modes) {
  std::vector<std::string> nodes;
  for (const auto& mode : modes) {
    for (const auto& [node, share] : object_at(mode, "node_share").items()) {
      if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) {
        nodes.push_back(node);
      }
    }
  }
  std::sort(nodes.begin(), nodes.end());
  constexpr double height = 300;
  constexpr double left = 56;
  constexpr double top = 16;
  constexpr double bottom = 56;
  const double group_w = std::max(60.0, 24.0 * static_cast<double>(modes.size()) + 20.0);
  const double width =
      left + group_w * static_cast<double>(std::max<std::size_t>(nodes.size(), 1)) + 150;
  const double plot_h = height - top - bottom;
  double max_share = 0.0;
  for (const auto& mode : modes) {
    for (const auto& [node, share] : object_at(mode, "node_share").items()) {
      max_share = std::max(max_share, share.get<double>());
    }
  }
  max_share = max_share > 0.0 ? std::min(1.0, max_share * 1.15) : 1.0;
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="{}" role="img">)"
      R"(<title>Per-node share of requests</title>)",
      width, height);
  for (int i = 0; i <= 4; ++i) {
    const double y = top + plot_h * (1.0 - i / 4.0);
    svg +=
        fmt::format(R"(<line x1="{0}" y1="{1:.1f}" x2="{2:.1f}" y2="{1:.1f}" stroke="#ddd"/>)"
                    R"(<text x="{3}" y="{4:.1f}" font-size="11" text-anchor="end">{5:.0f}%</text>)",
                    left, y, width - 150, left - 6, y + 4, max_share * i / 4.0 * 100.0);
  }
  if (!nodes.empty()) {
    const double even = 1.0 / static_cast<double>(nodes.size());
    const double y = top + plot_h * (1.0 - even / max_share);
    svg += fmt::format(
        R"(<line x1="{0}" y1="{1:.1f}" x2="{2:.1f}" y2="{1:.1f}" stroke="#555")"
        R"( stroke-dasharray="4 3"/><text x="{3:.1f}" y="{4:.1f}" font-size="11">even share</text>)",
        left, y, width - 150, width - 146, y + 4);
  }
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const double group_x = left + group_w * static_cast<double>(n);
    std::size_t index = 0;
    for (const auto& mode : modes) {
      const auto shares = mode.value("node_share", json::object());
      const double share = number_at(shares, nodes[n]);
      const double bar_h = plot_h * share / max_share;
      svg += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="20" height="{:.1f}" fill="{}">)"
                         R"(<title>{} {}: {:.1f}%</title></rect>)",
                         group_x + 10 + 24.0 * static_cast<double>(index), top + plot_h - bar_h,
                         bar_h, colour(index), html_escape(mode.value("mode", "")),
                         html_escape(nodes[n]), share * 100.0);
      ++index;
    }
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{}</text>)",
                       group_x + group_w / 2, top + plot_h + 16, html_escape(nodes[n]));
  }
  std::size_t index = 0;
  for (const auto& mode : modes) {
    svg += fmt::format(R"(<rect x="{:.1f}" y="{}" width="12" height="12" fill="{}"/>)"
                       R"(<text x="{:.1f}" y="{}" font-size="12">{}</text>)",
                       width - 130, top + 18.0 * static_cast<double>(index), colour(index),
                       width - 112, top + 10 + 18.0 * static_cast<double>(index),
                       html_escape(mode.value("mode", "")));
    ++index;
  }
  return svg + "</svg>";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// The best mode by `value` (lower or higher is better) and the next best, as indices into modes.
std::pair<std::size_t, std::size_t> best_two(const json& modes,
                                             const std::function<double(const json&)>& value,
                                             bool lower_is_better) {
  std::vector<std::size_t> order(modes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return lower_is_better ? value(modes[a]) < value(modes[b]) : value(modes[a]) > value(modes[b]);
  });
  return {order[0], order[1]};
}

}  // namespace

std::string render_verdict(const json& report) {
  const json modes = report.value("modes", json::array());
  if (modes.empty()) {
    return "No mode ran.";
  }
  const auto name = [&](std::size_t i) { return html_escape(modes[i].value("mode", "")); };
  const std::size_t seeds = modes[0].value("seeds", std::size_t{0});
  if (modes.size() == 1) {
    return fmt::format("One mode ran ({}) over {} seed{}: nothing to compare it with.", name(0),
                       seeds, seeds == 1 ? "" : "s");
  }
  const auto ttft = [](const json& m) { return number_at(m.value("ttft", json::object()), "p50"); };
  const auto wall = [](const json& m) {
    return number_at(m.value("wall_time_s", json::object()), "mean");
  };
  const auto reuse = [](const json& m) { return number_at(m, "cache_reuse"); };
  const auto times = [](double worse, double better) {
    return better > 0 ? fmt::format("{:.1f}×", worse / better) : std::string{"∞×"};
  };
  const auto [t1, t2] = best_two(modes, ttft, true);
  const auto [w1, w2] = best_two(modes, wall, true);
  const auto [r1, r2] = best_two(modes, reuse, false);
  return fmt::format(
      "Over {} seed{}: <b>{}</b> won on time to first token (p50 {} ms, {} faster than {} at {} "
      "ms), <b>{}</b> on wall time ({:.2f} s against {:.2f} s for {}, {} faster), and <b>{}</b> "
      "on cache reuse ({:.3f} against {:.3f} for {}).",
      seeds, seeds == 1 ? "" : "s", name(t1), milliseconds(ttft(modes[t1])),
      times(ttft(modes[t2]), ttft(modes[t1])), name(t2), milliseconds(ttft(modes[t2])), name(w1),
      wall(modes[w1]), wall(modes[w2]), name(w2), times(wall(modes[w2]), wall(modes[w1])), name(r1),
      reuse(modes[r1]), reuse(modes[r2]), name(r2));
}

std::string render_html(const json& report) {
  const json modes = report.value("modes", json::array());
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>llmgw bench report</title><style>"
      "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}"
      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
      "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
      "code{background:#f4f4f4;padding:1px 4px}"
      // A long value (a JSON list of models, a system prompt) wraps instead of pushing the page
      // wider; wide tables scroll inside their own box.
      "#workload{table-layout:fixed;width:100%}#workload td{text-align:left;"
      "overflow-wrap:anywhere}#workload th{width:14em}.wide{overflow-x:auto;max-width:100%}"
      ".verdict{font-size:1.1em;line-height:1.5}</style></head><body>\n"
      "<h1>llmgw bench</h1>\n<p class=\"verdict\">" +
      render_verdict(report) + "</p>\n<h2>Workload</h2>\n<table id=\"workload\">";
  for (const auto& [key, value] : object_at(report, "workload").items()) {
    html += fmt::format("<tr><th>{}</th><td>{}</td></tr>", html_escape(key),
                        html_escape(value.is_string() ? value.get<std::string>() : value.dump()));
  }
  html +=
      "</table>\n<h2>Comparison (all seeds pooled)</h2>\n<div "
      "class=\"wide\"><table><tr><th>mode</th>"
      "<th>TTFT p50 ms</th><th>TTFT p90 ms</th><th>TTFT p99 ms</th><th>latency p50 ms</th>"
      "<th>latency p99 ms</th><th>req/s</th><th>tokens/s</th><th>wall s (mean)</th>"
      "<th>wall s (min–max)</th><th>cache reuse</th><th>ideal</th><th>node max/mean</th>"
      "<th>errors</th><th>seeds</th></tr>";
  for (const auto& mode : modes) {
    const auto ttft = mode.value("ttft", json::object());
    const auto latency = mode.value("latency", json::object());
    const auto throughput = mode.value("throughput", json::object());
    const auto wall = mode.value("wall_time_s", json::object());
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}</td>"
        "<td>{:.1f}</td><td>{:.2f}</td><td>{:.2f}–{:.2f}</td><td>{:.3f}</td><td>{:.3f}</td>"
        "<td>{:.2f}</td><td>{}</td><td>{}</td></tr>",
        html_escape(mode.value("mode", "")), milliseconds(number_at(ttft, "p50")),
        milliseconds(number_at(ttft, "p90")), milliseconds(number_at(ttft, "p99")),
        milliseconds(number_at(latency, "p50")), milliseconds(number_at(latency, "p99")),
        number_at(throughput, "requests_per_s"), number_at(throughput, "tokens_per_s"),
        number_at(wall, "mean"), number_at(wall, "min"), number_at(wall, "max"),
        number_at(mode, "cache_reuse"), number_at(mode, "cache_reuse_ideal"),
        number_at(mode, "node_share_max_over_mean"), mode.value("errors", 0),
        mode.value("seeds", 0));
  }
  html +=
      "</table></div>\n<h2>Time to first token</h2>\n" + ttft_cdf_svg(modes) +
      "\n<h2>Per-node share of requests</h2>\n" + node_share_svg(modes) +
      "\n<h2>Per seed</h2>\n<p>Where sessions land depends on their ids, so each seed places "
      "them differently; the spread between seeds is part of the result.</p>\n"
      "<div class=\"wide\"><table><tr><th>mode</th><th>seed</th><th>wall s</th><th>TTFT p50 ms</th>"
      "<th>TTFT p99 ms</th><th>req/s</th><th>cache reuse</th><th>node max/mean</th>"
      "<th>node share</th><th>sessions per node</th><th>errors</th></tr>";
  for (const auto& mode : modes) {
    for (const auto& seed : mode.value("per_seed", json::array())) {
      std::string shares;
      for (const auto& [node, share] : object_at(seed, "node_share").items()) {
        shares += fmt::format("{}{} {:.0f}%", shares.empty() ? "" : ", ", html_escape(node),
                              share.get<double>() * 100.0);
      }
      std::string sessions;
      for (const auto& [node, count] : object_at(seed, "sessions_per_node").items()) {
        sessions += fmt::format("{}{:.0f}", sessions.empty() ? "" : " : ", count.get<double>());
      }
      const auto ttft = seed.value("ttft", json::object());
      html += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{}</td><td>{}</td><td>{:.2f}</td>"
          "<td>{:.3f}</td><td>{:.2f}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
          html_escape(mode.value("mode", "")), seed.value("seed", std::uint64_t{0}),
          number_at(seed, "wall_time_s"), milliseconds(number_at(ttft, "p50")),
          milliseconds(number_at(ttft, "p99")),
          number_at(seed.value("throughput", json::object()), "requests_per_s"),
          number_at(seed, "cache_reuse"), number_at(seed, "node_share_max_over_mean"), shares,
          sessions, seed.value("errors", 0));
    }
  }
  html += "</table></div>\n" + render_class_html(report);
  html +=
      "<p>Generated by <code>llmgw bench</code>; the same figures are in "
      "<code>report.json</code> and every request in <code>requests.csv</code>.</p>\n"
      "</body></html>\n";
  return html;
}

}  // namespace llmgw::bench

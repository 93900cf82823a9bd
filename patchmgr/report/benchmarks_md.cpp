#include "patchmgr/report/benchmarks_md.h"

#include <algorithm>

#include <fmt/format.h>

#include "patchmgr/report/fingerprint.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {
namespace {

using bench::Result;
using bench::Row;

std::string cell(std::string text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

std::string speed(double x) { return x >= 10 ? fmt::format("{:.1f}x", x) : fmt::format("{:.2f}x", x); }
std::string gb(int64_t bytes) { return fmt::format("{:.2f}", double(bytes) / 1e9); }

std::string stemkit_config(const Row& r) {
  std::string s = fmt::format("{}, batch {}", r.precision, r.batch_size);
  if (r.graphs) s += *r.graphs ? ", graphs on" : ", graphs off";
  if (!r.mode.empty()) s += ", " + r.mode;
  return s;
}

std::string upstream_config(const Row& r) {
  // A mode that names the batch already says it all ("MSST demix, fp16 autocast, batch 4").
  if (r.mode.find("batch") != std::string::npos) return r.mode;
  std::string s = r.precision == "fp32" ? "fp32" : r.precision + " autocast";
  s += fmt::format(", batch {}", r.batch_size);
  if (!r.mode.empty()) s += ", " + r.mode;
  return s;
}

// "NVIDIA H100 (SM 9.0), Half, keys >= 512: cudnn (reason); ..., keys < 512: efficient (reason)"
// -> "attention cudnn (keys >= 512), efficient (keys < 512)".
std::string attention_summary(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("; ", start);
    std::string d = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? text.size() : end + 2;
    size_t keys = d.find(", keys ");
    size_t colon = d.find(": ", keys == std::string::npos ? 0 : keys);
    if (colon == std::string::npos) continue;
    std::string backend = d.substr(colon + 2, d.find(" (", colon) - colon - 2);
    parts.push_back(keys == std::string::npos ? backend
                                              : fmt::format("{} ({})", backend, d.substr(keys + 2, colon - keys - 2)));
  }
  if (parts.empty()) return {};
  if (parts.size() == 1) return "attention " + parts[0].substr(0, parts[0].find(" ("));
  return fmt::format("attention {}", fmt::join(parts, ", "));
}

std::string memory(const Row& r, bool gpu) {
  if (r.peak_reserved && *r.peak_reserved > 0)
    return r.peak_allocated ? fmt::format("{} GB ({} allocated)", gb(*r.peak_reserved), gb(*r.peak_allocated))
                            : fmt::format("{} GB", gb(*r.peak_reserved));
  if (r.peak_allocated && *r.peak_allocated > 0) return fmt::format("{} GB allocated", gb(*r.peak_allocated));
  return gpu ? "not measured" : "n/a (CPU)";
}

// The fastest successful row, of one precision when `precision` is given.
const Row* fastest(const std::vector<Row>& rows, const std::string& precision = "") {
  const Row* best = nullptr;
  for (const auto& r : rows)
    if (r.realtime && (precision.empty() || r.precision == precision) && (!best || *r.realtime > *best->realtime))
      best = &r;
  return best;
}

// The fastest successful row that reserved no more than `bytes` of GPU memory.
const Row* fastest_within(const std::vector<Row>& rows, int64_t bytes) {
  const Row* best = nullptr;
  for (const auto& r : rows)
    if (r.realtime && r.peak_reserved && *r.peak_reserved > 0 && *r.peak_reserved <= bytes &&
        (!best || *r.realtime > *best->realtime))
      best = &r;
  return best;
}

bool is_stale(const Manifest& m, const Result& r) { return r.fingerprint_component != component_fingerprint(m); }

std::string link(const Result& r, const std::filesystem::path& root) {
  std::string path = display_path(r.file, root);
  return fmt::format("[`{}`]({})", r.file.filename().string(), path);
}

std::string machine_text(const Result& r) {
  std::vector<std::string> details;
  if (!r.machine.driver.empty()) details.push_back("driver " + r.machine.driver);
  if (!r.machine.gpu_memory.empty()) details.push_back(r.machine.gpu_memory);
  if (!r.machine.cpu.empty() && !r.machine.gpu.empty()) details.push_back(r.machine.cpu);
  if (r.machine.cores > 0 && !r.machine.gpu.empty()) details.push_back(fmt::format("{} cores", r.machine.cores));
  if (!r.machine.os.empty()) details.push_back(r.machine.os);
  return details.empty() ? r.machine.label : fmt::format("{} ({})", r.machine.label, fmt::join(details, ", "));
}

// Up to this many rows, the table is shown as it is; more are folded under a summary.
constexpr size_t kUnfoldedRows = 8;

const Row* least_memory(const std::vector<Row>& rows) {
  const Row* best = nullptr;
  for (const auto& r : rows)
    if (r.realtime && r.peak_reserved && *r.peak_reserved > 0 && (!best || *r.peak_reserved < *best->peak_reserved))
      best = &r;
  return best;
}

// "41.3x at 5.58 GB (MSST demix, fp16 autocast, batch 4)"
std::string side_cell(const Row* row, const std::string& config) {
  if (!row) return "";
  std::string s = speed(*row->realtime);
  if (row->peak_reserved && *row->peak_reserved > 0) s += fmt::format(" at {} GB", gb(*row->peak_reserved));
  return cell(fmt::format("{} ({})", s, config));
}

std::string failure_cell(const std::vector<Row>& rows, const std::string& precision) {
  for (const auto& r : rows)
    if (r.precision == precision && !r.error.empty()) {
      std::string e = r.error;
      if (e.size() > 100) e = e.substr(0, e.rfind(' ', 100)) + " ...";
      return cell("failed: " + e);
    }
  return "not run";
}

// One line per precision with each side's fastest configuration, one with
// stemkit's fastest within the memory of upstream's fastest, and one with each
// side's least GPU memory: what the users' hand-written table showed.
std::string at_a_glance(const Result& r, bool gpu) {
  std::vector<std::string> precisions;
  for (const auto* side : {&r.runtime, &r.upstream})
    for (const auto& row : *side)
      if (std::find(precisions.begin(), precisions.end(), row.precision) == precisions.end())
        precisions.push_back(row.precision);
  std::string out = "| | upstream | stemkit | stemkit / upstream |\n|---|---|---|---|\n";
  for (const auto& p : precisions) {
    const Row* s = fastest(r.runtime, p);
    const Row* u = fastest(r.upstream, p);
    std::string ratio = s && u ? fmt::format("{:.2f}x", *s->realtime / *u->realtime) : "";
    out += fmt::format("| fastest {} | {} | {} | {} |\n", p,
                       u                ? side_cell(u, upstream_config(*u))
                       : r.has_upstream ? failure_cell(r.upstream, p)
                                        : "",
                       s ? side_cell(s, stemkit_config(*s)) : failure_cell(r.runtime, p), ratio);
  }
  if (gpu) {
    // The comparison our users' table is about: stemkit's fastest configuration,
    // of any precision, that reserves no more GPU memory than upstream's fastest.
    const Row* u = fastest(r.upstream);
    const Row* s =
        u && u->peak_reserved && *u->peak_reserved > 0 ? fastest_within(r.runtime, *u->peak_reserved) : nullptr;
    if (s)
      out +=
          fmt::format("| fastest within upstream's memory | {} | {} | {:.2f}x |\n", side_cell(u, upstream_config(*u)),
                      side_cell(s, stemkit_config(*s)), *s->realtime / *u->realtime);
    const Row* s_least = least_memory(r.runtime);
    const Row* u_least = least_memory(r.upstream);
    if (s_least || u_least)
      out += fmt::format("| least GPU memory | {} | {} | |\n",
                         u_least ? side_cell(u_least, upstream_config(*u_least)) : "",
                         s_least ? side_cell(s_least, stemkit_config(*s_least)) : "");
  }
  return out + "\n";
}

// One result in full: what ran where, its rows, the fastest of each side.
std::string render_result(const Manifest& m, const Result& r, const std::filesystem::path& root,
                          const std::string& title) {
  const bool gpu = !r.machine.gpu.empty();
  const bool stale = is_stale(m, r);
  std::string out = fmt::format("{}, {}: {}, on {}", title, link(r, root), r.date, machine_text(r));
  std::vector<std::string> software;
  if (!r.libtorch.empty()) software.push_back("stemkit on libtorch " + r.libtorch);
  if (!r.torch.empty()) software.push_back("upstream on PyTorch " + r.torch);
  if (!software.empty()) out += fmt::format("; {}", fmt::join(software, ", "));
  out += fmt::format("; a {:g} s track{}", r.seconds, r.synthetic ? " (synthetic)" : "");
  if (!r.model.empty()) out += fmt::format(", model `{}`", r.model);
  if (r.repeats > 1) out += fmt::format(", the median of {} timed runs per row", r.repeats);
  if (stale)
    out += fmt::format(
        "; patch set `{}`. **Stale**: the {} pin or patches have changed since; run `patchmgr bench {} "
        "--against-upstream` again.\n\n",
        r.fingerprint_id, m.name, m.name);
  else
    out +=
        fmt::format("; patch set `{}`, the {} patches of the manifest as they are now.\n\n", r.fingerprint_id, m.name);

  const Row* best_stemkit = fastest(r.runtime);
  const Row* best_upstream = fastest(r.upstream);
  // Many configurations: first the users' kind of table, one line per precision
  // (each side's fastest) and one for the least memory, then every row folded.
  const size_t rows = r.runtime.size() + r.upstream.size();
  const bool folded = rows > kUnfoldedRows;
  if (folded) {
    out += at_a_glance(r, gpu);
    out += fmt::format("<details><summary>All {} configurations</summary>\n\n", rows);
  }
  out += "| Mode | Speed (x realtime) | Peak GPU memory | Notes |\n|---|---|---|---|\n";
  for (const auto& row : r.runtime) {
    std::vector<std::string> notes;
    if (row.realtime_with_io) notes.push_back(speed(*row.realtime_with_io) + " with decoding and encoding");
    if (std::string a = attention_summary(row.attention); !a.empty()) notes.push_back(a);
    if (row.graphs && *row.graphs && !row.graphs_status.empty() && row.graphs_status.rfind("replaying", 0) != 0)
      notes.push_back("graphs not captured: " + row.graphs_status);
    if (!row.notes.empty()) notes.push_back(row.notes);
    if (!row.error.empty()) notes.push_back("failed: " + row.error.substr(0, 160));
    std::string s = row.realtime ? speed(*row.realtime) : "failed";
    if (&row == best_stemkit) s = "**" + s + "**";
    out += fmt::format("| stemkit {} | {} | {} | {} |\n", stemkit_config(row), s, row.realtime ? memory(row, gpu) : "",
                       cell(fmt::format("{}", fmt::join(notes, "; "))));
  }
  for (const auto& row : r.upstream) {
    std::vector<std::string> notes;
    if (!row.notes.empty()) notes.push_back(row.notes);
    if (!row.error.empty()) notes.push_back("failed: " + row.error.substr(0, 160));
    std::string s = row.realtime ? speed(*row.realtime) : "failed";
    if (&row == best_upstream) s = "**" + s + "**";
    out += fmt::format("| upstream {} | {} | {} | {} |\n", upstream_config(row), s,
                       row.realtime ? memory(row, gpu) : "", cell(fmt::format("{}", fmt::join(notes, "; "))));
  }
  out += "\n";
  if (folded) out += "</details>\n\n";
  if (best_stemkit && best_upstream)
    out += fmt::format("Fastest: stemkit {} at {}, {:.2f} times upstream's fastest ({}, {}).\n\n",
                       stemkit_config(*best_stemkit), speed(*best_stemkit->realtime),
                       *best_stemkit->realtime / *best_upstream->realtime, upstream_config(*best_upstream),
                       speed(*best_upstream->realtime));
  else if (!r.has_upstream)
    out += fmt::format("No upstream rows in this run (`patchmgr bench {} --against-upstream` adds them).\n\n", m.name);
  if (!r.imported.empty()) out += fmt::format("Imported: {}\n\n", r.imported);
  for (const auto& n : r.notes) out += fmt::format("Note: {}\n\n", n);

  return out;
}

}  // namespace

std::string render_benchmarks(const Manifest& m, const std::vector<const Result*>& results,
                              const std::filesystem::path& root) {
  std::string out = "### Benchmarks\n\n";
  if (results.empty()) {
    out += fmt::format(
        "No benchmark results recorded yet: `patchmgr bench {} --against-upstream` measures the runtime and the "
        "upstream on one track.\n\n",
        m.name);
    return out;
  }
  // The newest result of each kind of machine in full, a GPU's first: a CPU
  // run after a GPU's must not hide the GPU's figures (nor the other way).
  const Result* newest_gpu = nullptr;
  const Result* newest_cpu = nullptr;
  for (const Result* r : results) (r->machine.gpu.empty() ? newest_cpu : newest_gpu) = r;
  const bool both = newest_gpu && newest_cpu;
  if (newest_gpu) out += render_result(m, *newest_gpu, root, both ? "Newest result on a GPU" : "Newest result");
  if (newest_cpu) out += render_result(m, *newest_cpu, root, both ? "Newest result on the CPU" : "Newest result");

  if (results.size() > (both ? 2u : 1u)) {
    out += "History, newest first:\n\n";
    for (auto it = results.rbegin(); it != results.rend(); ++it) {
      if (*it == newest_gpu || *it == newest_cpu) continue;
      const Result& h = **it;
      std::string line = fmt::format("- {}, {}: ", h.date, h.machine.label);
      const Row* bs = fastest(h.runtime);
      const Row* bu = fastest(h.upstream);
      line +=
          bs ? fmt::format("stemkit {} ({})", speed(*bs->realtime), stemkit_config(*bs)) : "stemkit: no successful row";
      if (bu) line += fmt::format(", upstream {} ({})", speed(*bu->realtime), upstream_config(*bu));
      line += fmt::format("; {:g} s track; {}", h.seconds, link(h, root));
      if (!h.imported.empty()) line += " (imported)";
      if (is_stale(m, h)) line += " (stale: other patches than now)";
      out += line + "\n";
    }
    out += "\n";
  }
  return out;
}

}  // namespace patchmgr

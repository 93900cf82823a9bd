#include "patchmgr/pipeline/pipeline.h"

#include <chrono>
#include <map>
#include <set>

#include <fmt/format.h>

#include "patchmgr/checkout/apply.h"
#include "patchmgr/checkout/check.h"
#include "patchmgr/checkout/sync.h"
#include "patchmgr/report/junit.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {

ExitCode PipelineReport::code() const {
  ExitCode c = ExitCode::ok;
  for (const auto& s : stages)
    if (s.result == StageResult::Result::failed) c = worst(c, s.code == ExitCode::ok ? ExitCode::failed : s.code);
  return c;
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Runs `body` as one stage; an Error is the stage's failure.
template <typename F>
StageResult stage(const Context& ctx, const std::string& name, const std::string& component, F&& body) {
  StageResult r;
  r.stage = name;
  r.component = component;
  auto t = Clock::now();
  try {
    body(r);
  } catch (const Error& e) {
    r.result = StageResult::Result::failed;
    r.code = e.code();
    r.detail = e.what();
    r.message = first_line(r.detail);
    *ctx.err << "patchmgr: " << e.what() << "\n";
  } catch (const std::exception& e) {
    r.result = StageResult::Result::failed;
    r.code = ExitCode::failed;
    r.detail = r.message = fmt::format("internal error: {}", e.what());
    *ctx.err << "patchmgr: " << r.detail << "\n";
  }
  r.seconds = since(t);
  return r;
}

StageResult skipped(const std::string& name, const std::string& component, const std::string& why) {
  StageResult r;
  r.stage = name;
  r.component = component;
  r.result = StageResult::Result::skipped;
  r.message = why;
  return r;
}

}  // namespace

PipelineReport run_pipeline(const Context& ctx, const std::vector<Manifest>& manifests, const PipelineOptions& o) {
  PipelineReport report;
  std::ostream& out = *ctx.out;
  std::map<std::string, std::string> broken;  // component -> the stage that failed
  auto heading = [&](const std::string& s) {
    out << fmt::format("\n== {} ==\n", s);
    out.flush();
  };
  auto add = [&](StageResult r) {
    if (r.result == StageResult::Result::failed && !broken.count(r.component)) broken[r.component] = r.stage;
    report.stages.push_back(std::move(r));
  };
  auto blocked = [&](const std::string& c) {
    return broken.count(c) ? fmt::format("{} failed for {}", broken.at(c), c) : std::string();
  };

  heading("sync");
  for (const auto& m : manifests)
    add(stage(ctx, "sync", m.name, [&](StageResult& r) {
      sync(ctx, m, {});
      r.message = fmt::format("at the pin {}", m.commit.substr(0, 12));
    }));
  heading("apply");
  for (const auto& m : manifests) {
    if (auto b = blocked(m.name); !b.empty()) {
      add(skipped("apply", m.name, b));
      continue;
    }
    add(stage(ctx, "apply", m.name, [&](StageResult& r) {
      apply(ctx, m, {});
      r.message = "the enabled patches are applied";
    }));
  }
  heading("build");
  BuildStepsOptions steps;
  steps.allow_mismatch = o.runtime.allow_mismatch;
  steps.log_dir = o.verify.log_dir;
  for (const auto& m : manifests) {
    if (auto b = blocked(m.name); !b.empty()) {
      add(skipped("build", m.name, b));
      continue;
    }
    if (m.build.empty()) {
      add(skipped("build", m.name, fmt::format("{} has no build steps", display_path(m.path, ctx.root))));
      out << m.name << ": build skipped: " << report.stages.back().message << "\n";
      continue;
    }
    add(stage(ctx, "build", m.name, [&](StageResult& r) {
      auto outcomes = run_build_steps(ctx, m, steps);
      size_t ran = 0;
      for (const auto& s : outcomes) ran += s.result == StepOutcome::Result::ok;
      r.message =
          fmt::format("{} of {} steps ran, {} skipped by their condition", ran, outcomes.size(), outcomes.size() - ran);
    }));
  }

  heading("build runtime");
  bool runtime_ok = false;
  std::string runtime_why;
  std::filesystem::path build_dir =
      o.runtime.build_dir.empty() ? default_build_dir(ctx.root, o.runtime.flavor) : o.runtime.build_dir;
  if (!has_runtime_sources(ctx.root)) {
    runtime_why = fmt::format("{} has no runtime/ to build", ctx.root.string());
    add(skipped("runtime", "runtime", runtime_why));
    out << "runtime: skipped: " << runtime_why << "\n";
  } else {
    std::vector<std::string> failed;
    for (const auto& m : manifests)
      if (broken.count(m.name)) failed.push_back(m.name);
    if (!failed.empty() && !o.runtime.allow_mismatch) {
      runtime_why = fmt::format("earlier stages failed for {}", fmt::join(failed, ", "));
      add(skipped("runtime", "runtime", runtime_why));
      out << "runtime: skipped: " << runtime_why << "\n";
    } else {
      StageResult r = stage(ctx, "runtime", "runtime", [&](StageResult& r) {
        RuntimeBuild b = build_runtime(ctx, manifests, o.runtime);
        build_dir = b.build_dir;
        r.message = fmt::format("{}; {}", b.torch.describe(), b.stamp.line(o.runtime.allow_mismatch));
      });
      runtime_ok = r.result == StageResult::Result::ok;
      if (!runtime_ok) runtime_why = "the runtime build failed";
      add(std::move(r));
    }
  }

  heading("verify");
  VerifyOptions vo = o.verify;
  vo.build_dir = build_dir;
  for (const auto& m : manifests) {
    if (!m.verify.present) {
      add(skipped("verify", m.name, fmt::format("{} has no verify section", display_path(m.path, ctx.root))));
      out << m.name << ": verify skipped: " << report.stages.back().message << "\n";
      continue;
    }
    if (!runtime_ok) {
      add(skipped("verify", m.name, runtime_why));
      out << m.name << ": verify skipped: " << runtime_why << "\n";
      continue;
    }
    add(stage(ctx, "verify", m.name, [&](StageResult& r) {
      VerifyReport v = verify(ctx, manifests, m, vo);
      out << verify_text(v);
      r.detail = verify_text(v);
      r.message = fmt::format("{}: {}", to_string(v.result), first_line(v.detail));
      if (v.result == VerifyReport::Result::skipped) r.result = StageResult::Result::skipped;
      if (!v.ok()) r.result = StageResult::Result::failed, r.code = ExitCode::failed;
    }));
  }

  heading(fmt::format("check against {}", o.against));
  for (const auto& m : manifests) {
    if (broken.count(m.name) && broken.at(m.name) == "sync") {
      add(skipped("check", m.name, blocked(m.name)));
      continue;
    }
    add(stage(ctx, "check", m.name, [&](StageResult& r) {
      CheckOptions co;
      co.against = o.against;
      CheckReport c = check(ctx, m, co);
      std::string text = check_text({c});
      out << text;
      r.detail = text;
      size_t fails = 0;
      for (const auto& p : c.patches) fails += p.result == PatchCheck::Result::fails;
      if (!c.ok()) {
        r.result = StageResult::Result::failed;
        r.code = ExitCode::failed;
        r.message = !c.error.empty() ? first_line(c.error)
                                     : fmt::format("{} patch{} no longer appl{} against {}", fails,
                                                   fails == 1 ? "" : "es", fails == 1 ? "ies" : "y", o.against);
      } else {
        size_t drifted = 0;  // offset, fuzz, 3-way, already upstream: green, but not exact
        for (const auto& p : c.patches) drifted += p.drift && p.drift->drift != Drift::applies;
        r.message = drifted ? fmt::format("no patch fails against {} ({}); {} only with drift (see the check output)",
                                          o.against, c.target.substr(0, 12), drifted)
                            : fmt::format("every patch applies against {} ({})", o.against, c.target.substr(0, 12));
      }
    }));
  }
  out << "\n" << pipeline_summary(report);
  if (!o.junit.empty()) {
    write_file_atomic(std::filesystem::absolute(o.junit), pipeline_junit(report));
    out << fmt::format("pipeline: JUnit report in {}\n", display_path(std::filesystem::absolute(o.junit), ctx.root));
  }
  return report;
}

std::string pipeline_summary(const PipelineReport& r) {
  std::string s = "pipeline summary\n";
  size_t failed = 0;
  for (const auto& st : r.stages) {
    const char* res = st.result == StageResult::Result::ok       ? "ok"
                      : st.result == StageResult::Result::failed ? "FAILED"
                                                                 : "skipped";
    failed += st.result == StageResult::Result::failed;
    s += fmt::format("  {:<8} {:<14} {:<8} {:>7.1f} s  {}\n", st.stage, st.component, res, st.seconds, st.message);
  }
  s += failed ? fmt::format("pipeline: {} stage{} failed\n", failed, failed == 1 ? "" : "s") : "pipeline: ok\n";
  return s;
}

std::string pipeline_junit(const PipelineReport& r) {
  std::vector<JUnitSuite> suites;
  std::map<std::string, size_t> index;
  for (const auto& st : r.stages) {
    if (!index.count(st.stage)) {
      index[st.stage] = suites.size();
      suites.push_back({fmt::format("pipeline {}", st.stage), {}});
    }
    JUnitCase c;
    c.classname = "patchmgr.pipeline." + st.stage;
    c.name = st.component;
    c.seconds = st.seconds;
    c.result = st.result == StageResult::Result::ok       ? JUnitCase::Result::passed
               : st.result == StageResult::Result::failed ? JUnitCase::Result::failed
                                                          : JUnitCase::Result::skipped;
    c.message = st.message;
    c.text = st.detail;
    if (st.result == StageResult::Result::ok) c.output = st.detail.empty() ? st.message : st.detail;
    suites[index[st.stage]].cases.push_back(std::move(c));
  }
  return junit_xml("patchmgr pipeline", suites);
}

}  // namespace patchmgr

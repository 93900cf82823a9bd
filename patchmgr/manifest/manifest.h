// The manifest schema: one YAML file per upstream component in manifests/.
// docs/manifest.md documents every key; load.cpp is the only place that reads
// YAML, and it validates all of it before anything else runs.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "patchmgr/git/patch_file.h"

namespace patchmgr {

inline constexpr int kManifestSchema = 1;

enum class PatchKind { source, runtime };
enum class PatchStatus { implemented, experimental, disabled, upstreamed };

// Where the change stands with the upstream project, after Debian's DEP-3
// (Forwarded) and Yocto's Upstream-Status. `unset`: the manifest says nothing.
enum class UpstreamStatus { unset, pending, submitted, accepted, backport, denied, inappropriate };

const char* to_string(PatchKind kind);
const char* to_string(PatchStatus status);
const char* to_string(UpstreamStatus status);

// What `patchmgr export` writes where a person must write the value (purpose,
// upstream_status of a patch it added): the manifest loads, `lint` rejects it.
inline constexpr const char* kPlaceholder = "TODO";

struct Finding {
  std::string date;  // YYYY-MM-DD, may be empty for an undated note
  std::string text;
};

struct Patch {
  std::string id;
  PatchKind kind = PatchKind::source;
  std::filesystem::path file;  // absolute path of the patch file (source patches)
  std::string file_field;      // the `file` value as written in the manifest
  std::string sha256;
  std::string title;
  std::string purpose;
  PatchStatus status = PatchStatus::implemented;
  bool enabled = true;             // applied by `apply` unless asked otherwise
  std::string since;               // YYYY-MM-DD
  std::vector<std::string> files;  // files the patch touches (or stands in for, runtime patches)
  std::string notes;
  std::vector<Finding> findings;
  UpstreamStatus upstream_status = UpstreamStatus::unset;
  std::string upstream_url;              // the pull request or mail (required for submitted)
  std::string upstream_commit;           // the upstream commit, 40 hex (required for accepted and backport)
  std::string upstream_reason;           // why it is not or cannot be upstream (required for denied and inappropriate)
  int line = 0;                          // manifest line of this entry, for messages
  int sha256_line = 0;                   // manifest line of the sha256 value (export rewrites it)
  std::map<std::string, int> key_lines;  // manifest line of each key of this entry (the writers edit values in place)

  git::PatchFile parsed;  // the parsed patch file (source patches)
};

// A shell command run for a component: a `build` step, or verify's
// `regenerate` (docs/manifest.md, "Build steps").
struct Step {
  std::string name;                        // lower-case slug, unique in the component's build list
  std::string run;                         // run with /bin/sh -c
  std::string when;                        // optional shell condition: the step runs only when it exits 0
  std::map<std::string, std::string> env;  // added to the environment
  std::string cwd;    // relative to the checkout (build) or the project root (regenerate); "" = that directory
  int timeout = 600;  // seconds
  int line = 0;       // manifest line, for messages
};

// How `patchmgr verify` checks the runtime against this component's reference data.
struct VerifySpec {
  bool present = false;
  std::string tests;  // GoogleTest filter for the runtime's parity tests (runtime_tests)
  // Reference data directories, relative to the project root (a string or a list
  // in YAML); the first is $PATCHMGR_FIXTURES for the regenerate step.
  std::vector<std::string> fixtures;
  std::optional<Step> regenerate;  // remakes the reference data (verify --regenerate)
  int line = 0;
};

// How `patchmgr bench` measures this component: `separate --bench` and,
// with --against-upstream, the upstream reference script (docs/manifest.md,
// "Benchmarks"). Every string may hold {placeholders}.
struct BenchSpec {
  bool present = false;
  std::string model;       // separate --model: a model file or an MSST config
  std::string checkpoint;  // separate --checkpoint (MSST configs); optional
  std::string track;       // a WAV file; empty: a synthetic track of `seconds`
  double seconds = 180;
  int repeats = 1;                      // timed runs per configuration, each side; the median is kept
  std::vector<std::string> precisions;  // fp32, fp16, bf16
  std::vector<int> batch_sizes;
  std::vector<std::string> graphs;          // on, off
  std::vector<std::string> separate_args;   // more arguments for separate
  std::vector<std::string> prepare;         // argv run (in the project root) when the model or checkpoint is missing
  std::vector<std::string> upstream;        // argv of the upstream reference benchmark; empty: none
  std::vector<std::string> write_track;     // appended to `upstream` when it must write the synthetic track
  std::string python = "python3";           // {python}
  std::map<std::string, std::string> vars;  // more {placeholders}
  std::map<std::string, std::string> env;   // added to the environment of every command
  int line = 0;
};

// The placeholders `patchmgr bench` fills in, besides the section's `vars`.
inline const std::vector<std::string>& bench_placeholders() {
  static const std::vector<std::string> names = {"root",      "work",       "checkout",    "python", "patchmgr",
                                                 "component", "model",      "checkpoint",  "track",  "seconds",
                                                 "out",       "precisions", "batch_sizes", "repeats"};
  return names;
}

// Those a value in `vars` may use (known before the model and track are):
// `vars: {demucs: "{checkout}"}` measures the patched checkout by default.
inline const std::vector<std::string>& bench_var_placeholders() {
  static const std::vector<std::string> names = {"root", "work", "checkout", "python", "patchmgr", "component"};
  return names;
}

struct Manifest {
  std::filesystem::path path;  // the manifest file
  int schema = kManifestSchema;
  std::string name;
  std::string url;                 // upstream.url as written
  std::string commit;              // upstream.commit, 40 lower-case hex
  int commit_line = 0;             // its line in the manifest (rebase rewrites it)
  std::string track;               // upstream.track
  std::filesystem::path checkout;  // absolute path of the working clone
  std::string checkout_field;      // as written (relative to the project root by default)
  std::vector<Patch> patches;      // in series order
  std::vector<Step> build;         // `build` steps, in order, run in the checkout by `patchmgr build`
  VerifySpec verify;               // `verify` section
  BenchSpec bench;                 // `bench` section

  const Patch* find(const std::string& id) const;
  std::vector<const Patch*> source_patches() const;
};

// One problem found while loading, at file:line:column (1-based).
struct Diagnostic {
  std::filesystem::path file;
  int line = 0;
  int column = 0;
  std::string message;

  std::string to_string(const std::filesystem::path& root) const;  // "file:line:col: error: message"
};

struct LoadResult {
  std::vector<Manifest> manifests;
  std::vector<Diagnostic> diagnostics;  // every problem in every manifest; empty means valid
  // Placeholders a person still has to write (kPlaceholder values): the manifest
  // loads and every command runs, but `lint` fails until they are written.
  std::vector<Diagnostic> unfinished;
};

// Loads and validates one manifest file. `root` is the project root that holds
// manifests/ and patches/; relative paths resolve against it.
LoadResult load_manifest(const std::filesystem::path& file, const std::filesystem::path& root);

// Loads every manifests/*.yaml under `root`, sorted by name.
LoadResult load_all_manifests(const std::filesystem::path& root);

}  // namespace patchmgr

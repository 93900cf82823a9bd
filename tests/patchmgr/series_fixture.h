// The fixture shared by the checkout tests: a synthetic upstream and a
// three-patch series (two enabled, one opt-in), plus helpers that look into
// the checkout.
#pragma once

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fixture.h"

namespace testutil {

using patchmgr::git::to_hex;

inline const std::string kAttendPatched1 =
    "import torch\n\n\nclass Attend:\n    def __init__(self, flash=False):\n        self.flash = flash\n\n"
    "    def config(self, major, minor):\n        if major >= 8:\n            return 'flash'\n"
    "        return 'math'\n\n    def forward(self, q, k, v):\n        scale = q.shape[-1] ** -0.5\n"
    "        sim = (q @ k.transpose(-1, -2)) * scale\n        return sim.softmax(-1) @ v\n";
inline const std::string kAttendPatched2 =
    "import torch\n\n\nclass Attend:\n    def __init__(self, flash=False):\n        self.flash = flash\n\n"
    "    def config(self, major, minor):\n        if major >= 8:\n            return 'flash'\n"
    "        return 'math'\n\n    def forward(self, q, k, v):\n"
    "        return torch.nn.functional.scaled_dot_product_attention(q, k, v)\n";
inline const std::string kStatic = "class StaticSegmentModel:\n    pass\n";
inline const std::string kTransformerCompiled =
    "from .attend import Attend\n\n\nclass Layer:\n    def __init__(self, dim):\n        self.dim = dim\n"
    "        self.attend = Attend()\n\n    def forward(self, x):\n        return self.attend.forward(x, x, x)\n\n"
    "compiled = True\n";

class CheckoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    project.set_series({
        {.id = "flash-attention", .files = {{"model/attend.py", kAttendPatched1}}},
        {.id = "sdpa", .files = {{"model/attend.py", kAttendPatched2}, {"model/static.py", kStatic}}},
        {.id = "compile",
         .files = {{"model/transformer.py", kTransformerCompiled}},
         .status = "experimental",
         .extra = "    enabled: false\n"},
    });
  }

  fs::path co() const { return project.checkout(); }
  std::string file(const std::string& path) const { return read(co() / path); }
  std::string head() const {
    Repo r(co(), Repo::Existing{});
    return to_hex(r.head());
  }
  nlohmann::json status() const {
    CliRun r = project.run({"status", "--json"});
    EXPECT_EQ(r.code, 0) << r.all();
    return nlohmann::json::parse(r.out)["components"][0];
  }
  void sync_and_apply() {
    CliRun s = project.run({"sync"});
    ASSERT_EQ(s.code, 0) << s.all();
    CliRun a = project.run({"apply"});
    ASSERT_EQ(a.code, 0) << a.all();
  }
  // Everything apply/revert may change, to prove that a failure changed nothing.
  std::string snapshot() const {
    std::string s = head() + "\n";
    Repo r(co(), Repo::Existing{});
    git_reference_iterator* it = nullptr;
    git_reference_iterator_new(&it, r.get());
    git_reference* ref = nullptr;
    while (git_reference_next(&ref, it) == 0) {
      s += git_reference_name(ref);
      if (git_reference_type(ref) == GIT_REFERENCE_DIRECT) s += " " + to_hex(*git_reference_target(ref));
      s += "\n";
      git_reference_free(ref);
    }
    git_reference_iterator_free(it);
    git_reference* h = nullptr;
    git_reference_lookup(&h, r.get(), "HEAD");
    s += std::string("HEAD -> ") +
         (git_reference_type(h) == GIT_REFERENCE_SYMBOLIC ? git_reference_symbolic_target(h) : "detached") + "\n";
    git_reference_free(h);
    for (const auto& e : fs::recursive_directory_iterator(co())) {
      if (e.path().string().find("/.git") != std::string::npos || !e.is_regular_file()) continue;
      s += e.path().lexically_relative(co()).string() + ":" + read(e.path()) + "\n";
    }
    for (const auto& e : patchmgr::git::local_edits(r.get())) s += std::string(1, e.code) + " " + e.path + "\n";
    // The index by content (path, mode, blob); its stat cache may be refreshed.
    git_index* idx = nullptr;
    git_repository_index(&idx, r.get());
    git_index_read(idx, 1);
    for (size_t i = 0; i < git_index_entrycount(idx); ++i) {
      const git_index_entry* e = git_index_get_byindex(idx, i);
      s += fmt::format("index {} {:o} {}\n", e->path, e->mode, to_hex(e->id));
    }
    git_index_free(idx);
    return s;
  }

  Project project;
};

}  // namespace testutil

// The file that keeps cuBLASLt's timed GEMM choices between runs
// (runtime/kernels/lt_algo_cache.h): what one run adds the next one finds,
// whatever else the file holds; the GPU side is in the GPU suite's runs of
// separate (tools/gpu/cold-start.sh times a run with and without it).
#include "runtime/kernels/lt_algo_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/separate/test_support.h"

namespace stemkit::kernels {
namespace {

using separate::test::TempDir;

AlgoWords words(uint64_t seed) {
  AlgoWords w{};
  for (size_t i = 0; i < w.size(); ++i) w[i] = seed * 0x9e3779b97f4a7c15ull + i;
  return w;
}

TEST(LtAlgoCache, WhatOneRunAddsTheNextFinds) {
  TempDir dir;
  const auto path = algo_cache_path(dir / "gemm", "NVIDIA H100 80GB HBM3", 13000, 130100);
  EXPECT_EQ(path.filename(), "NVIDIA_H100_80GB_HBM3-driver13000-cublaslt130100.txt");
  {
    AlgoCacheFile file(path);  // no directory yet: an empty cache, made at the first add
    EXPECT_FALSE(file.find("8 16 32 32 32 16 2 1 0 256"));
    file.add("8 16 32 32 32 16 2 1 0 256", words(1));
    file.add("64 16 32 32 32 16 2 0 1 256", words(2));
    EXPECT_EQ(file.find("8 16 32 32 32 16 2 1 0 256"), words(1));
  }
  AlgoCacheFile again(path);
  EXPECT_EQ(again.find("8 16 32 32 32 16 2 1 0 256"), words(1));
  EXPECT_EQ(again.find("64 16 32 32 32 16 2 0 1 256"), words(2));
  // A shape timed again (another run raced this one): the last line wins.
  again.add("8 16 32 32 32 16 2 1 0 256", words(3));
  EXPECT_EQ(AlgoCacheFile(path).find("8 16 32 32 32 16 2 1 0 256"), words(3));
}

TEST(LtAlgoCache, LinesThatDoNotParseAreSkipped) {
  TempDir dir;
  const auto path = dir / "cache.txt";
  AlgoCacheFile(path).add("1 2 3", words(7));
  {
    std::ofstream out(path, std::ios::app);
    out << "v2 1 2 3 = 1 2 3 4 5 6 7 8\n"                  // another format's line
        << "v1 4 5 6 = 1 2 3\n"                            // too few words
        << "v1 4 5 7 = 1 2 3 4 5 6 7 8 9\n"                // too many
        << "v1 4 5 8 = 1 2 3 4 5 6 7 zz\n"                 // not hex
        << "v1 4 5 9 = 1 2 3 4 5 6 7 11111111111111111\n"  // more than 64 bits
        << "v1 4 5 10 = 1 2 3 4"                           // cut short by a crash, no newline
        << "\n=\nv1  = 1 2 3 4 5 6 7 8\n";
  }
  AlgoCacheFile file(path);
  EXPECT_EQ(file.find("1 2 3"), words(7));
  for (const char* key : {"4 5 6", "4 5 7", "4 5 8", "4 5 9", "4 5 10", ""}) EXPECT_FALSE(file.find(key)) << key;
}

TEST(LtAlgoCache, ConcurrentAppendsKeepWholeLines) {
  TempDir dir;
  const auto path = dir / "cache.txt";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      AlgoCacheFile file(path);
      for (int k = 0; k < 100; ++k) file.add(std::to_string(t) + " " + std::to_string(k), words(t * 100 + k));
    });
  for (auto& t : threads) t.join();
  AlgoCacheFile file(path);
  for (int t = 0; t < 4; ++t)
    for (int k = 0; k < 100; ++k) EXPECT_EQ(file.find(std::to_string(t) + " " + std::to_string(k)), words(t * 100 + k));
}

TEST(LtAlgoCache, AFileThatCannotBeWrittenKeepsTheChoiceInMemory) {
  TempDir dir;
  separate::test::write_file(dir / "not-a-dir", "a file where the directory would go");
  AlgoCacheFile file(dir / "not-a-dir" / "cache.txt");
  file.add("1 2 3", words(1));
  EXPECT_EQ(file.find("1 2 3"), words(1));
  EXPECT_FALSE(AlgoCacheFile(dir / "not-a-dir" / "cache.txt").find("1 2 3"));
}

}  // namespace
}  // namespace stemkit::kernels

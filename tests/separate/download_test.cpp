// Downloads against a tiny HTTP/1.1 server this test runs on 127.0.0.1 (never
// the real network): a good body lands atomically with the right content and
// progress; a 404, a connection closed mid-body, a wrong hash and a refused
// connection each throw an error naming the URL and leave neither the file
// nor a .part file behind.
#include "runtime/separate/download.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "patchmgr/util/sha256.h"
#include "runtime/error.h"
#include "tests/separate/http_server.h"
#include "tests/separate/test_support.h"

namespace stemkit::separate {
namespace {

using test::read_file;
using test::Route;
using test::ScopedEnv;
using test::TempDir;
using test::TestHttpServer;
using test::write_file;
namespace fs = std::filesystem;

std::string model_bytes(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

std::string prefix_of(const std::string& body) { return patchmgr::sha256_hex(body).substr(0, 8); }

// Names in `dir`, to check that nothing (no .part file) is left behind.
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class Download : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!download_supported()) GTEST_SKIP() << "built without libcurl";
  }
  // A proxy from the environment must not catch 127.0.0.1.
  ScopedEnv no_proxy_{"no_proxy", "*"};
  ScopedEnv http_proxy_{"http_proxy", std::nullopt};
  ScopedEnv all_proxy_{"ALL_PROXY", std::nullopt};
  const std::string body_ = model_bytes(300 * 1000);
  TestHttpServer server_{{
      {"/good.th", {200, body_, -1}},
      {"/cut.th", {200, body_, 1000}},
  }};
  TempDir dir_;
};

void expect_failure(const std::function<void()>& f, const std::string& url, const std::string& also = "") {
  try {
    f();
    ADD_FAILURE() << "no throw for " << url;
  } catch (const stemkit::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(url), std::string::npos) << what;
    if (!also.empty()) EXPECT_NE(what.find(also), std::string::npos) << what;
  }
}

TEST_F(Download, GoodBodyLandsAtomicallyWithProgress) {
  fs::path dest = dir_ / "models" / "good.th";  // the directory is created
  std::vector<std::pair<int64_t, int64_t>> calls;
  DownloadOptions options;
  options.sha256_prefix = prefix_of(body_);
  options.progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  download_file(server_.url("/good.th"), dest, options);
  EXPECT_EQ(read_file(dest), body_);
  EXPECT_EQ(entries(dest.parent_path()), std::vector<std::string>{"good.th"});
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(int64_t(body_.size()), int64_t(body_.size())));
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_GE(calls[i].first, calls[i - 1].first);
}

TEST_F(Download, ReplacesAnExistingFileOnlyWhenTheNewOneIsGood) {
  fs::path dest = dir_ / "good.th";
  write_file(dest, "old");
  DownloadOptions bad;
  bad.sha256_prefix = "00000000";
  EXPECT_THROW(download_file(server_.url("/good.th"), dest, bad), stemkit::Error);
  EXPECT_EQ(read_file(dest), "old");
  DownloadOptions good;
  good.sha256_prefix = prefix_of(body_);
  download_file(server_.url("/good.th"), dest, good);
  EXPECT_EQ(read_file(dest), body_);
  EXPECT_EQ(entries(dir_.path()), std::vector<std::string>{"good.th"});
}

TEST_F(Download, NotFoundLeavesNothing) {
  std::string url = server_.url("/absent.th");
  expect_failure([&] { download_file(url, dir_ / "absent.th", {}); }, url, "HTTP 404");
  EXPECT_TRUE(entries(dir_.path()).empty());
}

TEST_F(Download, ConnectionClosedMidBodyLeavesNothing) {
  std::string url = server_.url("/cut.th");
  expect_failure([&] { download_file(url, dir_ / "cut.th", {}); }, url, "connection broke");
  EXPECT_TRUE(entries(dir_.path()).empty());
}

TEST_F(Download, WrongHashLeavesNothing) {
  std::string url = server_.url("/good.th");
  DownloadOptions options;
  options.sha256_prefix = "deadbeef";
  expect_failure([&] { download_file(url, dir_ / "good.th", options); }, url, "expected deadbeef");
  EXPECT_TRUE(entries(dir_.path()).empty());
}

TEST_F(Download, ConnectionRefusedLeavesNothing) {
  // A port nobody listens on: bound, then closed.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.th";
  expect_failure([&] { download_file(url, dir_ / "x.th", {}); }, url, "network");
  EXPECT_TRUE(entries(dir_.path()).empty());
}

TEST_F(Download, OnlyHttpAndHttpsAreFetched) {
  write_file(dir_ / "src", "local");
  std::string url = "file://" + (dir_ / "src").string();
  expect_failure([&] { download_file(url, dir_ / "dest.th", {}); }, url);
  EXPECT_EQ(entries(dir_.path()), std::vector<std::string>{"src"});
}

TEST_F(Download, AThrowingProgressCallbackAbortsAndLeavesNothing) {
  DownloadOptions options;
  options.progress = [](int64_t done, int64_t) {
    if (done > 0) throw std::runtime_error("cancelled by the user");
  };
  EXPECT_THROW(download_file(server_.url("/good.th"), dir_ / "good.th", options), std::runtime_error);
  EXPECT_TRUE(entries(dir_.path()).empty());
}

TEST_F(Download, LeftoverPartFilesOfDeadProcessesAreRemoved) {
  write_file(dir_ / "good.th.part-99999999", "stale");  // above any pid_max
  write_file(dir_ / "good.th.part-notapid", "kept");
  DownloadOptions options;
  options.sha256_prefix = prefix_of(body_);
  download_file(server_.url("/good.th"), dir_ / "good.th", options);
  EXPECT_EQ(entries(dir_.path()), (std::vector<std::string>{"good.th", "good.th.part-notapid"}));
}

TEST_F(Download, EnsureModelFilesFetchesOnlyWhatIsMissing) {
  std::string second = model_bytes(1000);
  TestHttpServer server({{"/a.th", {200, body_, -1}}, {"/b.th", {200, second, -1}}});
  CatalogModel model;
  model.name = "bag";
  model.members = {{"aaaaaaaa", "aaaaaaaa-" + prefix_of(body_) + ".th", prefix_of(body_), server.url("/a.th")},
                   {"bbbbbbbb", "bbbbbbbb-" + prefix_of(second) + ".th", prefix_of(second), server.url("/b.th")}};
  ModelCache cache(dir_.path() / "cache");
  write_file(cache.path_for(model.members[1]), second);
  std::vector<std::string> progressed;
  auto paths = ensure_model_files(model, cache, /*allow_download=*/true, [&](const CatalogMember& m, int64_t, int64_t) {
    if (progressed.empty() || progressed.back() != m.signature) progressed.push_back(m.signature);
  });
  EXPECT_EQ(paths, (std::vector<fs::path>{cache.path_for(model.members[0]), cache.path_for(model.members[1])}));
  EXPECT_EQ(read_file(paths[0]), body_);
  EXPECT_EQ(progressed, std::vector<std::string>{"aaaaaaaa"});
  EXPECT_EQ(server.requests("/a.th"), 1);
  EXPECT_EQ(server.requests("/b.th"), 0);
  ensure_model_files(model, cache, true);  // all present now: no request
  EXPECT_EQ(server.requests("/a.th"), 1);
}

TEST_F(Download, ReturnsTheFilesSha256) {
  EXPECT_EQ(download_file(server_.url("/good.th"), dir_ / "good.th", {}), patchmgr::sha256_hex(body_));
}

// A RoFormer's files: no published hash. The first download records the hash;
// a later load of a changed file is refused; a download again (the file deleted,
// its record kept) must give the recorded bytes.
TEST_F(Download, FilesWithoutAPublishedHashAreTrustedOnFirstDownload) {
  const std::string config = "model:\n  dim: 8\n", other = model_bytes(999);
  TestHttpServer server({{"/x/m.yaml", {200, config, -1}}, {"/x/m.ckpt", {200, body_, -1}}});
  CatalogModel model;
  model.name = "m";
  model.architecture = Architecture::bs_roformer;
  model.members = {{"", "m.yaml", "", "https://example.invalid/x/m.yaml", FileKind::msst_config},
                   {"", "m.ckpt", "", "https://example.invalid/x/m.ckpt", FileKind::weights}};
  ModelCache cache(dir_.path() / "cache");
  CatalogModel mirrored = with_mirror(model, server.base_url() + "/");
  EXPECT_EQ(mirrored.members[1].url, server.url("/example.invalid/x/m.ckpt"));
  mirrored.members[0].url = server.url("/x/m.yaml");
  mirrored.members[1].url = server.url("/x/m.ckpt");
  auto paths = ensure_model_files(mirrored, cache, true);
  EXPECT_EQ(read_file(paths[1]), body_);
  EXPECT_EQ(cache.recorded_sha256(model.members[0]), patchmgr::sha256_hex(config));
  EXPECT_EQ(cache.recorded_sha256(model.members[1]), patchmgr::sha256_hex(body_));
  EXPECT_EQ(entries(cache.dir()), (std::vector<std::string>{"m.ckpt", "m.ckpt.sha256", "m.yaml", "m.yaml.sha256"}));

  ensure_model_files(mirrored, cache, false);  // present and as recorded: no request
  EXPECT_EQ(server.requests("/x/m.ckpt"), 1);

  write_file(paths[1], other);  // altered in the cache
  std::string url = mirrored.members[1].url;
  try {
    ensure_model_files(mirrored, cache, true);
    ADD_FAILURE() << "no throw";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(paths[1].string() + " has changed since its first download"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(server.requests("/x/m.ckpt"), 1) << "a changed file is not silently replaced";

  // The file deleted, its record kept: the new download must match the record.
  fs::remove(paths[1]);
  TestHttpServer changed({{"/x/m.ckpt", {200, other, -1}}});
  mirrored.members[1].url = changed.url("/x/m.ckpt");
  expect_failure([&] { ensure_model_files(mirrored, cache, true); }, mirrored.members[1].url,
                 "recorded in " + cache.recorded_hash_path(model.members[1]).string());
  EXPECT_FALSE(fs::exists(paths[1]));
  EXPECT_EQ(cache.recorded_sha256(model.members[1]), patchmgr::sha256_hex(body_));
  mirrored.members[1].url = url;  // the original bytes again
  ensure_model_files(mirrored, cache, true);
  EXPECT_EQ(read_file(paths[1]), body_);
}

TEST(DownloadWithoutCurl, SaysHowToGetSupport) {
  if (download_supported()) GTEST_SKIP() << "built with libcurl";
  try {
    download_file("https://example.invalid/x.th", "/tmp/never-written.th", {});
    FAIL() << "no throw";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("this build has no download support (install libcurl4-openssl-dev and rebuild)"),
        std::string::npos);
  }
}

}  // namespace
}  // namespace stemkit::separate

// A tiny HTTP/1.1 server on 127.0.0.1 for the download tests (never the real
// network): one connection at a time, GET only, fixed routes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace stemkit::separate::test {

struct Route {
  int status = 200;
  std::string body;
  // Bytes of `body` actually sent before the connection is closed (the
  // Content-Length still announces the whole body); -1 = all.
  long send_only = -1;
};

// One connection at a time, `Connection: close`, GET only. Counts requests per path.
class TestHttpServer {
 public:
  explicit TestHttpServer(std::map<std::string, Route> routes) : routes_(std::move(routes)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0)
      throw std::runtime_error("test server: cannot listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string base_url() const { return url(""); }
  int requests(const std::string& path) {
    std::lock_guard lock(mutex_);
    return counts_[path];
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      handle(fd);
      ::close(fd);
    }
  }
  void handle(int fd) {
    timeval timeout{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    // "GET /path HTTP/1.1"
    size_t a = request.find(' '), b = request.find(' ', a + 1);
    std::string path = request.substr(a + 1, b - a - 1);
    {
      std::lock_guard lock(mutex_);
      ++counts_[path];
    }
    auto it = routes_.find(path);
    Route route = it != routes_.end() ? it->second : Route{404, "not found\n", -1};
    std::string head =
        "HTTP/1.1 " + std::to_string(route.status) + (route.status < 400 ? " OK" : " Not Found") +
        "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(route.body.size()) +
        "\r\nConnection: close\r\n\r\n";
    std::string out = head + (route.send_only < 0 ? route.body : route.body.substr(0, route.send_only));
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
  }

  std::map<std::string, Route> routes_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::map<std::string, int> counts_;
};

}  // namespace stemkit::separate::test

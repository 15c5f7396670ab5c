#pragma once
/// \file tests/fault_server.hpp (support code of the tests; not installed)
/// `testing::fault_server`: an HTTP/1.1 range server on 127.0.0.1 (plain POSIX sockets, one
/// thread, one connection at a time, `Connection: close` on every answer) that serves one
/// resource at `/data` and misbehaves on request: it drops or resets the connection after some
/// body bytes, stalls, answers with a status (503, 429, … with or without Retry-After), labels
/// its parts with a wrong Content-Range or another resource size, or ignores Range.
///
/// Faults are queued (`push`): each request takes the next one; when the queue is empty,
/// `always` applies (none by default). Every request is logged with its Range header and, for a
/// range answer, the data bytes it actually sent (`delivered`), so a test can check what a retry
/// asked for against what arrived before. Any other path is a 404.

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace selmask::testing {

struct fault {
  enum class kind {
    none,         ///< answer correctly
    drop_after,   ///< send the head and `bytes` body bytes, then close (FIN)
    reset_after,  ///< the same, then reset the connection (RST)
    stall_after,  ///< send the head and `bytes` body bytes, then wait `stall` (or until the client goes)
    status,       ///< answer `status` with a short text body and `retry_after` when not empty
    wrong_range,  ///< label the parts `shift` bytes off (the data stay those asked for)
    wrong_total,  ///< give the resource's size as `total` in Content-Range
    ignore_range, ///< answer 200 with the whole resource
  };
  kind k = kind::none;
  std::size_t bytes = 0;
  int status = 503;
  std::string retry_after = {};
  std::chrono::milliseconds stall{3000};
  std::size_t shift = 1;
  std::size_t total = 0;
};

/// One request as the server saw it.
struct logged_request {
  std::string target;
  std::string range;                                          ///< the Range value, empty when none
  std::vector<std::pair<std::size_t, std::size_t>> delivered; ///< data bytes sent: [first, end)
  fault::kind injected = fault::kind::none; ///< the fault this request got (none: answered cleanly)
};

class fault_server {
public:
  explicit fault_server(std::string content) : content_(std::move(content)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) {
      throw std::runtime_error(std::string("fault_server: socket() failed: ") + std::strerror(errno));
    }
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::runtime_error(std::string("fault_server: cannot listen on 127.0.0.1: ") + std::strerror(e));
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  fault_server(const fault_server&) = delete;
  fault_server& operator=(const fault_server&) = delete;
  ~fault_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  [[nodiscard]] std::string url(std::string_view path = "/data") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  void push(fault f) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(f));
  }
  void always(fault f) {
    std::lock_guard<std::mutex> lock(mutex_);
    always_ = std::move(f);
  }
  /// Forgets the queue, the standing fault and the log.
  void reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    always_ = fault{};
    log_.clear();
  }
  [[nodiscard]] std::vector<logged_request> log() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return log_;
  }

private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c >= 0) {
        answer(c);
        ::close(c);
      }
    }
  }

  /// The request head, or nothing when the client sent none within a second.
  static std::optional<std::string> read_head(int c) {
    std::string head;
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (head.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline || ::poll(&p, 1, 50) < 0) {
        return std::nullopt;
      }
      if ((p.revents & POLLIN) == 0) {
        continue;
      }
      const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) {
        return std::nullopt;
      }
      head.append(buf, static_cast<std::size_t>(n));
    }
    return head;
  }

  static std::string header(const std::string& head, std::string_view name) {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
      const std::size_t eol = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, eol - pos - 2);
      const std::size_t colon = line.find(':');
      if (colon == name.size() && std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
          })) {
        const std::size_t v = line.find_first_not_of(' ', colon + 1);
        return v == std::string::npos ? std::string() : line.substr(v);
      }
      pos = eol;
    }
    return {};
  }

  /// "bytes=a-b,c-d" as [first, end) pairs (clamped to the resource), or nothing if malformed.
  std::optional<std::vector<std::pair<std::size_t, std::size_t>>> parse_range(const std::string& v) const {
    if (v.rfind("bytes=", 0) != 0) {
      return std::nullopt;
    }
    std::vector<std::pair<std::size_t, std::size_t>> out;
    std::size_t pos = 6;
    while (pos < v.size()) {
      const std::size_t comma = std::min(v.find(',', pos), v.size());
      const std::string one = v.substr(pos, comma - pos);
      const std::size_t dash = one.find('-');
      if (dash == std::string::npos || dash == 0 || dash + 1 == one.size()) {
        return std::nullopt;
      }
      const std::size_t first = std::stoull(one.substr(0, dash));
      const std::size_t last = std::min<std::size_t>(std::stoull(one.substr(dash + 1)), content_.size() - 1);
      if (first > last) {
        return std::nullopt;
      }
      out.emplace_back(first, last + 1);
      pos = comma + 1;
    }
    return out;
  }

  fault next_fault() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty()) {
      return always_;
    }
    fault f = queue_.front();
    queue_.pop_front();
    return f;
  }

  static void send_all(int c, std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::send(c, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return;
      }
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void answer(int c) {
    const auto head = read_head(c);
    if (!head) {
      return;
    }
    logged_request entry;
    entry.target = head->substr(4, head->find(' ', 4) - 4);
    entry.range = header(*head, "Range");
    const fault f = head->rfind("GET ", 0) == 0 && entry.target == "/data" ? next_fault() : fault{};
    entry.injected = f.k;
    std::string status_line = "HTTP/1.1 200 OK", fields, body;
    std::vector<std::pair<std::size_t, std::size_t>>
      sent; // data spans in the body: [first, end), body offset
    std::vector<std::size_t> at;
    const auto ranges = parse_range(entry.range);
    if (head->rfind("GET ", 0) != 0 || entry.target != "/data") {
      status_line = "HTTP/1.1 404 Not Found";
      body = "not found\n";
    } else if (f.k == fault::kind::status) {
      status_line = "HTTP/1.1 " + std::to_string(f.status) + " Fault";
      body = "fault " + std::to_string(f.status) + "\n";
      if (!f.retry_after.empty()) {
        fields += "Retry-After: " + f.retry_after + "\r\n";
      }
    } else if (entry.range.empty() || f.k == fault::kind::ignore_range) {
      body = content_;
      sent.emplace_back(0, content_.size());
      at.push_back(0);
    } else if (!ranges) {
      status_line = "HTTP/1.1 416 Range Not Satisfiable";
      fields = "Content-Range: bytes */" + std::to_string(content_.size()) + "\r\n";
    } else {
      status_line = "HTTP/1.1 206 Partial Content";
      const std::size_t shift = f.k == fault::kind::wrong_range ? f.shift : 0;
      const std::size_t total = f.k == fault::kind::wrong_total ? f.total : content_.size();
      const auto label = [&](std::pair<std::size_t, std::size_t> r) {
        return "bytes " + std::to_string(r.first + shift) + "-" + std::to_string(r.second - 1 + shift) + "/" +
               std::to_string(total);
      };
      if (ranges->size() == 1) {
        fields =
          "Content-Type: application/octet-stream\r\nContent-Range: " + label(ranges->front()) + "\r\n";
        at.push_back(0);
        body = content_.substr(ranges->front().first, ranges->front().second - ranges->front().first);
      } else {
        const std::string boundary = "00000000000000000042";
        fields = "Content-Type: multipart/byteranges; boundary=" + boundary + "\r\n";
        for (const auto& r : *ranges) {
          body += "\r\n--" + boundary +
                  "\r\nContent-Type: application/octet-stream\r\nContent-Range: " + label(r) + "\r\n\r\n";
          at.push_back(body.size());
          body += content_.substr(r.first, r.second - r.first);
        }
        body += "\r\n--" + boundary + "--\r\n";
      }
      sent = *ranges;
    }
    const std::string response_head = status_line + "\r\n" + fields +
                                      "Content-Length: " + std::to_string(body.size()) +
                                      "\r\nConnection: close\r\n\r\n";
    const bool cut =
      f.k == fault::kind::drop_after || f.k == fault::kind::reset_after || f.k == fault::kind::stall_after;
    const std::size_t body_sent = cut ? std::min(f.bytes, body.size()) : body.size();
    if (cut && body_sent == body.size() && f.k != fault::kind::stall_after) {
      entry.injected = fault::kind::none; // the cut falls past the body: a clean answer
    }
    for (std::size_t i = 0; i < sent.size(); ++i) { // which data bytes went out
      const std::size_t len = sent[i].second - sent[i].first;
      const std::size_t got = at[i] >= body_sent ? 0 : std::min(len, body_sent - at[i]);
      if (got > 0) {
        entry.delivered.emplace_back(sent[i].first, sent[i].first + got);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      log_.push_back(entry);
    }
    send_all(c, response_head);
    send_all(c, std::string_view(body).substr(0, body_sent));
    if (f.k == fault::kind::stall_after) {
      pollfd p{c, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(f.stall.count())); // ends when the client gives up and closes
    } else if (f.k == fault::kind::reset_after) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30)); // let the client read what was sent
      const linger l{1, 0};
      ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l)); // close() sends RST
    } else {
      ::shutdown(c, SHUT_WR);
      pollfd p{c, POLLIN, 0};
      ::poll(&p, 1, 1000); // the client closes after reading; then close without resetting
    }
  }

  std::string content_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::deque<fault> queue_;
  fault always_;
  std::vector<logged_request> log_;
};

} // namespace selmask::testing

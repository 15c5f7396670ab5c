#pragma once
/// \file tests/nginx_server.hpp (support code of the tests, examples and benchmarks; not installed)
/// `testing::nginx_server`: a private nginx that serves a directory on 127.0.0.1 at a free port,
/// for tests and benchmarks of the HTTP transfer (POSIX only).
///
/// It writes its configuration, pid file, logs and temp folders into a fresh directory under the
/// system's temp directory, starts `nginx -p <dir> -c <dir>/nginx.conf` in the foreground
/// (`daemon off`) as a child in its own process group, and waits until the port accepts
/// connections. The destructor always stops it: SIGQUIT to the master (graceful), then after
/// 5 seconds SIGKILL to its process group, and removes the directory. It installs nothing: when
/// no nginx binary is found (`$SELMASK_NGINX` when set, else /usr/sbin/nginx, /usr/bin/nginx,
/// /usr/local/sbin/nginx, /usr/local/nginx/sbin/nginx) the constructor throws a `selmask::error`
/// that says to install the Debian package `nginx`.
///
/// `extra_config` is pasted into the `server { }` block, e.g. a location that ignores Range:
/// `location /norange/ { max_ranges 0; alias /path/; }`. Only 127.0.0.1 is listened on.

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <selmask/error.hpp>
#include <selmask/io/atomic_file.hpp>

extern char** environ;

namespace selmask::testing {

class nginx_server {
public:
  /// The nginx binary to use, or nothing.
  static std::optional<std::filesystem::path> find_nginx() {
    std::vector<std::filesystem::path> candidates;
    if (const char* env = std::getenv("SELMASK_NGINX"); env != nullptr && *env != '\0') {
      candidates.emplace_back(env); // when set, the only candidate
    } else {
      for (const char* p :
           {"/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"}) {
        candidates.emplace_back(p);
      }
    }
    for (const auto& c : candidates) {
      if (::access(c.c_str(), X_OK) == 0) {
        return c;
      }
    }
    return std::nullopt;
  }

  /// Serves `root` (read-only) on 127.0.0.1 at a free port.
  explicit nginx_server(const std::filesystem::path& root, std::string extra_config = {})
    : root_(std::filesystem::absolute(root)), extra_(std::move(extra_config)) {
    const auto bin = find_nginx();
    if (!bin) {
      throw error(
        "selmask::testing::nginx_server: nginx not found (looked at $SELMASK_NGINX if set, else "
        "/usr/sbin/nginx, /usr/bin/nginx, /usr/local/sbin/nginx): install the Debian package 'nginx' "
        "(scripts/install-deps.sh installs it)");
    }
    bin_ = *bin;
    make_dir();
    std::string last_error;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      write_config();
      if (start(last_error)) {
        return;
      }
    }
    remove_dir();
    throw error("selmask::testing::nginx_server: nginx did not start: " + last_error);
  }

  nginx_server(const nginx_server&) = delete;
  nginx_server& operator=(const nginx_server&) = delete;
  ~nginx_server() {
    stop();
    remove_dir();
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// "http://127.0.0.1:<port><path>" (`path` starts with '/').
  [[nodiscard]] std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  /// The server's error log so far (for failure messages).
  [[nodiscard]] std::string error_log() const {
    try {
      return io::read_file(dir_ / "error.log");
    } catch (const error&) {
      return {};
    }
  }

  /// Stops nginx now (SIGQUIT, then SIGKILL to its process group after 5 s); idempotent.
  void stop() noexcept {
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, SIGQUIT);
    if (!wait_exit(std::chrono::seconds(5))) {
      ::kill(-pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

private:
  void make_dir() {
    std::mt19937_64 rng(
      std::random_device{}() ^
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    for (int i = 0; i < 16; ++i) {
      auto d =
        std::filesystem::temp_directory_path() / ("selmask-nginx-" + std::to_string(rng() % 100000000));
      std::error_code ec;
      if (std::filesystem::create_directory(d, ec)) {
        dir_ = d;
        // workers may run as another user when nginx starts as root: let them read what we write
        std::filesystem::permissions(dir_,
                                     std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                       std::filesystem::perms::group_exec |
                                       std::filesystem::perms::others_read |
                                       std::filesystem::perms::others_exec,
                                     ec);
        return;
      }
    }
    throw error("selmask::testing::nginx_server: cannot create a directory under " +
                std::filesystem::temp_directory_path().string());
  }

  void remove_dir() noexcept {
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  static std::uint16_t free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
      throw error(std::string("selmask::testing::nginx_server: socket() failed: ") + std::strerror(errno));
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      const int e = errno;
      ::close(s);
      throw error(std::string("selmask::testing::nginx_server: no free port on 127.0.0.1: ") +
                  std::strerror(e));
    }
    ::close(s);
    return ntohs(a.sin_port);
  }

  static bool can_connect(std::uint16_t port) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
      return false;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(s);
    return ok;
  }

  void write_config() const {
    const std::string d = dir_.string();
    std::string user;
    if (::geteuid() == 0) {
      // as root, nginx would switch its workers to an unprivileged user that may not exist here
      if (const passwd* pw = ::getpwuid(0); pw != nullptr) {
        user = std::string("user ") + pw->pw_name + ";\n";
      }
    }
    const std::string conf = user + "daemon off;\nmaster_process on;\nworker_processes 1;\npid " + d +
                             "/nginx.pid;\nerror_log " + d + "/error.log warn;\n" +
                             "events { worker_connections 64; }\n"
                             "http {\n"
                             "  access_log off;\n"
                             "  client_body_temp_path " +
                             d +
                             "/client_body;\n"
                             "  proxy_temp_path " +
                             d +
                             "/proxy;\n"
                             "  fastcgi_temp_path " +
                             d +
                             "/fastcgi;\n"
                             "  uwsgi_temp_path " +
                             d +
                             "/uwsgi;\n"
                             "  scgi_temp_path " +
                             d +
                             "/scgi;\n"
                             "  types { }\n"
                             "  default_type application/octet-stream;\n"
                             "  sendfile on;\n"
                             "  keepalive_requests 1000000;\n"
                             "  server {\n"
                             "    listen 127.0.0.1:" +
                             std::to_string(port_) +
                             ";\n"
                             "    root " +
                             root_.string() +
                             ";\n"
                             "    location / { }\n" +
                             extra_ + "\n  }\n}\n";
    io::write_file_atomically(dir_ / "nginx.conf", conf);
  }

  bool start(std::string& why) {
    const std::string d = dir_.string();
    const std::string conf = (dir_ / "nginx.conf").string();
    const std::string log = (dir_ / "error.log").string();
    std::vector<std::string> args{bin_.string(), "-p", d + "/", "-c", conf, "-e", log};
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, bin_.c_str(), nullptr, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      why = "posix_spawn(" + bin_.string() + ") failed: " + std::strerror(rc);
      return false;
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why = "nginx exited at start; its error log:\n" + error_log();
        return false;
      }
      if (can_connect(port_)) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    why = "nginx did not accept connections on port " + std::to_string(port_) +
          " within 10 s; its error log:\n" + error_log();
    stop();
    return false;
  }

  bool wait_exit(std::chrono::milliseconds limit) noexcept {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) {
        return true;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  std::filesystem::path root_;
  std::string extra_;
  std::filesystem::path bin_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

} // namespace selmask::testing

#pragma once
/// \file transfer/server.hpp
/// `transfer::pack_server`: the packing server — an HTTP/1.1 server (Boost.Beast over Asio) that
/// serves the files under a root and answers plan and bitmap requests with the packed payload
/// in one body (what it answers: transfer/pack_service.hpp).
///
/// Link the `selmask::server` CMake target (Boost headers, Threads, nlohmann-json; Beast and
/// Asio are header-only in Boost 1.74). Not part of the transfer/transfer.hpp umbrella.
///
/// How it runs: the constructor binds `address:port` (port 0: a free port, see `port()`), and
/// `server_options::threads` threads run one `io_context`; connections are accepted
/// asynchronously, each on its own strand, so clients are served concurrently. A connection is
/// kept alive while the client asks for it (HTTP/1.1 default), closed after
/// `idle_timeout_ms` without a request. Limits: request line and headers `max_header_bytes`
/// (431), a body `max_body_bytes` (413). A request that is not HTTP gets a 400 naming the parse
/// error; after any such error reply the connection is closed (its input cannot be trusted),
/// the server goes on serving others. The destructor (or `stop()`) stops accepting, ends the
/// connections and joins the threads.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// GCC 12 reports a false -Wmaybe-uninitialized inside Beast's HTTP parser (a boost::optional
// returned as boost::none, once inlined into the caller); the warning is silenced for the lines of
// these headers only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "../error.hpp"
#include "pack_service.hpp"

namespace selmask::transfer {

namespace detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;

/// One client connection: read a request, answer it, again while kept alive.
class pack_session : public std::enable_shared_from_this<pack_session> {
public:
  pack_session(asio::ip::tcp::socket socket, const pack_service& service)
    : stream_(std::move(socket)), service_(service) {}

  void start() { read(); }

private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(service_.options().max_header_bytes));
    parser_->body_limit(service_.options().max_body_bytes);
    stream_.expires_after(std::chrono::milliseconds(service_.options().idle_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&pack_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec) { // the request could not be parsed: answer 4xx and close
      unsigned status = 400;
      std::string message = "malformed HTTP request: " + ec.message();
      if (ec == bhttp::error::body_limit) {
        status = 413;
        message =
          "request body over the limit of " + std::to_string(service_.options().max_body_bytes) + " bytes";
      } else if (ec == bhttp::error::header_limit) {
        status = 431;
        message = "request header over the limit of " + std::to_string(service_.options().max_header_bytes) +
                  " bytes";
      } else if (ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category() ||
                 ec == bhttp::error::partial_message) {
        return close(); // a socket error, or a request cut short: nobody to answer
      }
      service_reply r;
      r.status = status;
      r.content_type = "text/plain";
      r.body = "selmask pack server: " + message + "\n";
      r.length = r.body.size();
      return respond(std::move(r), 11, false, true);
    }
    const auto& req = parser_->get();
    const auto range = req.find(bhttp::field::range);
    service_reply r =
      service_.handle(std::string_view(req.method_string().data(), req.method_string().size()),
                      std::string_view(req.target().data(), req.target().size()),
                      range == req.end() ? std::string_view()
                                         : std::string_view(range->value().data(), range->value().size()),
                      req.body());
    const bool close_after = !req.keep_alive();
    respond(std::move(r), req.version(), req.method() == bhttp::verb::head, close_after);
  }

  void respond(service_reply r, unsigned version, bool head, bool close_after) {
    res_ = {};
    res_.version(version);
    res_.result(r.status);
    res_.set(bhttp::field::server, "selmask");
    res_.set(bhttp::field::content_type, r.content_type);
    if (!r.content_range.empty()) {
      res_.set(bhttp::field::content_range, r.content_range);
    }
    if (r.status == 200 || r.status == 206) {
      res_.set(bhttp::field::accept_ranges, "bytes");
    }
    res_.keep_alive(!close_after);
    res_.body() = std::move(r.body);
    if (head) { // the header of the GET, no body
      res_.content_length(r.length);
      bhttp::response_serializer<bhttp::string_body>& s = serializer_.emplace(res_);
      s.split(true);
      bhttp::async_write_header(
        stream_, s, beast::bind_front_handler(&pack_session::on_write, shared_from_this(), close_after));
      return;
    }
    res_.prepare_payload();
    bhttp::async_write(stream_, res_,
                       beast::bind_front_handler(&pack_session::on_write, shared_from_this(), close_after));
  }

  void on_write(bool close_after, beast::error_code ec, std::size_t) {
    serializer_.reset();
    if (ec || close_after) {
      return close();
    }
    read();
  }

  /// Half-closes and reads what the client still sends (up to a second), so that unread input
  /// does not turn the close into a reset that destroys the reply before the client reads it.
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(1));
    stream_.async_read_some(asio::buffer(drain_),
                            beast::bind_front_handler(&pack_session::on_drain, shared_from_this()));
  }
  void on_drain(beast::error_code ec, std::size_t) {
    if (!ec) {
      stream_.async_read_some(asio::buffer(drain_),
                              beast::bind_front_handler(&pack_session::on_drain, shared_from_this()));
      return;
    }
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;
  char drain_[4096] = {};
  const pack_service& service_;
};

} // namespace detail

class pack_server {
public:
  /// Serves `root` on `address:port` (port 0: a free one) until destroyed. Throws `io_error`
  /// when the root is not a directory or the address cannot be bound, `value_error` for 0 threads.
  explicit pack_server(const std::filesystem::path& root, server_options opt = {},
                       const std::string& address = "127.0.0.1", unsigned short port = 0)
    : service_(root, opt), acceptor_(ioc_) {
    if (opt.threads == 0) {
      throw value_error("selmask::transfer::pack_server: threads must be at least 1");
    }
    namespace asio = boost::asio;
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(address, ec);
    if (ec) {
      throw value_error("selmask::transfer::pack_server: '" + address + "' is not an IP address");
    }
    const asio::ip::tcp::endpoint at(ip, port);
    acceptor_.open(at.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
      acceptor_.bind(at, ec);
    }
    if (!ec) {
      acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      throw io_error("selmask::transfer::pack_server: cannot listen on " + address + ":" +
                     std::to_string(port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    address_ = address;
    accept();
    for (std::size_t i = 0; i < opt.threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }
  pack_server(const pack_server&) = delete;
  pack_server& operator=(const pack_server&) = delete;
  ~pack_server() { stop(); }

  [[nodiscard]] unsigned short port() const noexcept { return port_; }
  /// `http://address:port` followed by `target` (e.g. "/pack?file=a.raw&plan=a.plan.json").
  [[nodiscard]] std::string url(std::string_view target = {}) const {
    return "http://" + address_ + ":" + std::to_string(port_) + std::string(target);
  }
  [[nodiscard]] const pack_service& service() const noexcept { return service_; }

  /// Stops serving: open connections are dropped, the threads joined. Idempotent.
  void stop() {
    ioc_.stop();
    for (std::thread& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
    threads_.clear();
  }

private:
  void accept() {
    acceptor_.async_accept(boost::asio::make_strand(ioc_),
                           [this](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
                             if (!ec) {
                               std::make_shared<detail::pack_session>(std::move(s), service_)->start();
                             }
                             if (acceptor_.is_open()) {
                               accept();
                             }
                           });
  }

  pack_service service_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::string address_;
  unsigned short port_ = 0;
};

} // namespace selmask::transfer

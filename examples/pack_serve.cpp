// The packing server from the command line: serves DIR (files, ranges, /pack and /select; see
// transfer/pack_service.hpp) until interrupted (SIGINT or SIGTERM).
//
//   pack_serve --root DIR [--address 127.0.0.1] [--port 8080] [--threads 4]
//              [--max-body BYTES] [--max-bitmaps BYTES]
//
// e.g. with a plan file q05.plan.json and the raw images t10k.raw under DIR:
//   curl -o payload.bin 'http://127.0.0.1:8080/pack?file=t10k.raw&plan=q05.plan.json'
#include "command_line.hpp"

#include <selmask/transfer/server.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>

#include <pthread.h>
#include <signal.h>

int main(int argc, char** argv) {
  std::filesystem::path root;
  std::string address = "127.0.0.1";
  std::size_t port = 8080;
  selmask::transfer::server_options opt;
  example::command_line cl("pack_serve");
  cl.option("--root", "DIR", root)
    .option("--address", "IP", address)
    .option("--port", "N", port)
    .option("--threads", "N", opt.threads)
    .option("--max-body", "BYTES", opt.max_body_bytes)
    .option("--max-bitmaps", "BYTES", opt.max_bitmap_bytes);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  if (root.empty() || port > 65535) {
    std::fprintf(stderr, "pack_serve: %s\n",
                 root.empty() ? "--root DIR is required" : "--port must be at most 65535");
    return 2;
  }
  try {
    // SIGINT and SIGTERM blocked here and in the server's threads (they inherit the mask), and
    // taken by sigwait below: the server stops cleanly
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    selmask::transfer::pack_server server(root, opt, address, static_cast<unsigned short>(port));
    std::printf("pack_serve: serving %s at %s (%zu threads)\n", server.service().root().string().c_str(),
                server.url().c_str(), opt.threads);
    std::fflush(stdout);
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    std::printf("pack_serve: signal %d, stopping\n", signal_number);
    server.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pack_serve: %s\n", e.what());
    return 1;
  }
  return 0;
}

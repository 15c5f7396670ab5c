// No include guard: included after the libtorch headers by each selmask/libtorch header.
/// \file libtorch/glog_check.hpp
/// The one macro the libtorch headers leave behind that breaks test code.
///
/// c10, built with glog as Debian's libtorch is (`C10_USE_GLOG`), includes `glog/logging.h`, which
/// defines `CHECK(condition)` — the name of Catch2's (and other test frameworks') non-fatal check.
/// Included after `catch2/catch.hpp`, glog's definition replaces Catch2's, and a failing `CHECK`
/// then aborts the whole test program instead of reporting a failure. So:
///  - the selmask/libtorch headers must come before any test framework: included after Catch2
///    they stop the build with a message saying so;
///  - after the libtorch headers, this file removes glog's `CHECK` (that one only: `CHECK_EQ`,
///    `LOG`, `DCHECK` ... keep their glog meaning). Define `SELMASK_TORCH_KEEP_GLOG_CHECK` to keep
///    it. libtorch headers included later see no `CHECK`: include them before selmask's.

#if defined(TWOBLUECUBES_CATCH_HPP_INCLUDED) || defined(CATCH_VERSION_MAJOR)
#error                                                                                                       \
  "selmask/libtorch: include the selmask/libtorch headers before catch2/catch.hpp (c10's glog defines CHECK, which would replace Catch2's CHECK)"
#endif
#if !defined(SELMASK_TORCH_KEEP_GLOG_CHECK) && defined(CHECK)
#undef CHECK
#endif

#pragma once
// The examples' command lines: every option bound to the variable it sets, the usage line made
// from the same list, so that an example states its options once.
//
//   bool quick = false;
//   std::uint64_t seed = 0;
//   example::command_line cl("remote_channels");
//   cl.flag("--quick", quick).option("--seed", "N", seed);
//   if (!cl.parse(argc, argv)) return 2;  // printed what was wrong and the usage line
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace example {

class command_line {
public:
  explicit command_line(std::string program) : program_(std::move(program)) {}

  /// `name` without a value sets `v` to true.
  command_line& flag(std::string name, bool& v) {
    options_.push_back({std::move(name), "", [&v](const std::string&) { v = true; }});
    return *this;
  }
  /// `name VALUE`: VALUE read as `T` (an unsigned or signed integer, a float, a string or a path)
  /// into `v`; `metavar` names it in the usage line.
  template <class T>
  command_line& option(std::string name, std::string metavar, T& v) {
    options_.push_back({std::move(name), std::move(metavar), [&v](const std::string& s) { v = read<T>(s); }});
    return *this;
  }

  /// Sets the variables from `argv`. An unknown argument, a missing value or a value that does
  /// not read as its type: prints what was wrong and the usage line on stderr, returns false.
  bool parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      const option_entry* o = find(a);
      if (o == nullptr) {
        return fail("unknown argument " + a);
      }
      std::string value;
      if (!o->metavar.empty()) {
        if (i + 1 >= argc) {
          return fail("missing value after " + a);
        }
        value = argv[++i];
      }
      try {
        o->set(value);
      } catch (const std::logic_error&) { // std::invalid_argument, std::out_of_range
        return fail("bad value '" + value + "' for " + a);
      }
    }
    return true;
  }

  /// "usage: program [--quick] [--seed N] …".
  [[nodiscard]] std::string usage() const {
    std::string u = "usage: " + program_;
    for (const auto& o : options_) {
      u += " [" + o.name + (o.metavar.empty() ? "" : " " + o.metavar) + "]";
    }
    return u;
  }

private:
  struct option_entry {
    std::string name, metavar; // metavar empty: a flag
    std::function<void(const std::string&)> set;
  };

  const option_entry* find(const std::string& name) const {
    for (const auto& o : options_) {
      if (o.name == name) {
        return &o;
      }
    }
    return nullptr;
  }
  bool fail(const std::string& what) const {
    std::fprintf(stderr, "%s: %s\n%s\n", program_.c_str(), what.c_str(), usage().c_str());
    return false;
  }
  // the whole text must be the number (std::sto* alone accept "3x" as 3)
  template <class T>
  static T read(const std::string& s) {
    std::size_t used = 0;
    T v{};
    if constexpr (std::is_floating_point_v<T>) {
      v = static_cast<T>(std::stod(s, &used));
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      if (!s.empty() && s.front() == '-') {
        throw std::invalid_argument(s);
      }
      v = static_cast<T>(std::stoull(s, &used));
    } else if constexpr (std::is_integral_v<T>) {
      v = static_cast<T>(std::stoll(s, &used));
    } else {
      return T(s);
    }
    if (used != s.size()) {
      throw std::invalid_argument(s);
    }
    return v;
  }

  std::string program_;
  std::vector<option_entry> options_;
};

} // namespace example

// Command-line parsing for the programs that use CLI11: --help prints and
// exits 0; a usage error (unknown flag or argument, bad value, missing
// required flag) prints CLI11's message and exits 2, the status every lvs
// program uses for usage errors (CLI11's own are 105-114).
//
// Thread-safety: call from main() before starting threads.
#ifndef LVS_COMMON_CLI_PARSE_H_
#define LVS_COMMON_CLI_PARSE_H_

#include <CLI/CLI.hpp>

namespace lvs::common {

// The exit status for `error` after printing it: 0 for --help, else 2.
inline int UsageExit(CLI::App& app, const CLI::ParseError& error) {
  return app.exit(error) == 0 ? 0 : 2;
}

}  // namespace lvs::common

// In main(): parses argc/argv with `app`, returning from main() with the
// status of UsageExit on --help or a usage error.
#define LVS_CLI_PARSE(app, argc, argv)           \
  do {                                           \
    try {                                        \
      (app).parse((argc), (argv));               \
    } catch (const CLI::ParseError& e) {         \
      return ::lvs::common::UsageExit((app), e); \
    }                                            \
  } while (false)

#endif  // LVS_COMMON_CLI_PARSE_H_

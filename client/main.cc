// lvs: the command-line client of the lvs video service (torch-free).
//
//   lvs generate "a fox in the snow" -o fox.mp4 --resolution 1248x704
//   lvs jobs list | get ID | watch ID [-o out.mp4] | cancel ID | delete ID
//   lvs workers --api-key=$ADMIN_KEY
#include <cstdlib>
#include <string>

#include "CLI/CLI.hpp"
#include "client/command.h"

int main(int argc, char** argv) {
  lvs::client::StartSignalThread();
  CLI::App app{"lvs: generate videos with an lvs server"};
  app.set_version_flag("--version", std::string("lvs 0.1.0"));
  app.require_subcommand(1);
  // Global flags may also follow the subcommand.
  app.fallthrough();
  lvs::client::GlobalOptions options;
  app.add_option("--server", options.channel.target, "host:port of the server")
      ->envname("LVS_SERVER");
  app.add_option("--api-key", options.api_key,
                 "API key (admin key for admin commands)")
      ->envname("LVS_API_KEY");
  app.add_option("--tls-ca", options.channel.tls_ca,
                 "CA of the server certificate (enables TLS)");
  app.add_option("--tls-cert", options.channel.tls_cert,
                 "client certificate for mutual TLS");
  app.add_option("--tls-key", options.channel.tls_key,
                 "client key for mutual TLS");
  app.add_option("--timeout", options.timeout_seconds,
                 "deadline of unary calls in seconds");
  lvs::client::CommandResult result;
  lvs::client::RegisterGenerateCommand(app, options, result);
  lvs::client::RegisterJobsCommand(app, options, result);
  lvs::client::RegisterWorkersCommand(app, options, result);
  lvs::client::RegisterModelsCommand(app, options, result);
  lvs::client::RegisterTrainCommand(app, options, result);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version.
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // A usage error.
  }
  std::fflush(stdout);
  return result.exit_code;
}

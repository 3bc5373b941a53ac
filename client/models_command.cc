// `lvs models`: the models the connected workers serve (ListModels), with
// their aliases, versions, defaults and limits; what `lvs generate` may ask
// for.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/command.h"

namespace lvs::client {
namespace {

namespace pb = ::lumina::video::v1;

int ListModels(const GlobalOptions& options) {
  auto stub = OpenVideoService(options);
  if (stub == nullptr) return 2;
  pb::ListModelsResponse response;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status status =
      stub->ListModels(&context, pb::ListModelsRequest(), &response);
  if (!status.ok()) {
    PrintRpcError("ListModels", status);
    return 1;
  }
  for (const pb::Model& m : response.models()) {
    const pb::ModelLimits& l = m.limits();
    std::printf("%s", l.id().c_str());
    if (l.aliases_size() > 0) {
      std::printf(" (aliases: %s)", absl::StrJoin(l.aliases(), ", ").c_str());
    }
    std::printf("\n  workers: %s\n",
                m.workers_size() > 0 ? absl::StrJoin(m.workers(), ", ").c_str()
                                     : "none yet (the server's catalogue)");
    if (m.versions_size() > 0) {
      std::printf("  versions: %s\n",
                  absl::StrJoin(m.versions(), ", ").c_str());
    }
    std::printf(
        "  defaults: --resolution %dx%d --frames %d --fps %d --steps %d"
        "%s\n",
        l.default_width(), l.default_height(), l.default_frames(),
        l.default_fps(), l.default_steps(),
        l.default_sample_config().empty()
            ? ""
            : absl::StrCat(" --sample-config ", l.default_sample_config())
                  .c_str());
    std::printf("  resolution: multiples of %d, at most %dx%d",
                l.size_multiple(), l.max_width(), l.max_height());
    if (l.max_pixels() > 0) {
      std::printf(", width * height <= %lld",
                  static_cast<long long>(l.max_pixels()));
    }
    std::printf("\n  frames: frames / %d latent frames, at least %d",
                l.frames_per_latent(), l.min_latent_frames());
    if (l.latent_frames_multiple() > 1) {
      std::printf(", a multiple of %d", l.latent_frames_multiple());
    }
    if (l.max_frames() > 0) std::printf("; at most %d frames", l.max_frames());
    std::printf("\n");
    for (const pb::SampleConfigLimits& c : l.sample_configs()) {
      std::printf(
          "  sample config %s: latent frames a multiple of %d, "
          "width * height <= %lld\n",
          c.name().c_str(), c.latent_frames_multiple(),
          static_cast<long long>(c.max_pixels()));
    }
  }
  return 0;
}

}  // namespace

void RegisterModelsCommand(CLI::App& app, const GlobalOptions& options,
                           CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "models", "list the served models with their defaults and limits");
  cmd->callback(
      [&options, &result] { result.exit_code = ListModels(options); });
}

}  // namespace lvs::client

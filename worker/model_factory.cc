#include "worker/model_factory.h"

#include "absl/strings/str_cat.h"

#if LVS_WORKER_WITH_LUMINA
#include "worker/lumina_model.h"
#endif

namespace lvs::worker {

absl::StatusOr<std::unique_ptr<VideoModel>> CreateVideoModel(
    const ModelOptions& options) {
  if (options.kind == "fake") {
    return std::make_unique<FakeVideoModel>(options.fake);
  }
  if (options.kind == "lumina") {
#if LVS_WORKER_WITH_LUMINA
    return CreateLuminaModel(options);
#else
    return absl::UnimplementedError(
        "--model=lumina: this lvs-worker was built without the Lumina "
        "pipeline adapter (worker/lumina_model.cc and lvs_pipeline)");
#endif
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--model: unknown model '", options.kind, "' (fake or lumina)"));
}

}  // namespace lvs::worker

// Chooses and loads the worker's VideoModel from its flags: the fake model
// (serving tests, benchmarks) or the Lumina-Video pipeline. The Lumina
// adapter lives in worker/lumina_model.{h,cc} and is compiled in when those
// files and the pipeline library exist; it provides
//   absl::StatusOr<std::unique_ptr<VideoModel>>
//   CreateLuminaModel(const ModelOptions& options);
//
// Thread-safety: stateless functions.
#ifndef LVS_WORKER_MODEL_FACTORY_H_
#define LVS_WORKER_MODEL_FACTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/fake_model.h"
#include "worker/video_model.h"

namespace lvs::worker {

// Everything needed to load a model.
struct ModelOptions {
  // "fake" or "lumina".
  std::string kind = "fake";
  // Checkpoint directories of the Lumina pipeline.
  std::string dit_dir;
  std::string text_encoder_dir;
  std::string vae_dir;
  // "cpu" or "cuda[:N]".
  std::string device = "cpu";
  // Several devices of one Lumina pipeline (rank order, the first replaces
  // `device`); empty: `device` only.
  std::vector<std::string> devices;
  // LibTorch intra-op CPU threads of the Lumina pipeline; 0: all usable
  // cores.
  int threads = 0;
  // Settings of the fake model.
  FakeVideoModelOptions fake;
};

// Loads the model `options.kind` names. INVALID_ARGUMENT naming `--model`
// for an unknown kind; UNIMPLEMENTED for "lumina" in a build without the
// pipeline adapter.
absl::StatusOr<std::unique_ptr<VideoModel>> CreateVideoModel(
    const ModelOptions& options);

}  // namespace lvs::worker

#endif  // LVS_WORKER_MODEL_FACTORY_H_

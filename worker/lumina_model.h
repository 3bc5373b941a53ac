// The real VideoModel of lvs-worker: an adapter over the resident
// Lumina-Video pipeline (model/pipeline/pipeline.h). It maps a worker
// request to a GenerationRequest (empty sample config: the pipeline's
// default, f24F96R960-MultiScale; empty precision: bf16 on CUDA, fp32 on the
// CPU), the pipeline's events to the ProgressSink (plan with the actual
// frame count, text encoded, each step with t, patch and guidance, each
// decoded chunk's frames, which the worker encodes to fragmented MP4), and
// the CancelToken to the pipeline's cancellation poll (before every step and
// every decoded chunk).
//
// This header is torch-free; lumina_model.cc links lvs_pipeline.
//
// Thread-safety: as VideoModel (one thread at a time).
#ifndef LVS_WORKER_LUMINA_MODEL_H_
#define LVS_WORKER_LUMINA_MODEL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "worker/model_factory.h"
#include "worker/video_model.h"

namespace lvs::worker {

// Loads the pipeline from `options.dit_dir`, `options.text_encoder_dir`,
// `options.vae_dir` on `options.device`. Errors name the missing flag or the
// directory and what is wrong with it.
absl::StatusOr<std::unique_ptr<VideoModel>> CreateLuminaModel(
    const ModelOptions& options);

}  // namespace lvs::worker

#endif  // LVS_WORKER_LUMINA_MODEL_H_

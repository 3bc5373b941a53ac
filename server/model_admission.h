// Admission of generation requests against what the connected workers can
// run: each generator publishes lumina.video.v1.ModelLimits for its models
// when it registers (model id and aliases, resolution and frame rules, known
// sample configs, defaults). A request is admitted only when some published
// model accepts it; absent width, height, frames, fps and steps take that
// model's defaults and a model alias becomes the model's id. Before any
// generator registered, the server's catalogue stands in for them.
//
// Thread-safety: pure functions.
#ifndef LVS_SERVER_MODEL_ADMISSION_H_
#define LVS_SERVER_MODEL_ADMISSION_H_

#include <string>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "lumina/video/v1/common.pb.h"

namespace lvs::server {

// The limits of the reference Lumina-Video model (the catalogue an
// lvs-server starts with): id "lumina-video", alias "lumina", 1248x704,
// 96 frames at 24 fps, 70 grid points, f24F96R960-MultiScale.
lumina::video::v1::ModelLimits LuminaVideoLimits();

// Checks `request` against `models` and returns every violation of the
// first model that matches its `model` field (all models when it is empty)
// when none accepts it. On success (no violations) `resolved` is the request
// with the defaults of the accepting model filled in (and its id in a
// `model` that named an alias);
// on failure, the request with the reported model's defaults.
// With no models, `resolved` is `request` unchanged and nothing is checked.
// Field paths start with `prefix`.
google::rpc::BadRequest AdmitToModels(
    const lumina::video::v1::GenerateVideoRequest& request,
    const std::vector<lumina::video::v1::ModelLimits>& models,
    const std::string& prefix,
    lumina::video::v1::GenerateVideoRequest* resolved);

}  // namespace lvs::server

#endif  // LVS_SERVER_MODEL_ADMISSION_H_

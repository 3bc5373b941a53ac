// Training job specs from the API (lumina.video.v1.TrainingJobSpec, as a
// trainer leases them) to the trainers' own specs: the DiT's TrainSpec or,
// with MODEL_TYPE_VAE, the VaeTrainSpec. Zero fields take the trainers'
// defaults; the results are validated (INVALID_ARGUMENT names the field).
//
// Thread-safety: pure functions.
#ifndef LVS_TRAINER_SPEC_PROTO_H_
#define LVS_TRAINER_SPEC_PROTO_H_

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "lumina/video/v1/common.pb.h"
#include "nlohmann/json.hpp"
#include "trainer/train_spec.h"
#include "trainer/vae_trainer.h"

namespace lvs::trainer {

// True when the job trains a VAE.
bool IsVaeJob(const lumina::video::v1::TrainingJobSpec& proto);

// The DiT spec of a job; INVALID_ARGUMENT for a VAE job.
absl::StatusOr<TrainSpec> TrainSpecFromProto(
    const lumina::video::v1::TrainingJobSpec& proto);

// The VAE spec of a MODEL_TYPE_VAE job; INVALID_ARGUMENT for another type.
absl::StatusOr<VaeTrainSpec> VaeTrainSpecFromProto(
    const lumina::video::v1::TrainingJobSpec& proto);

// A google.protobuf.Struct as JSON; numbers with an integral value become
// JSON integers (config.json readers want `16`, not `16.0`).
nlohmann::json StructToJson(const google::protobuf::Struct& s);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_SPEC_PROTO_H_

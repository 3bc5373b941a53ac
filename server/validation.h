// Admission checks of client requests. Each function returns every violation
// it finds (field path and the rule broken), not only the first, so the client
// can fix its request in one round trip.
//
// Thread-safety: pure functions.
#ifndef LVS_SERVER_VALIDATION_H_
#define LVS_SERVER_VALIDATION_H_

#include <string>

#include "google/rpc/error_details.pb.h"
#include "lumina/video/v1/common.pb.h"

namespace lvs::server {

// Caps on what a client may ask for (flags of lvs-server).
struct AdmissionCaps {
  int max_prompt_bytes = 4096;
  int max_width = 1920;
  int max_height = 1920;
  int max_frames = 256;
  int max_steps = 250;
  int max_fps = 60;
};

// Checks a generation request; field paths start with `prefix` (e.g.
// "video.").
google::rpc::BadRequest ValidateGenerateRequest(
    const lumina::video::v1::GenerateVideoRequest& request,
    const AdmissionCaps& caps, const std::string& prefix);

// Checks a training job spec; field paths start with `prefix`.
google::rpc::BadRequest ValidateTrainingSpec(
    const lumina::video::v1::TrainingJobSpec& spec, const std::string& prefix);

// Adds a violation for a malformed idempotency key (at most 64 bytes of
// letters, digits, '-' and '_').
void ValidateRequestId(const std::string& request_id, const std::string& field,
                       google::rpc::BadRequest* out);

// Adds a violation for a negative page size.
void ValidatePageSize(int page_size, const std::string& field,
                      google::rpc::BadRequest* out);

// Whether `patch` is an "FxP" patch size (common::ParsePatchComb) with
// both patches at most 16.
bool IsPatchSize(const std::string& patch);

}  // namespace lvs::server

#endif  // LVS_SERVER_VALIDATION_H_

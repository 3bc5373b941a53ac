// The DiT's multi-scale patch combination and its "FxP" parser under the
// model's names; the one implementation is common/patch_comb.h (torch-free,
// shared with the server and the worker).
#ifndef LVS_MODEL_DIT_PATCH_COMB_H_
#define LVS_MODEL_DIT_PATCH_COMB_H_

#include "common/patch_comb.h"

namespace lvs::dit {

using PatchComb = common::PatchComb;
using common::ParsePatchComb;

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_PATCH_COMB_H_

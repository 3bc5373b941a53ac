// The released Lumina-Video DiT's configuration without its checkpoint:
// MultiScaleNextDiT_2B_GQA with the checkpoint's settings (patches 2-1, 2-2,
// 4-2; rope theta 256), optionally with fewer layers. For the DiT benchmarks
// and `lvs-model bench-video`, which build the architecture with random
// weights.
//
// Torch-free. Thread-safety: a pure function.
#ifndef LVS_MODEL_DIT_CONFIG_2B_H_
#define LVS_MODEL_DIT_CONFIG_2B_H_

#include <cstdint>

#include "model/dit/dit_config.h"

namespace lvs::dit {

// Returns the 2B configuration with `layers` layers; a negative count keeps
// the architecture's own.
inline DiTConfig Config2B(int64_t layers = -1) {
  DiTConfig c = DiTConfigFromArgs({{"model", "MultiScaleNextDiT_2B_GQA"},
                                   {"qk_norm", true},
                                   {"patch_sizes", {2, 2, 4}},
                                   {"f_patch_sizes", {1, 2, 2}},
                                   {"rope_theta", 256.0},
                                   {"t_scale", 1000.0},
                                   {"motion_scale", 20.0}},
                                  "bench")
                    .value();
  if (layers >= 0) c.n_layers = layers;
  return c;
}

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_CONFIG_2B_H_

// Seeded, portable Gaussian noise for the initial latent.
//
// lvs draws the initial latent itself (not with torch's device-dependent
// RNG), so a (seed, latent size) pair gives the same latent on every machine
// and device. The generator, fixed as part of the format:
//
//  * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
//    1, 2, 3", SC'11; Random123 known-answer vectors) with key
//    (seed & 0xffffffff, seed >> 32) and counter (c & 0xffffffff, c >> 32,
//    0, 0) for block c = 0, 1, 2, ...
//  * Block c yields the 4 normals of elements 4c .. 4c+3 (row-major order of
//    the latent, [1, C, F, H, W] for the pipeline) from its 4 words r0..r3 by
//    Box-Muller on two uniform pairs: u1 = ((r >> 8) + 1) * 2^-24 in (0, 1],
//    u2 = (r' >> 8) * 2^-24 in [0, 1), radius = sqrt(-2 ln u1),
//    angle = 2 pi u2; (r0, r1) -> elements 4c (cos) and 4c+1 (sin), (r2, r3)
//    -> 4c+2 (cos) and 4c+3 (sin). Computed in double, rounded once to float.
//
// Torch-free. Thread-safety: pure functions.
#ifndef LVS_MODEL_SAMPLER_NOISE_H_
#define LVS_MODEL_SAMPLER_NOISE_H_

#include <array>
#include <cstdint>
#include <vector>

namespace lvs::sampler {

// One Philox4x32-10 block: 10 rounds of `counter` under `key`.
std::array<uint32_t, 4> Philox4x32x10(std::array<uint32_t, 4> counter,
                                      std::array<uint32_t, 2> key);

// Writes the standard normal values of elements [offset, offset + count) of
// the stream of `seed` into `out` (which must hold `count` floats).
void FillGaussianNoise(uint64_t seed, int64_t offset, int64_t count,
                       float* out);

// Returns the first `count` standard normal values of the stream of `seed`.
std::vector<float> GaussianNoise(uint64_t seed, int64_t count);

}  // namespace lvs::sampler

#endif  // LVS_MODEL_SAMPLER_NOISE_H_

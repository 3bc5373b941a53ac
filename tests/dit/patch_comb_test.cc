// The one "FxP" parser and the two spellings of a patch combination.
#include "model/dit/patch_comb.h"

#include <gtest/gtest.h>

namespace lvs::dit {
namespace {

TEST(PatchCombTest, ParsesFxPTemporalFirst) {
  absl::StatusOr<PatchComb> p = ParsePatchComb(" 2x4 ");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->f_patch, 2);
  EXPECT_EQ(p->patch, 4);
  EXPECT_EQ(p->ToString(), "2x4");
  EXPECT_EQ(p->DiTKey(), "4-2");
  EXPECT_EQ(p->PatchFeatures(16), 2 * 4 * 4 * 16);
  EXPECT_EQ(*p, (PatchComb{2, 4}));
  EXPECT_NE(*p, (PatchComb{4, 2}));
}

TEST(PatchCombTest, RejectsWhatIsNotTwoPositiveIntegers) {
  for (const char* bad : {"", "x", "1x", "x2", "0x2", "1x0", "-1x2", "1x2x3",
                          "ax2", "1*2", "1.5x2"}) {
    absl::StatusOr<PatchComb> p = ParsePatchComb(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(p.status().message().find("is not \"FxP\""), std::string::npos)
        << p.status();
  }
}

}  // namespace
}  // namespace lvs::dit

// VAE config.json parsing: the golden tiny config, the CogVideoX-2b shape,
// and errors that name the file and field.
#include "model/vae/vae_config.h"

#include <gtest/gtest.h>

#include <string>

#include "nlohmann/json.hpp"

namespace lvs::vae {
namespace {

nlohmann::json Cog2b() {
  return nlohmann::json{{"_class_name", "AutoencoderKLCogVideoX"},
                        {"in_channels", 3},
                        {"out_channels", 3},
                        {"latent_channels", 16},
                        {"block_out_channels", {128, 256, 256, 512}},
                        {"layers_per_block", 3},
                        {"norm_num_groups", 32},
                        {"norm_eps", 1e-6},
                        {"act_fn", "silu"},
                        {"temporal_compression_ratio", 4},
                        {"sample_height", 480},
                        {"sample_width", 720},
                        {"scaling_factor", 1.15258426}};
}

TEST(VaeConfigTest, ReadsGoldenConfig) {
  auto c = ReadVaeConfig(std::string(LVS_GOLDEN_DIR) + "/vae/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->block_out_channels, (std::vector<int64_t>{16, 32, 32, 32}));
  EXPECT_EQ(c->layers_per_block, 1);
  EXPECT_EQ(c->norm_num_groups, 8);
  EXPECT_EQ(c->latent_channels, 16);
  EXPECT_EQ(c->TemporalCompressLevel(), 2);
  EXPECT_EQ(c->SpatialCompressionRatio(), 8);
  EXPECT_DOUBLE_EQ(c->scaling_factor, 1.15258426);
}

TEST(VaeConfigTest, ParsesCogVideoX2bShape) {
  auto c = ParseVaeConfig(Cog2b().dump(), "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->block_out_channels.back(), 512);
  EXPECT_EQ(c->layers_per_block, 3);
  EXPECT_EQ(c->sample_width, 720);
}

TEST(VaeConfigTest, MissingFieldNamesFileAndField) {
  for (const char* field :
       {"_class_name", "latent_channels", "block_out_channels",
        "layers_per_block", "norm_num_groups", "norm_eps",
        "temporal_compression_ratio"}) {
    nlohmann::json j = Cog2b();
    j.erase(field);
    auto c = ParseVaeConfig(j.dump(), "/models/vae/config.json");
    ASSERT_FALSE(c.ok()) << field;
    EXPECT_NE(c.status().message().find("/models/vae/config.json"),
              std::string::npos);
    EXPECT_NE(c.status().message().find(field), std::string::npos)
        << c.status();
  }
}

TEST(VaeConfigTest, RejectsWrongClassAndRanges) {
  struct Edit {
    const char* field;
    nlohmann::json value;
  };
  for (const Edit& e :
       {Edit{"_class_name", "AutoencoderKL"},
        Edit{"temporal_compression_ratio", 3},
        Edit{"temporal_compression_ratio", 16},
        Edit{"block_out_channels", {128, 250}}, Edit{"layers_per_block", 0},
        Edit{"act_fn", "gelu"}, Edit{"use_quant_conv", true},
        Edit{"up_block_types", {"UpDecoderBlock2D"}}}) {
    nlohmann::json j = Cog2b();
    j[e.field] = e.value;
    auto c = ParseVaeConfig(j.dump(), "cfg.json");
    ASSERT_FALSE(c.ok()) << e.field << " = " << e.value.dump();
    EXPECT_NE(c.status().message().find(e.field), std::string::npos)
        << c.status();
  }
  EXPECT_FALSE(ParseVaeConfig("{not json", "cfg.json").ok());
}

}  // namespace
}  // namespace lvs::vae

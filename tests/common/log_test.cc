// common/log: one JSON object per line, fixed leading fields, the process
// context on every line, fields in call order, empty values left out.
#include "common/log.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace lvs::common {
namespace {

TEST(LogTest, LineIsOneJsonObjectWithContextAndFieldsInOrder) {
  SetLogProcess("lvs-test");
  SetLogContext({{"worker_id", "w1"}});
  const std::string line = FormatLogLine(LogLevel::kWarning, "job_end",
                                         {{"job_id", "videos/a"},
                                          {"outcome", "failed"},
                                          {"error", ""},
                                          {"seconds", 1.5},
                                          {"note", "quote \" and\nnewline"}});
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"ts", "level", "process", "event",
                                            "worker_id", "job_id", "outcome",
                                            "seconds", "note"}));
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["process"], "lvs-test");
  EXPECT_EQ(j["event"], "job_end");
  EXPECT_EQ(j["worker_id"], "w1");
  EXPECT_EQ(j["seconds"], 1.5);
  EXPECT_EQ(j["note"], "quote \" and\nnewline");
  // RFC 3339 UTC with milliseconds.
  const std::string ts = j["ts"];
  ASSERT_EQ(ts.size(), 24u) << ts;
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts.back(), 'Z');

  SetLogContext({{"worker_id", nullptr}});
  const nlohmann::json k =
      nlohmann::json::parse(FormatLogLine(LogLevel::kInfo, "x", {}));
  EXPECT_FALSE(k.contains("worker_id"));
  EXPECT_EQ(k["level"], "info");
}

TEST(LogTest, InvalidUtf8IsReplacedNotThrown) {
  const std::string bad = "path\xff";
  const std::string line = FormatLogLine(LogLevel::kInfo, "x", {{"p", bad}});
  EXPECT_NO_THROW(nlohmann::json::parse(line)) << line;
}

}  // namespace
}  // namespace lvs::common

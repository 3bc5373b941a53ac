#include "model/sampler/sample_config.h"

#include <cctype>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lvs::sampler {
namespace {

// A parsed literal of the config syntax: a number, a string or a tuple.
struct Literal {
  enum Kind { kNumber, kString, kTuple } kind = kNumber;
  double number = 0;
  std::string text;  // kString: the string; kNumber: its spelling.
  std::vector<Literal> items;
};

// Recursive-descent parser for Python-like literals:
//   literal := number | 'str' | "str" | bareword | '(' list ')' | '[' list ']'
//   list    := literal (',' literal)* [',']
class LiteralParser {
 public:
  LiteralParser(absl::string_view text, absl::string_view field)
      : text_(text), field_(field) {}

  absl::StatusOr<Literal> ParseAll() {
    LVS_ASSIGN_OR_RETURN(Literal lit, Parse(0));
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected trailing text");
    return lit;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("sample config field \"", field_, "\": ", what,
                     " at offset ", pos_, " in \"", text_, "\""));
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(uint8_t(text_[pos_]))) ++pos_;
  }

  absl::StatusOr<Literal> Parse(int depth) {
    if (depth > 8) return Error("nesting too deep");
    SkipSpace();
    if (pos_ == text_.size()) return Error("missing value");
    const char c = text_[pos_];
    if (c == '(' || c == '[') return ParseTuple(c == '(' ? ')' : ']', depth);
    if (c == '"' || c == '\'') return ParseQuoted(c);
    return ParseBare();
  }

  absl::StatusOr<Literal> ParseTuple(char close, int depth) {
    ++pos_;
    Literal lit;
    lit.kind = Literal::kTuple;
    while (true) {
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == close) {
        ++pos_;
        break;
      }
      LVS_ASSIGN_OR_RETURN(Literal item, Parse(depth + 1));
      lit.items.push_back(std::move(item));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == close) continue;
      return Error(
          absl::StrCat("expected ',' or '", std::string(1, close), "'"));
    }
    if (lit.items.empty()) return Error("empty tuple");
    return lit;
  }

  absl::StatusOr<Literal> ParseQuoted(char quote) {
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == absl::string_view::npos) return Error("unterminated string");
    Literal lit;
    lit.kind = Literal::kString;
    lit.text = std::string(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return lit;
  }

  absl::StatusOr<Literal> ParseBare() {
    const size_t start = pos_;
    while (pos_ < text_.size() && !std::isspace(uint8_t(text_[pos_])) &&
           text_[pos_] != ',' && text_[pos_] != ')' && text_[pos_] != ']' &&
           text_[pos_] != '(' && text_[pos_] != '[') {
      ++pos_;
    }
    if (pos_ == start) return Error("missing value");
    Literal lit;
    lit.text = std::string(text_.substr(start, pos_ - start));
    double v;
    if (absl::SimpleAtod(lit.text, &v) && !absl::StrContains(lit.text, "x")) {
      lit.kind = Literal::kNumber;
      lit.number = v;
    } else {
      lit.kind = Literal::kString;  // e.g. a bare 1x2
    }
    return lit;
  }

  absl::string_view text_;
  absl::string_view field_;
  size_t pos_ = 0;
};

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("sample config field \"", field, "\": ", what));
}

absl::StatusOr<double> ToNumber(const Literal& lit, absl::string_view field,
                                absl::string_view role) {
  if (lit.kind != Literal::kNumber) {
    return FieldError(
        field, absl::StrCat(role, " must be a number, got \"", lit.text, "\""));
  }
  if (!std::isfinite(lit.number)) {
    return FieldError(field, absl::StrCat(role, " must be finite"));
  }
  return lit.number;
}

absl::StatusOr<PatchComb> ToPatch(const Literal& lit, absl::string_view field,
                                  absl::string_view role) {
  if (lit.kind != Literal::kString) {
    return FieldError(field, absl::StrCat(role, " must be a \"FxP\" string"));
  }
  absl::StatusOr<PatchComb> p = dit::ParsePatchComb(lit.text);
  if (!p.ok()) return FieldError(field, p.status().message());
  return p;
}

// Converts a literal (scalar or `(default, (thr, v), ...)`) with `convert`.
template <typename T, typename Convert>
absl::StatusOr<TimeAware<T>> ToTimeAware(const Literal& lit,
                                         absl::string_view field,
                                         Convert convert) {
  TimeAware<T> out;
  if (lit.kind != Literal::kTuple) {
    LVS_ASSIGN_OR_RETURN(out.default_value, convert(lit, field, "value"));
    return out;
  }
  LVS_ASSIGN_OR_RETURN(out.default_value,
                       convert(lit.items[0], field, "default value"));
  for (size_t i = 1; i < lit.items.size(); ++i) {
    const Literal& pair = lit.items[i];
    const std::string role = absl::StrCat("pair ", i);
    if (pair.kind != Literal::kTuple || pair.items.size() != 2) {
      return FieldError(field,
                        absl::StrCat(role, " must be (threshold, value)"));
    }
    LVS_ASSIGN_OR_RETURN(
        double threshold,
        ToNumber(pair.items[0], field, absl::StrCat(role, " threshold")));
    LVS_ASSIGN_OR_RETURN(
        T value, convert(pair.items[1], field, absl::StrCat(role, " value")));
    out.steps.emplace_back(threshold, value);
  }
  return out;
}

std::string FormatNumber(double v) { return absl::StrCat(v); }

template <typename T, typename Format>
std::string FormatGeneric(const TimeAware<T>& value, Format format) {
  if (value.steps.empty()) return format(value.default_value);
  std::string out = absl::StrCat("(", format(value.default_value));
  for (const auto& [thr, v] : value.steps) {
    absl::StrAppend(&out, ",(", FormatNumber(thr), ",", format(v), ")");
  }
  return out + ")";
}

SampleConfig MakeNamed(const std::string& name, TimeAware<PatchComb> patch,
                       double ts, double renorm, TimeAware<double> cfg) {
  SampleConfig c;
  c.name = name;
  c.patch = std::move(patch);
  c.grid_points = 70;
  c.time_shift = ts;
  c.renorm = renorm;
  c.cfg = std::move(cfg);
  c.motion = {6.0, {}};
  c.neg_motion = {2.0, {{0.05, 6.0}}};
  return c;
}

const std::vector<SampleConfig>& NamedConfigs() {
  // Lumina-Video configs/sample/__init__.py (CANDIDATE_SAMPLE_CONFIGS).
  static const auto* configs = new std::vector<SampleConfig>{
      MakeNamed("f24F96R960", {{1, 2}, {}}, 24.0, 2, {20, {{0.2, 0}}}),
      MakeNamed("f24F96R960-MultiScale",
                {{2, 4}, {{0.03, {2, 2}}, {0.125, {1, 2}}}}, 24.0, 2,
                {20, {{0.2, 0}}}),
      MakeNamed("f16F64R512", {{1, 2}, {}}, 8.0, -1, {12, {{0.4, 0}}}),
      MakeNamed("f16F64R512-MultiScale",
                {{2, 4}, {{0.075, {2, 2}}, {0.3, {1, 2}}}}, 8.0, -1,
                {12, {{0.4, 0}}}),
  };
  return *configs;
}

// Converts a JSON value to the literal form (arrays become tuples).
absl::StatusOr<Literal> JsonToLiteral(const nlohmann::json& j,
                                      absl::string_view field) {
  Literal lit;
  if (j.is_number()) {
    lit.kind = Literal::kNumber;
    lit.number = j.get<double>();
    lit.text = j.dump();
  } else if (j.is_string()) {
    lit.kind = Literal::kString;
    lit.text = j.get<std::string>();
  } else if (j.is_array() && !j.empty()) {
    lit.kind = Literal::kTuple;
    for (const auto& item : j) {
      LVS_ASSIGN_OR_RETURN(Literal sub, JsonToLiteral(item, field));
      lit.items.push_back(std::move(sub));
    }
  } else {
    return FieldError(field, absl::StrCat("unsupported JSON value ", j.dump()));
  }
  return lit;
}

}  // namespace

bool SampleConfig::operator==(const SampleConfig& o) const {
  return name == o.name && patch == o.patch && grid_points == o.grid_points &&
         time_shift == o.time_shift && renorm == o.renorm && cfg == o.cfg &&
         motion == o.motion && neg_motion == o.neg_motion;
}

std::vector<std::string> NamedSampleConfigNames() {
  std::vector<std::string> names;
  for (const SampleConfig& c : NamedConfigs()) names.push_back(c.name);
  return names;
}

absl::StatusOr<SampleConfig> NamedSampleConfig(absl::string_view name) {
  for (const SampleConfig& c : NamedConfigs()) {
    if (c.name == name) return c;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown sample config \"", name,
      "\"; known: ", absl::StrJoin(NamedSampleConfigNames(), ", ")));
}

absl::StatusOr<TimeAware<double>> ParseTimeAwareNumber(
    absl::string_view text, absl::string_view field) {
  LVS_ASSIGN_OR_RETURN(Literal lit, LiteralParser(text, field).ParseAll());
  return ToTimeAware<double>(lit, field, ToNumber);
}

absl::StatusOr<TimeAware<PatchComb>> ParseTimeAwarePatch(
    absl::string_view text, absl::string_view field) {
  LVS_ASSIGN_OR_RETURN(Literal lit, LiteralParser(text, field).ParseAll());
  return ToTimeAware<PatchComb>(lit, field, ToPatch);
}

absl::Status ValidateSampleConfig(const SampleConfig& c) {
  if (c.grid_points < 2) {
    return FieldError("step", absl::StrCat("must be >= 2 (grid points), got ",
                                           c.grid_points));
  }
  if (!(c.time_shift > 0) || !std::isfinite(c.time_shift)) {
    return FieldError("ts", "must be a finite number > 0");
  }
  if (!std::isfinite(c.renorm)) return FieldError("renorm", "must be finite");
  const std::pair<const char*, const TimeAware<double>*> scalars[] = {
      {"cfg", &c.cfg}, {"motion", &c.motion}, {"negMotion", &c.neg_motion}};
  for (const auto& [field, value] : scalars) {
    if (!std::isfinite(value->default_value)) {
      return FieldError(field, "default value must be finite");
    }
    for (const auto& [thr, v] : value->steps) {
      if (!std::isfinite(thr) || !std::isfinite(v)) {
        return FieldError(field, "thresholds and values must be finite");
      }
    }
  }
  for (const auto& [thr, v] : c.patch.steps) {
    if (!std::isfinite(thr))
      return FieldError("P", "thresholds must be finite");
  }
  return absl::OkStatus();
}

absl::Status OverrideSampleConfigField(SampleConfig& config,
                                       absl::string_view field,
                                       absl::string_view text) {
  SampleConfig c = config;
  if (field == "P" || field == "patch_comb") {
    LVS_ASSIGN_OR_RETURN(c.patch, ParseTimeAwarePatch(text, "P"));
  } else if (field == "cfg") {
    LVS_ASSIGN_OR_RETURN(c.cfg, ParseTimeAwareNumber(text, "cfg"));
  } else if (field == "motion") {
    LVS_ASSIGN_OR_RETURN(c.motion, ParseTimeAwareNumber(text, "motion"));
  } else if (field == "negMotion" || field == "neg_motion") {
    LVS_ASSIGN_OR_RETURN(c.neg_motion, ParseTimeAwareNumber(text, "negMotion"));
  } else if (field == "step" || field == "steps") {
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &c.grid_points)) {
      return FieldError("step",
                        absl::StrCat("\"", text, "\" is not an integer"));
    }
  } else if (field == "ts" || field == "time_shift") {
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(text), &c.time_shift)) {
      return FieldError("ts", absl::StrCat("\"", text, "\" is not a number"));
    }
  } else if (field == "renorm") {
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(text), &c.renorm)) {
      return FieldError("renorm",
                        absl::StrCat("\"", text, "\" is not a number"));
    }
  } else {
    return FieldError(field,
                      "unknown field; known: P, cfg, motion, negMotion, "
                      "step, ts, renorm");
  }
  LVS_RETURN_IF_ERROR(ValidateSampleConfig(c));
  if (c.name.find("custom") == std::string::npos) {
    c.name = c.name.empty() ? "custom" : absl::StrCat(c.name, "+custom");
  }
  config = std::move(c);
  return absl::OkStatus();
}

absl::StatusOr<SampleConfig> SampleConfigFromJson(const nlohmann::json& json,
                                                  absl::string_view name) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample config \"", name, "\": not a JSON object"));
  }
  static const char* const kRequired[] = {"P",   "step",   "ts",       "renorm",
                                          "cfg", "motion", "negMotion"};
  for (const char* key : kRequired) {
    if (!json.contains(key)) return FieldError(key, "missing");
  }
  SampleConfig c;
  c.name = std::string(name);
  LVS_ASSIGN_OR_RETURN(Literal p, JsonToLiteral(json["P"], "P"));
  LVS_ASSIGN_OR_RETURN(c.patch, ToTimeAware<PatchComb>(p, "P", ToPatch));
  const std::pair<const char*, TimeAware<double>*> scalars[] = {
      {"cfg", &c.cfg}, {"motion", &c.motion}, {"negMotion", &c.neg_motion}};
  for (const auto& [field, value] : scalars) {
    LVS_ASSIGN_OR_RETURN(Literal lit, JsonToLiteral(json[field], field));
    LVS_ASSIGN_OR_RETURN(*value, ToTimeAware<double>(lit, field, ToNumber));
  }
  if (!json["step"].is_number_integer())
    return FieldError("step", "not an integer");
  if (!json["ts"].is_number()) return FieldError("ts", "not a number");
  if (!json["renorm"].is_number()) return FieldError("renorm", "not a number");
  c.grid_points = json["step"].get<int>();
  c.time_shift = json["ts"].get<double>();
  c.renorm = json["renorm"].get<double>();
  LVS_RETURN_IF_ERROR(ValidateSampleConfig(c));
  return c;
}

std::string FormatTimeAware(const TimeAware<double>& value) {
  return FormatGeneric(value, FormatNumber);
}

std::string FormatTimeAware(const TimeAware<PatchComb>& value) {
  return FormatGeneric(value, [](const PatchComb& p) {
    return absl::StrCat("\"", p.ToString(), "\"");
  });
}

}  // namespace lvs::sampler

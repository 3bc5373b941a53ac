#include "server/model_admission.h"

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/patch_comb.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;

bool Names(const v1::ModelLimits& m, const std::string& name) {
  if (m.id() == name) return true;
  return std::find(m.aliases().begin(), m.aliases().end(), name) !=
         m.aliases().end();
}

// The frame patch F of an "FxP" patch size (1 when it does not parse).
int FramePatch(const std::string& patch) {
  absl::StatusOr<common::PatchComb> p = common::ParsePatchComb(patch);
  return p.ok() ? static_cast<int>(p->f_patch) : 1;
}

void Add(google::rpc::BadRequest* out, const std::string& field,
         const std::string& rule) {
  auto* v = out->add_field_violations();
  v->set_field(field);
  v->set_description(rule);
}

void FillDefaults(const v1::ModelLimits& m, v1::GenerateVideoRequest* r) {
  if (r->width() == 0) r->set_width(m.default_width());
  if (r->height() == 0) r->set_height(m.default_height());
  if (r->frames() == 0) r->set_frames(m.default_frames());
  if (r->fps() == 0) r->set_fps(m.default_fps());
  if (r->steps() == 0) r->set_steps(m.default_steps());
  // An alias becomes the id; a request for any model stays one.
  if (!r->model().empty()) r->set_model(m.id());
}

// Checks the filled-in request `r` against one model.
google::rpc::BadRequest Check(const v1::ModelLimits& m,
                              const v1::GenerateVideoRequest& r,
                              const std::string& p) {
  google::rpc::BadRequest out;
  const std::string of = absl::StrCat(" (model ", m.id(), ")");
  int64_t max_pixels = m.max_pixels();
  int multiple = std::max(m.latent_frames_multiple(), 1);
  std::string config = r.sample_config();
  if (r.has_sample() && config.empty()) {
    // Its own frame patches decide (the top-level multiple is the default
    // config's).
    multiple = FramePatch(r.sample().patch().initial());
    for (const auto& s : r.sample().patch().switches()) {
      multiple = std::max(multiple, FramePatch(s.patch()));
    }
    config = "the explicit sample";
  } else if (m.sample_configs_size() > 0) {
    if (config.empty()) config = m.default_sample_config();
    const v1::SampleConfigLimits* found = nullptr;
    std::vector<std::string> known;
    for (const v1::SampleConfigLimits& c : m.sample_configs()) {
      if (c.name() == config) found = &c;
      known.push_back(c.name());
    }
    if (found == nullptr) {
      Add(&out, p + "sample_config",
          absl::StrCat("unknown sample config '", config, "'", of,
                       "; known: ", absl::StrJoin(known, ", ")));
    } else {
      multiple = std::max(found->latent_frames_multiple(), 1);
      if (found->max_pixels() > 0) max_pixels = found->max_pixels();
    }
  }
  const int size = m.size_multiple();
  for (const auto& [field, value, max] :
       {std::tuple<const char*, int, int>{"width", r.width(), m.max_width()},
        {"height", r.height(), m.max_height()}}) {
    if (value <= 0) {
      Add(&out, p + field,
          absl::StrCat("is required and must be positive; model ", m.id(),
                       " has no default"));
    } else if (size > 1 && value % size != 0) {
      Add(&out, p + field,
          absl::StrCat("must be a multiple of ", size, ", got ", value, of));
    } else if (max > 0 && value > max) {
      Add(&out, p + field,
          absl::StrCat("must be at most ", max, ", got ", value, of));
    }
  }
  const int64_t pixels = int64_t{r.width()} * r.height();
  if (max_pixels > 0 && pixels > max_pixels) {
    Add(&out, p + "width",
        absl::StrCat(r.width(), "x", r.height(), " = ", pixels,
                     " pixels exceeds the budget of ", max_pixels,
                     " pixels (width * height) of sample config ",
                     config.empty() ? "default" : config, of));
  }
  const int per_latent = std::max(m.frames_per_latent(), 1);
  const int latents = r.frames() / per_latent;
  if (r.frames() <= 0) {
    Add(&out, p + "frames",
        absl::StrCat("is required and must be positive; model ", m.id(),
                     " has no default"));
  } else if (latents < m.min_latent_frames()) {
    Add(&out, p + "frames",
        absl::StrCat(r.frames(), " frames give ", latents,
                     " latent frames (frames / ", per_latent, "); at least ",
                     m.min_latent_frames() * per_latent, " frames", of));
  } else if (multiple > 1 && latents % multiple != 0) {
    Add(&out, p + "frames",
        absl::StrCat(
            r.frames(), " frames give ", latents, " latent frames (frames / ",
            per_latent, "), not a multiple of ", multiple, " as sample config ",
            config.empty() ? "default" : config, " needs; e.g. ",
            (latents / multiple + 1) * multiple * per_latent, " frames", of));
  } else if (m.max_frames() > 0 && r.frames() > m.max_frames()) {
    Add(&out, p + "frames",
        absl::StrCat("must be at most ", m.max_frames(), ", got ", r.frames(),
                     of));
  }
  if (m.max_fps() > 0 && r.fps() > m.max_fps()) {
    Add(&out, p + "fps",
        absl::StrCat("must be at most ", m.max_fps(), ", got ", r.fps(), of));
  }
  if (m.max_steps() > 0 && r.steps() > m.max_steps()) {
    Add(&out, p + "steps",
        absl::StrCat("must be at most ", m.max_steps(), ", got ", r.steps(),
                     of));
  }
  return out;
}

}  // namespace

v1::ModelLimits LuminaVideoLimits() {
  v1::ModelLimits m;
  m.set_id("lumina-video");
  m.add_aliases("lumina");
  m.set_size_multiple(32);
  m.set_max_width(2048);
  m.set_max_height(2048);
  m.set_max_pixels(960 * 960);
  m.set_frames_per_latent(4);
  m.set_min_latent_frames(2);
  m.set_latent_frames_multiple(2);
  m.set_max_frames(256);
  m.set_max_fps(120);
  m.set_max_steps(1000);
  for (const auto& [name, multiple, r] :
       {std::tuple<const char*, int, int64_t>{"f24F96R960", 1, 960},
        {"f24F96R960-MultiScale", 2, 960},
        {"f16F64R512", 1, 512},
        {"f16F64R512-MultiScale", 2, 512}}) {
    v1::SampleConfigLimits* c = m.add_sample_configs();
    c->set_name(name);
    c->set_latent_frames_multiple(multiple);
    c->set_max_pixels(r * r);
  }
  m.set_default_width(1248);
  m.set_default_height(704);
  m.set_default_frames(96);
  m.set_default_fps(24);
  m.set_default_steps(70);
  m.set_default_sample_config("f24F96R960-MultiScale");
  return m;
}

google::rpc::BadRequest AdmitToModels(
    const v1::GenerateVideoRequest& request,
    const std::vector<v1::ModelLimits>& models, const std::string& prefix,
    v1::GenerateVideoRequest* resolved) {
  *resolved = request;
  google::rpc::BadRequest first;
  if (models.empty()) return first;
  bool matched = false;
  std::vector<std::string> served;
  for (const v1::ModelLimits& m : models) {
    served.push_back(m.id());
    if (!request.model().empty() && !Names(m, request.model())) continue;
    v1::GenerateVideoRequest r = request;
    FillDefaults(m, &r);
    google::rpc::BadRequest bad = Check(m, r, prefix);
    if (bad.field_violations_size() == 0) {
      *resolved = std::move(r);
      return bad;
    }
    if (!matched) {
      first = std::move(bad);
      *resolved = std::move(r);  // The defaults apply to what is reported.
    }
    matched = true;
  }
  if (!matched) {
    std::sort(served.begin(), served.end());
    served.erase(std::unique(served.begin(), served.end()), served.end());
    Add(&first, prefix + "model",
        absl::StrCat("no worker serves model '", request.model(), "'; served: ",
                     absl::StrJoin(served, ", "), " (see ListModels)"));
  }
  return first;
}

}  // namespace lvs::server

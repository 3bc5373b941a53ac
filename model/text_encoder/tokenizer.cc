#include "model/text_encoder/tokenizer.h"

#include <ATen/ATen.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"

#if defined(__SANITIZE_ADDRESS__)
#define LVS_TOKENIZER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LVS_TOKENIZER_ASAN 1
#endif
#endif

namespace lvs::text_encoder {

// See tokenizer.h.
struct SpShim {
  std::string path;
  decltype(&lvs_sp_load) load;
  decltype(&lvs_sp_free) free;
  decltype(&lvs_sp_encode) encode;
  decltype(&lvs_sp_vocab_size) vocab_size;
  decltype(&lvs_sp_special_id) special_id;
  decltype(&lvs_sp_id_to_piece) id_to_piece;
};

namespace {

constexpr char kShimName[] = "liblvs_sp_shim.so";
constexpr size_t kErrSize = 1024;

// Places the shim is looked for, in order (see tokenizer.h).
std::vector<std::string> ShimCandidates() {
  if (const char* env = std::getenv("LVS_SP_SHIM"); env && *env) {
    return {env};
  }
  std::vector<std::string> paths;
  std::error_code ec;
  const std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    paths.push_back((exe.parent_path() / kShimName).string());
    paths.push_back((exe.parent_path() / ".." / "lib" / kShimName).string());
  }
#ifdef LVS_SP_SHIM_BUILD_PATH
  paths.push_back(LVS_SP_SHIM_BUILD_PATH);
#endif
  return paths;
}

template <typename Fn>
bool Resolve(void* handle, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(handle, name));
  return *fn != nullptr;
}

// dlopens `path` and resolves every entry point; the handle is never closed
// (libsentencepiece's static protobuf registers process-exit destructors).
absl::StatusOr<SpShim> OpenShim(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (handle == nullptr) {
    const char* why = dlerror();
    return absl::NotFoundError(why ? why : path + ": dlopen failed");
  }
  decltype(&lvs_sp_abi_version) abi = nullptr;
  SpShim shim;
  shim.path = path;
  if (!Resolve(handle, "lvs_sp_abi_version", &abi) ||
      !Resolve(handle, "lvs_sp_load", &shim.load) ||
      !Resolve(handle, "lvs_sp_free", &shim.free) ||
      !Resolve(handle, "lvs_sp_encode", &shim.encode) ||
      !Resolve(handle, "lvs_sp_vocab_size", &shim.vocab_size) ||
      !Resolve(handle, "lvs_sp_special_id", &shim.special_id) ||
      !Resolve(handle, "lvs_sp_id_to_piece", &shim.id_to_piece)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": missing shim entry point"));
  }
  if (abi() != LVS_SP_SHIM_ABI_VERSION) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": shim ABI version ", abi(), ", expected ",
                     LVS_SP_SHIM_ABI_VERSION));
  }
  return shim;
}

// Returns the process-wide shim, loading it on first use.
absl::StatusOr<const SpShim*> GetShim() {
  static absl::Mutex mu(absl::kConstInit);
  static const SpShim* loaded ABSL_GUARDED_BY(mu) = nullptr;
  absl::MutexLock lock(&mu);
  if (loaded != nullptr) return loaded;
#ifdef LVS_TOKENIZER_ASAN
  // AddressSanitizer aborts the process on RTLD_DEEPBIND (google/sanitizers
  // issue 611), and without it libsentencepiece's protobuf aborts instead.
  return absl::FailedPreconditionError(absl::StrCat(
      "SentencePiece shim ", kShimName,
      ": cannot be loaded in an AddressSanitizer build (RTLD_DEEPBIND)"));
#endif
  std::vector<std::string> tried;
  for (const std::string& path : ShimCandidates()) {
    absl::StatusOr<SpShim> shim = OpenShim(path);
    if (shim.ok()) {
      loaded = new SpShim(*std::move(shim));
      return loaded;
    }
    tried.push_back(std::string(shim.status().message()));
  }
  return absl::NotFoundError(
      absl::StrCat("SentencePiece shim ", kShimName,
                   " not found (set LVS_SP_SHIM to its path); tried: ",
                   absl::StrJoin(tried, "; ")));
}

}  // namespace

void Tokenizer::ModelDeleter::operator()(LvsSpModel* model) const {
  shim->free(model);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(
    const std::string& model_path, const TokenizerOptions& options) {
  if (options.max_length < 1 || options.pad_to_multiple_of < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer options: max_length (", options.max_length,
                     ") and pad_to_multiple_of (", options.pad_to_multiple_of,
                     ") must be >= 1"));
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(model_path, ": tokenizer model not found"));
  }
  LVS_ASSIGN_OR_RETURN(const SpShim* shim, GetShim());
  char err[kErrSize] = {0};
  std::unique_ptr<LvsSpModel, ModelDeleter> model(
      shim->load(model_path.c_str(), err, sizeof(err)), ModelDeleter{shim});
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": not a SentencePiece model: ", err));
  }
  auto tokenizer = std::unique_ptr<Tokenizer>(
      new Tokenizer(shim, std::move(model), options));
  if (tokenizer->bos_id_ < 0 || tokenizer->pad_id_ < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": the model defines no ",
                     tokenizer->bos_id_ < 0 ? "bos" : "pad", " piece"));
  }
  return tokenizer;
}

Tokenizer::Tokenizer(const SpShim* shim,
                     std::unique_ptr<LvsSpModel, ModelDeleter> model,
                     const TokenizerOptions& options)
    : shim_(shim), model_(std::move(model)), options_(options) {
  pad_id_ = shim_->special_id(model_.get(), 0);
  bos_id_ = shim_->special_id(model_.get(), 2);
  vocab_size_ = shim_->vocab_size(model_.get());
}

Tokenizer::~Tokenizer() = default;

const std::string& Tokenizer::shim_path() const { return shim_->path; }

absl::StatusOr<std::vector<int64_t>> Tokenizer::EncodeIds(
    absl::string_view text) const {
  // Byte fallback yields at most one piece per byte; retry if not.
  std::vector<int32_t> ids(text.size() + 1);
  char err[kErrSize] = {0};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t n = shim_->encode(model_.get(), text.data(), text.size(),
                                    ids.data(), ids.size(), err, sizeof(err));
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece encode failed: ", err));
    }
    if (static_cast<size_t>(n) <= ids.size()) {
      return std::vector<int64_t>(ids.begin(), ids.begin() + n);
    }
    ids.resize(n);
  }
  return absl::InternalError("SentencePiece encode: id count changed");
}

absl::StatusOr<TokenizedBatch> Tokenizer::Encode(
    const std::vector<std::string>& texts) const {
  if (texts.empty()) {
    return absl::InvalidArgumentError("Tokenizer::Encode: no texts");
  }
  std::vector<std::vector<int64_t>> rows;
  TokenizedBatch batch;
  int64_t longest = 0;
  for (const std::string& text : texts) {
    LVS_ASSIGN_OR_RETURN(std::vector<int64_t> ids, EncodeIds(text));
    ids.insert(ids.begin(), bos_id_);
    const int64_t original = static_cast<int64_t>(ids.size());
    batch.original_lengths.push_back(original);
    batch.truncated.push_back(original > options_.max_length);
    if (original > options_.max_length) ids.resize(options_.max_length);
    longest = std::max<int64_t>(longest, ids.size());
    rows.push_back(std::move(ids));
  }
  const int64_t m = options_.pad_to_multiple_of;
  const int64_t length = (longest + m - 1) / m * m;
  const int64_t b = static_cast<int64_t>(rows.size());
  batch.input_ids = at::full({b, length}, pad_id_, at::kLong);
  batch.attention_mask = at::zeros({b, length}, at::kLong);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto mask = batch.attention_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    for (size_t j = 0; j < rows[i].size(); ++j) {
      ids[i][j] = rows[i][j];
      mask[i][j] = 1;
    }
  }
  return batch;
}

std::string Tokenizer::IdToPiece(int64_t id) const {
  if (id < 0 || id >= vocab_size_) return "";
  char buf[256];
  const int64_t n = shim_->id_to_piece(model_.get(), static_cast<int32_t>(id),
                                       buf, sizeof(buf));
  if (n < 0) return "";
  if (static_cast<size_t>(n) < sizeof(buf)) return std::string(buf, n);
  std::string piece(n + 1, '\0');
  shim_->id_to_piece(model_.get(), static_cast<int32_t>(id), piece.data(),
                     piece.size());
  piece.resize(n);
  return piece;
}

}  // namespace lvs::text_encoder

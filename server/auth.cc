#include "server/auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace lvs::server {
namespace {

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read credentials file ", path));
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    std::string trimmed(absl::StripAsciiWhitespace(line));
    if (!trimmed.empty() && trimmed[0] != '#') lines.push_back(trimmed);
  }
  return lines;
}

absl::StatusOr<std::string> ReadSecret(const std::string& path) {
  LVS_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path));
  if (lines.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": expected exactly one non-comment line with the secret"));
  }
  return lines[0];
}

// FNV-1a: a stable, non-reversible id for a key (never the key itself).
std::string KeyId(const std::string& key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("key-%016x", h);
}

std::string Bearer(const Metadata& md) {
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  absl::string_view v = it->second;
  if (!absl::ConsumePrefix(&v, "Bearer ")) return "";
  return std::string(absl::StripAsciiWhitespace(v));
}

}  // namespace

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  // Walks all of `b` whatever the content; length differences still differ.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) {
    const unsigned char ca = a.empty() ? 0 : a[i % a.size()];
    diff |= ca ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0 && !b.empty();
}

absl::StatusOr<Credentials> Credentials::Load(
    const std::string& api_keys_file, const std::string& admin_key_file,
    const std::string& worker_token_file) {
  Credentials c;
  if (!api_keys_file.empty()) {
    LVS_ASSIGN_OR_RETURN(std::vector<std::string> lines,
                         ReadLines(api_keys_file));
    for (size_t i = 0; i < lines.size(); ++i) {
      std::vector<std::string> parts = absl::StrSplit(lines[i], ':');
      Key k;
      k.key = parts[0];
      k.identity.owner = KeyId(k.key);
      bool ok = parts.size() <= 3 && !k.key.empty();
      if (parts.size() > 1) {
        ok = ok && absl::SimpleAtoi(parts[1], &k.identity.max_concurrent) &&
             k.identity.max_concurrent >= 0;
      }
      if (parts.size() > 2) {
        ok = ok && absl::SimpleAtoi(parts[2], &k.identity.max_queued) &&
             k.identity.max_queued >= 0;
      }
      if (!ok) {
        return absl::InvalidArgumentError(
            absl::StrCat(api_keys_file, ": entry ", i + 1,
                         " is not key[:max_concurrent[:max_queued]]"));
      }
      c.keys_.push_back(std::move(k));
    }
    if (c.keys_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(api_keys_file, ": no API keys"));
    }
  }
  if (!admin_key_file.empty()) {
    LVS_ASSIGN_OR_RETURN(c.admin_key_, ReadSecret(admin_key_file));
  }
  if (!worker_token_file.empty()) {
    LVS_ASSIGN_OR_RETURN(c.worker_token_, ReadSecret(worker_token_file));
  }
  return c;
}

int Credentials::FindKey(const std::string& token) const {
  int found = -1;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (ConstantTimeEquals(keys_[i].key, token)) found = static_cast<int>(i);
  }
  return found;
}

absl::StatusOr<ClientIdentity> Credentials::AuthenticateClient(
    const Metadata& md) const {
  if (keys_.empty()) return ClientIdentity{"anonymous", 0, 0};
  const std::string token = Bearer(md);
  if (token.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send `authorization: Bearer <key>` metadata");
  }
  int i = FindKey(token);
  if (i < 0) return absl::UnauthenticatedError("unknown API key");
  return keys_[i].identity;
}

int64_t Credentials::MaxConcurrent(const std::string& owner) const {
  for (const Key& k : keys_) {
    if (k.identity.owner == owner) return k.identity.max_concurrent;
  }
  return 0;
}

absl::Status Credentials::AuthorizeAdmin(const Metadata& md) const {
  if (admin_key_.empty() && keys_.empty()) return absl::OkStatus();
  if (admin_key_.empty()) {
    // Secure by default: with client keys configured, an admin API without
    // its own key would be open to anyone.
    return absl::PermissionDeniedError(
        "AdminService is disabled: the server has API keys but no admin key "
        "(start it with --admin-key-file)");
  }
  const std::string token = Bearer(md);
  if (token.empty()) {
    return absl::UnauthenticatedError(
        "missing admin key: send `authorization: Bearer <admin key>`");
  }
  if (ConstantTimeEquals(admin_key_, token)) return absl::OkStatus();
  if (FindKey(token) >= 0) {
    return absl::PermissionDeniedError(
        "an API key cannot call AdminService; use the admin key");
  }
  return absl::UnauthenticatedError("unknown admin key");
}

absl::Status Credentials::AuthenticateWorker(const Metadata& md) const {
  if (worker_token_.empty()) return absl::OkStatus();
  auto it = md.find("x-lvs-worker-token");
  if (it == md.end()) {
    return absl::UnauthenticatedError(
        "missing worker token: send `x-lvs-worker-token` metadata");
  }
  if (!ConstantTimeEquals(worker_token_, it->second)) {
    return absl::UnauthenticatedError("wrong worker token");
  }
  return absl::OkStatus();
}

}  // namespace lvs::server

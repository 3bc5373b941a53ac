// Credentials of lvs-server: API keys for VideoService clients (with per-key
// limits), the admin credential for AdminService and the worker token for
// WorkerService. Clients send `authorization: Bearer <key>`; workers send
// `x-lvs-worker-token: <token>`. Keys are compared in constant time. With no
// file configured the matching check is off (plaintext loopback default).
//
// Thread-safety: immutable after Load(); safe from any thread.
#ifndef LVS_SERVER_AUTH_H_
#define LVS_SERVER_AUTH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lvs::server {

// Request metadata as a plain map (lower-case keys).
using Metadata = std::multimap<std::string, std::string>;

// Who a VideoService caller is and what it may use.
struct ClientIdentity {
  // Stable id of the key ("anonymous" without keys); jobs belong to it.
  std::string owner;
  // Per-key limits (0: the server-wide default applies).
  int64_t max_concurrent = 0;
  int64_t max_queued = 0;
};

// Returns whether `a` equals `b`, in time independent of where they differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

// The configured credentials.
class Credentials {
 public:
  // Reads the files named by the flags; an empty path disables that check.
  // The API keys file has one `key[:max_concurrent[:max_queued]]` per line
  // ('#' starts a comment line).
  static absl::StatusOr<Credentials> Load(const std::string& api_keys_file,
                                          const std::string& admin_key_file,
                                          const std::string& worker_token_file);

  // Identifies a VideoService caller (UNAUTHENTICATED for a missing or
  // unknown key).
  absl::StatusOr<ClientIdentity> AuthenticateClient(const Metadata& md) const;

  // The max_concurrent of the API key whose owner id is `owner` (0: no
  // limit): the dispatcher leases at most that many of its jobs at once.
  int64_t MaxConcurrent(const std::string& owner) const;

  // Checks the admin credential (UNAUTHENTICATED when missing or unknown,
  // PERMISSION_DENIED for a client key). Without an admin key every call is
  // allowed only when no API keys are configured either; with API keys and
  // no admin key every admin call is PERMISSION_DENIED.
  absl::Status AuthorizeAdmin(const Metadata& md) const;

  // Checks a worker's token (UNAUTHENTICATED when missing or wrong).
  absl::Status AuthenticateWorker(const Metadata& md) const;

  // Whether client API keys are configured.
  bool has_api_keys() const { return !keys_.empty(); }

 private:
  struct Key {
    std::string key;
    ClientIdentity identity;
  };
  // Index of the key matching the bearer token, or -1; scans every key.
  int FindKey(const std::string& token) const;

  std::vector<Key> keys_;
  std::string admin_key_;
  std::string worker_token_;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_AUTH_H_

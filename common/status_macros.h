// Status helpers shared by every lvs library (torch-free, header-only).
//
// Thread-safety: stateless macros; safe everywhere.
#ifndef LVS_COMMON_STATUS_MACROS_H_
#define LVS_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LVS_CONCAT_INNER_(a, b) a##b
#define LVS_CONCAT_(a, b) LVS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define LVS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::absl::Status lvs_status_ = (expr);       \
    if (!lvs_status_.ok()) return lvs_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise moves the value into `lhs` (which may be a declaration).
#define LVS_ASSIGN_OR_RETURN(lhs, rexpr) \
  LVS_ASSIGN_OR_RETURN_IMPL_(LVS_CONCAT_(lvs_statusor_, __LINE__), lhs, rexpr)

#define LVS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)   \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // LVS_COMMON_STATUS_MACROS_H_

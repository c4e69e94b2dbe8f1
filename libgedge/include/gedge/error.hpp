// gedge::Error and Result<T>: the library's only way to report failure.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace gedge {

// What went wrong, as a class of failure. Each maps to one exit code (exit_code_for).
enum class ErrorCode {
  failure,      // generic failure (1)
  usage,        // bad flags or invalid input file (2)
  partial,      // some targets failed, others succeeded (3)
  not_found,    // (4)
  unreachable,  // unreachable or timed out (5)
  auth,         // authentication refused (6)
  host_key,     // host key refused or changed (6)
  conflict,     // conflict or locked (7)
  interrupted,  // Ctrl-C (130)
  internal,     // a bug in gedge (1)
};

struct Error {
  ErrorCode code = ErrorCode::failure;
  std::string message;
  std::string hint;
};

template <typename T>
using Result = std::expected<T, Error>;

// Builds an unexpected Error; `return fail(ErrorCode::not_found, "device 'x' not found");`
inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string hint = {}) {
  return std::unexpected<Error>(Error{code, std::move(message), std::move(hint)});
}

// The one mapping from error class to process exit status (DESIGN.md "Exit codes").
int exit_code_for(ErrorCode code);

// Stable machine name of the code ("not_found", "host_key", ...), used in JSON errors.
std::string_view error_name(ErrorCode code);

}  // namespace gedge

// Propagates an error from a Result-returning expression; yields its value otherwise.
// Use it only as a full initialiser (`auto x = GEDGE_TRY(f());`), never nested inside another
// call's arguments: GCC 12 has miscompiled statement expressions in argument position here.
#define GEDGE_TRY(expr)                                                 \
  ({                                                                    \
    auto&& gedge_try_r_ = (expr);                                       \
    if (!gedge_try_r_) return std::unexpected(gedge_try_r_.error());    \
    std::move(*gedge_try_r_);                                           \
  })

// For Result<void>.
#define GEDGE_TRY_VOID(expr)                                            \
  do {                                                                  \
    auto&& gedge_try_r_ = (expr);                                       \
    if (!gedge_try_r_) return std::unexpected(gedge_try_r_.error());    \
  } while (0)

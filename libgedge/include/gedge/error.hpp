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

// The one mapping from error class to process exit status (EXIT STATUS in man/gedge-*.1).
int exit_code_for(ErrorCode code);

// Stable machine name of the code ("not_found", "host_key", ...), used in JSON errors.
std::string_view error_name(ErrorCode code);

}  // namespace gedge

// Error propagation in standard C++ (ccache's TRY is the model), two statement forms:
//   GEDGE_TRY(expr);                    propagates expr's error; a value, if any, is discarded
//   GEDGE_TRY_ASSIGN(auto x, expr);     declares x (or assigns an existing lvalue: `obj.f`)
//                                       from expr's value, or propagates its error
// GEDGE_TRY is one statement (safe as the body of a braceless if/for); GEDGE_TRY_ASSIGN expands
// to two statements and a declaration, so it needs braces around it in such a body.
#define GEDGE_TRY_CONCAT_INNER_(a, b) a##b
#define GEDGE_TRY_CONCAT_(a, b) GEDGE_TRY_CONCAT_INNER_(a, b)
#define GEDGE_TRY_TMP_ GEDGE_TRY_CONCAT_(gedge_try_r_, __LINE__)

#define GEDGE_TRY(...)                                                          \
  do {                                                                          \
    auto&& gedge_try_r_ = (__VA_ARGS__);                                        \
    if (!gedge_try_r_) return std::unexpected(std::move(gedge_try_r_).error()); \
  } while (0)

#define GEDGE_TRY_ASSIGN(lhs, ...) GEDGE_TRY_ASSIGN_IMPL_(GEDGE_TRY_TMP_, lhs, __VA_ARGS__)
#define GEDGE_TRY_ASSIGN_IMPL_(tmp, lhs, ...)               \
  auto&& tmp = (__VA_ARGS__);                               \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)

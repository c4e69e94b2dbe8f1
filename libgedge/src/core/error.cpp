#include "gedge/error.hpp"

namespace gedge {

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::failure:
      return 1;
    case ErrorCode::internal:
      return 1;
    case ErrorCode::usage:
      return 2;
    case ErrorCode::partial:
      return 3;
    case ErrorCode::not_found:
      return 4;
    case ErrorCode::unreachable:
      return 5;
    case ErrorCode::auth:
      return 6;
    case ErrorCode::host_key:
      return 6;
    case ErrorCode::conflict:
      return 7;
    case ErrorCode::interrupted:
      return 130;
  }
  return 1;
}

std::string_view error_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::failure:
      return "failure";
    case ErrorCode::internal:
      return "internal";
    case ErrorCode::usage:
      return "usage";
    case ErrorCode::partial:
      return "partial";
    case ErrorCode::not_found:
      return "not_found";
    case ErrorCode::unreachable:
      return "unreachable";
    case ErrorCode::auth:
      return "auth_failed";
    case ErrorCode::host_key:
      return "host_key_mismatch";
    case ErrorCode::conflict:
      return "conflict";
    case ErrorCode::interrupted:
      return "interrupted";
  }
  return "failure";
}

}  // namespace gedge

// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource), the one parser gedge
// uses for CPU, memory and every other resource amount (svc, sched, manifests).
//
//   <quantity>        ::= <signedNumber><suffix>
//   <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//   <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//   <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//   <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
//   <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
//
// A YAML/JSON number is a quantity too (Kubernetes' int-or-string): `cpu: 0.5`, `memory: 1e9`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "gedge/error.hpp"

namespace gedge {

// The value of a quantity in its base unit (1 for "1", 0.5 for "500m", 1024 for "1Ki").
// nullopt when `text` does not follow the grammar (empty, spaces, "512K", "1Gb", "1.5.2").
std::optional<long double> quantity_value(std::string_view text);

// A resource amount: non-negative and small enough that its base-unit value (bytes for memory,
// millicores for CPU) fits a signed 64-bit integer. Errors are usage errors that say what is
// wrong ("invalid quantity '512K'", "negative", "out of range") with a hint; `what` names the
// field in the message ("memory", "containers[0].resources.limits.cpu").
Result<double> parse_cpu_quantity(const nlohmann::json& v, std::string_view what = "cpu");  // cores
Result<double> parse_memory_quantity(const nlohmann::json& v,
                                     std::string_view what = "memory");  // bytes
// Any other resource (nvidia.com/gpu, ephemeral-storage, extended resources): base units.
Result<double> parse_resource_quantity(const nlohmann::json& v, std::string_view what);

// Memory in whole bytes, rounded up as Kubernetes' Value() does (0.5 -> 1).
int64_t whole_bytes(double bytes);

// The quantity's text as Kubernetes keeps it in a manifest: strings as written, numbers in
// their shortest form (2, 0.5, 1e+09 becomes "1000000000").
std::string quantity_text(const nlohmann::json& v);

}  // namespace gedge

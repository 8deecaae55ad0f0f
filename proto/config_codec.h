// Text forms of a Config: JSON (persisted state, `runvm env --json`) and TOML (`runvm env`).
// Both are driven by the key table, so they always hold every key.
#ifndef RUNVM_PROTO_CONFIG_CODEC_H_
#define RUNVM_PROTO_CONFIG_CODEC_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "proto/config.h"
#include "proto/config_keys.h"

namespace runvm::config {

// {"hypervisor":{"qemu":{...}},"agent":{"kata":{...}},"runtime":{...}}; indent < 0: one line.
std::string ToJson(const Config& config, int indent = 2);

// Strict inverse of ToJson: every key must have its kind; unknown keys are errors naming their
// path. Missing keys keep their defaults.
absl::StatusOr<Config> FromJson(absl::string_view text);

// The [hypervisor.qemu] table alone as a JSON object, every key (what a VM record keeps), and
// its strict inverse (unknown keys and wrong kinds are errors naming the key).
nlohmann::json QemuToJson(const QemuConfig& qemu);
absl::StatusOr<QemuConfig> QemuFromJson(const nlohmann::json& j);

// One key's value from JSON text (an annotation holding ["a","b"]): the JSON kind must be the
// key's kind. Range and allowed values are the caller's (KeyInfo::CheckValue).
absl::StatusOr<ConfigValue> ValueFromJsonText(const KeyInfo& key, absl::string_view text);

// A configuration.toml holding every key (loads back to the same Config).
std::string ToToml(const Config& config);

}  // namespace runvm::config

#endif  // RUNVM_PROTO_CONFIG_CODEC_H_

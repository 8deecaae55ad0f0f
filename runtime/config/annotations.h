// Per-pod overrides from OCI annotations, as Kata does:
//
//   io.katacontainers.config.hypervisor.<key> = "<value>"
//
// An override is honoured only when <key> fully matches one of the regular expressions in
// hypervisor.qemu.enable_annotations (anchored at both ends: a rule "kernel" does not allow
// "kernel_params"; Kata matches unanchored, which is how such rules leak). A path-valued key must
// also be an absolute, normalised path that matches a glob of its valid_*_paths list. Keys that
// guard the rules themselves (enable_annotations, valid_*_paths, pflashes, entropy_source) can
// never be overridden. Any refused annotation is an error naming it and the rule; nothing is
// silently ignored and on error the configuration is left unchanged.
//
// Values: booleans as true/false (also 1/0, t/f), integers in decimal, strings as they are,
// string lists as a JSON array (["a","b"]).
#ifndef RUNVM_RUNTIME_CONFIG_ANNOTATIONS_H_
#define RUNVM_RUNTIME_CONFIG_ANNOTATIONS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/config.h"

namespace runvm {

inline constexpr char kHypervisorAnnotationPrefix[] = "io.katacontainers.config.hypervisor.";
inline constexpr char kKataAnnotationPrefix[] = "io.katacontainers.config.";

// Applies every io.katacontainers.config.* annotation to `config`, then re-validates and
// re-clamps it. Other annotations are not looked at.
absl::Status ApplyAnnotations(const std::map<std::string, std::string>& annotations,
                              const config::HostFacts& host, config::Config& config);

// Checks that every rule of enable_annotations is a valid regular expression.
absl::Status CheckAnnotationRules(const std::vector<std::string>& rules);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_CONFIG_ANNOTATIONS_H_

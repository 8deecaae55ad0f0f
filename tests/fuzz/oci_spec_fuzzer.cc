// libFuzzer target for the OCI spec parser (config.json, written by whoever made the bundle):
// arbitrary bytes. Nothing may crash, hang or throw; a spec that parses and validates must
// survive its own encoding: SpecToJson then ParseSpec gives a valid spec that encodes the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proto/oci_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace runvm::oci;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Spec> spec = ParseSpec(text);
  if (!spec.ok() || !spec->Validate().ok()) return 0;
  const std::string encoded = SpecToJson(*spec, -1);
  absl::StatusOr<Spec> again = ParseSpec(encoded);
  if (!again.ok() || !again->Validate().ok()) std::abort();
  if (SpecToJson(*again, -1) != encoded) std::abort();
  if (spec->linux.resources) (void)ResourcesToJson(*spec->linux.resources);
  return 0;
}

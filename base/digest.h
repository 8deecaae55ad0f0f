// Short, stable names derived from longer ones: a file or port name that must stay under a
// limit whatever the length of the id it stands for.
//
//   std::string port = "io-" + ShortDigest(container_id);   // "io-" + 16 hex digits
//
// FNV-1a over the bytes, so the same input gives the same name in every process and release
// (unlike absl::Hash, which is seeded per process). Not a cryptographic digest: a caller that
// cannot tolerate a collision checks for one.
#ifndef RUNVM_BASE_DIGEST_H_
#define RUNVM_BASE_DIGEST_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace runvm {

inline uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Fnv1a as 16 lower-case hex digits.
inline std::string ShortDigest(absl::string_view s) {
  return absl::StrCat(absl::Hex(Fnv1a(s), absl::kZeroPad16));
}

}  // namespace runvm

#endif  // RUNVM_BASE_DIGEST_H_

// libFuzzer target for the QMP stream parser: arbitrary bytes, delivered in arbitrary chunks,
// through the framer and the message classifier. Nothing may crash, hang or throw; every message
// is either a greeting, a reply or an event, or an error.
#include <cstddef>
#include <cstdint>

#include "hypervisor/qmp/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace runvm::qmp;
  if (size == 0) return 0;
  // The first byte picks the chunk size, so splits inside messages are explored too.
  size_t chunk = 1 + data[0] % 64;
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  Framer framer;
  while (left > 0) {
    size_t n = left < chunk ? left : chunk;
    framer.Append(p, n);
    p += n;
    left -= n;
    for (;;) {
      auto line = framer.Next();
      if (!line.ok()) return 0;  // the session would break here
      if (!line->has_value()) break;
      auto m = ParseMessage(**line);
      if (m.ok()) {
        // Touch the parsed values as the client would.
        if (auto* r = std::get_if<Reply>(&*m)) (void)r->id.dump();
        if (auto* e = std::get_if<Event>(&*m)) (void)e->data.size();
      }
    }
  }
  return 0;
}

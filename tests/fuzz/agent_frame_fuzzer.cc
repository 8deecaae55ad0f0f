// libFuzzer target for the agent protocol's frame reader: arbitrary bytes in arbitrary chunks,
// followed by one well-formed hello. Nothing may crash, hang or throw; every message decoded has
// a type; and whatever garbage came first, the hello at the end is always delivered (a killed
// client's bytes can never stall the next one).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/agent_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace runvm::agent_proto;
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  FrameReader reader;
  auto drain = [&](bool* saw_hello) {
    while (std::optional<Message> m = reader.Next()) {
      if (m->type.empty() && m->fields.is_discarded()) std::abort();
      (void)RunRequestFrom(*m);
      (void)GuestDetailsFrom(*m);
      if (m->type == kHello && m->id == 0xfeedface && m->fields.value("epoch", "") == "fz") {
        *saw_hello = true;
      }
    }
  };
  bool ignored = false;
  while (left > 0) {
    size_t n = left < chunk ? left : chunk;
    reader.Feed({p, n});
    p += n;
    left -= n;
    drain(&ignored);
  }
  reader.Feed(EncodeFrame({.type = kHello, .id = 0xfeedface, .fields = ToFields(Hello{"fz"})}));
  bool saw_hello = false;
  drain(&saw_hello);
  if (!saw_hello) std::abort();
  return 0;
}

// `runvm spec [-b BUNDLE]`: runc's default config.json.
#include <unistd.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "proto/oci_spec.h"
#include "runtime/cli/verb.h"

namespace runvm {

Verb SpecVerb(const GlobalFlags&) {
  struct Flags {
    std::string bundle = ".";
    bool rootless = false;
  };
  auto f = std::make_shared<Flags>();
  return {
      .name = "spec",
      .help = "write a default config.json, as runc does",
      .flags = {{.names = "-b,--bundle",
                 .help = "the bundle directory to write it in",
                 .into = &f->bundle},
                {.names = "--rootless",
                 .help = "not supported: the default spec is written (a warning)",
                 .into = &f->rootless}},
      // runc's behaviour: refuses to overwrite, writes a trailing newline.
      .run = [f] {
        if (f->rootless) {
          LogWarning("spec --rootless: runvm runs as root; the default (rootful) spec is written");
        }
        const std::string path = f->bundle + "/config.json";
        if (::access(path.c_str(), F_OK) == 0) {
          return Fail(absl::StrCat("File ", path, " exists. Remove it first"));
        }
        return Done(WriteFileAtomic(path, oci::SpecToJson(oci::DefaultSpec()) + "\n", 0644));
      }};
}

}  // namespace runvm

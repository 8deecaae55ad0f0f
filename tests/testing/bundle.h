// An OCI bundle with a busybox rootfs, made from the host's busybox-static: what the container
// tests run. The spec is runc's default (`runvm spec`) with no terminal and PATH=/bin.
//
//   Bundle b = MakeBusyboxBundle(dir.path() + "/bundle");
//   b.spec.process.args = {"sh", "-c", "echo hi"};
//   b.Save();                                  // writes b.path/config.json
#ifndef RUNVM_TESTS_TESTING_BUNDLE_H_
#define RUNVM_TESTS_TESTING_BUNDLE_H_

#include <string>

#include "proto/oci_spec.h"

namespace runvm::testing {

struct Bundle {
  std::string path;    // the bundle directory
  std::string rootfs;  // path + "/rootfs"
  oci::Spec spec;
  void Save() const;  // config.json
};

// The rootfs holds /bin/busybox with its applets as symlinks and empty proc, sys, dev, tmp (mode
// 1777) and etc directories.
Bundle MakeBusyboxBundle(const std::string& path);

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_BUNDLE_H_

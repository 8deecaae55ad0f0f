#include "devices/vfio.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace runvm::devices {
namespace {

namespace fs = std::filesystem;

bool IsBdf(const std::string& s) {
  static const std::regex kBdf("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]");
  return std::regex_match(s, kBdf);
}

bool IsUuid(const std::string& s) {
  static const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  return std::regex_match(s, kUuid);
}

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// The group number a device directory's iommu_group link points at.
absl::StatusOr<int> GroupOf(const fs::path& dev_dir, const std::string& what) {
  std::error_code ec;
  fs::path target = fs::read_symlink(dev_dir / "iommu_group", ec);
  int group = -1;
  if (ec || !absl::SimpleAtoi(target.filename().string(), &group)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": has no IOMMU group (is the IOMMU enabled?)"));
  }
  return group;
}

bool ConfigIsPcie(const fs::path& dev_dir) {
  struct stat st {};
  return ::stat((dev_dir / "config").c_str(), &st) == 0 && st.st_size > 256;
}

}  // namespace

absl::StatusOr<VfioGroup> DiscoverVfio(const std::string& sysfs_root, const std::string& device) {
  const fs::path root(sysfs_root);
  const std::string what = absl::StrCat("VFIO device ", device);
  std::string name = absl::AsciiStrToLower(device);
  VfioGroup out;
  if (absl::StartsWith(name, "/dev/vfio/")) {
    if (!absl::SimpleAtoi(name.substr(10), &out.group) || out.group < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": not an IOMMU group device"));
    }
  } else {
    if (name.size() == 7) name = "0000:" + name;
    fs::path dev_dir;
    if (IsBdf(name)) {
      dev_dir = root / "bus/pci/devices" / name;
    } else if (IsUuid(name)) {
      dev_dir = root / "bus/mdev/devices" / name;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": not a PCI address (DDDD:BB:DD.F), a mediated device UUID or /dev/vfio/<group>"));
    }
    if (!Exists(dev_dir)) {
      return absl::NotFoundError(absl::StrCat(what, ": not found in ", sysfs_root));
    }
    auto group = GroupOf(dev_dir, what);
    if (!group.ok()) return group.status();
    out.group = *group;
  }

  const fs::path members = root / "kernel/iommu_groups" / std::to_string(out.group) / "devices";
  std::error_code ec;
  fs::directory_iterator it(members, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(what, ": IOMMU group ", out.group, " not found in ", sysfs_root));
  }
  for (const fs::directory_entry& entry : it) {
    VfioFunction f;
    f.name = entry.path().filename().string();
    const fs::path mdev_dir = root / "bus/mdev/devices" / f.name;
    if (IsUuid(f.name) && Exists(mdev_dir)) {
      f.is_mdev = true;
      f.sysfsdev = "/sys/bus/mdev/devices/" + f.name;
      // The mdev's directory lives under its parent PCI function.
      fs::path parent = fs::canonical(mdev_dir, ec).parent_path();
      f.is_pcie = !ec && ConfigIsPcie(parent);
    } else if (IsBdf(f.name)) {
      const fs::path dev_dir = root / "bus/pci/devices" / f.name;
      fs::path driver = fs::read_symlink(dev_dir / "driver", ec);
      std::string bound = ec ? "" : driver.filename().string();
      if (bound != "vfio-pci") {
        return absl::FailedPreconditionError(
            absl::StrCat(what, ": function ", f.name, " of IOMMU group ", out.group, " is ",
                         bound.empty() ? "bound to no driver" : "bound to " + bound,
                         ", not vfio-pci; bind every function of the group to vfio-pci"));
      }
      f.is_pcie = ConfigIsPcie(dev_dir);
      f.sysfsdev = "/sys/bus/pci/devices/" + f.name;
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": IOMMU group ", out.group, " holds ", f.name,
                       ", which is neither a PCI function nor a mediated device"));
    }
    out.functions.push_back(std::move(f));
  }
  if (out.functions.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": IOMMU group ", out.group, " has no devices"));
  }
  std::sort(out.functions.begin(), out.functions.end(),
            [](const VfioFunction& a, const VfioFunction& b) { return a.name < b.name; });
  return out;
}

}  // namespace runvm::devices

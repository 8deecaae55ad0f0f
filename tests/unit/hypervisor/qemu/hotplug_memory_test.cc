// Hotplug of memory: pc-dimms and virtio-mem.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

TEST_F(HotplugTest, MemoryIsRoundedUpToTheBlockSizeAndSharedWithVirtiofs) {
  vm_.config.shared_fs = "virtio-fs";
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array({{{"type", "dimm"}, {"data", {{"slot", 0}}}}}))
      .ExpectCommand("object-add", {{"qom-type", "memory-backend-file"},
                                    {"id", "mem-dimm0"},
                                    {"size", 128 * kMiB},
                                    {"mem-path", "/dev/shm"},
                                    {"share", true}})
      .Reply()
      .ExpectCommand("device_add",
                     {{"driver", "pc-dimm"}, {"id", "dimm0"}, {"memdev", "mem-dimm0"}, {"slot", 1}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(MemoryResult r, Start().AddMemory(100));
  EXPECT_EQ(r.added_mib, 128);
  EXPECT_EQ(vm_.hotplug.Find("dimm0")->size_bytes, 128 * kMiB);
}

TEST_F(HotplugTest, MemoryWithoutSharingIsRam) {
  vm_.config.shared_fs = "none";
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array())
      .ExpectCommand("object-add", {{"qom-type", "memory-backend-ram"}, {"size", 256 * kMiB}})
      .Reply()
      .ExpectCommand("device_add", {{"slot", 0}})
      .ReplyError("GenericError", "a used vhost backend has no free memory slots left")
      .ExpectCommand("object-del", {{"id", "mem-dimm0"}})
      .Reply();
  EXPECT_THAT(Start().AddMemory(256),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dimm0: device_add")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, MemoryBeyondMaxmemNamesTheNumbers) {
  Record({.id = "dimm0", .kind = kKindDimm, .slot = 0, .size_bytes = 1024 * kMiB});
  peer_.Negotiate();
  EXPECT_THAT(Start().AddMemory(1100),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("memory: adding 1152 MiB (1100 rounded up to the 128 MiB block "
                                 "size) to 3072 MiB would exceed maxmem, 4096 MiB")));
}

TEST_F(HotplugTest, MemorySlotsExhausted) {
  vm_.config.memory_slots = 1;
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array({{{"type", "nvdimm"}, {"data", {{"slot", 0}}}}}));
  EXPECT_THAT(Start().AddMemory(128), StatusIs(absl::StatusCode::kResourceExhausted,
                                               HasSubstr("memory: all 1 memory slots are in use")));
}

TEST_F(HotplugTest, VirtioMemIsPluggedOnceThenResized) {
  vm_.config.enable_virtio_mem = true;
  vm_.config.shared_fs = "none";
  vm_.max_memory_mib = 2048 + 1024 + 1024;  // boot + NVDIMM headroom + 1 GiB region
  peer_.Negotiate()
      .ExpectCommand(
          "object-add",
          {{"qom-type", "memory-backend-ram"}, {"id", "mem-virtiomem0"}, {"size", 1024 * kMiB}})
      .Reply()
      .ExpectCommand("device_add", {{"driver", "virtio-mem-pci"},
                                    {"id", "virtiomem0"},
                                    {"memdev", "mem-virtiomem0"},
                                    {"requested-size", 128 * kMiB}})
      .Reply()
      .ExpectCommand("qom-set", {{"path", "/machine/peripheral/virtiomem0"},
                                 {"property", "requested-size"},
                                 {"value", 384 * kMiB}})
      .Reply();
  Hotplug& hp = Start();
  ASSERT_THAT(hp.AddMemory(128), IsOk());
  ASSERT_OK_AND_ASSIGN(MemoryResult r, hp.AddMemory(256));
  EXPECT_EQ(r.device_id, "virtiomem0");
  EXPECT_EQ(vm_.hotplug.Find("virtiomem0")->size_bytes, 384 * kMiB);
  EXPECT_THAT(hp.Remove("virtiomem0"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("resized")));
}

}  // namespace
}  // namespace runvm::qemu

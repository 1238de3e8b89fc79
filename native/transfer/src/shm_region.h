// POSIX shared-memory regions for one host: create, open, unlink, unmap.
//
// Why this file exists: it keeps the system calls apart from N-API, so every failure comes
// back as (errno, syscall) and addon.cc turns it into a JS error in one place
// (js_errors.cc). Nothing here knows about JavaScript.
//
// Backend seam: a region is "some memory this process can read and write, plus a way to
// give it back". Future backends (CUDA IPC via cudaIpcGetMemHandle/cudaIpcOpenMemHandle,
// UCX via ucp_mem_map + packed rkeys, RDMA via ibv_reg_mr) belong in sibling files
// (cuda_ipc_region.{h,cc}, ucx_region.{h,cc}, ...) with the same shape: a Create/Open that
// returns a RegionMapping or a SysFailure, and an Unmap. addon.cc would gain matching
// exports; copyBlocks/checksumBlocks stay host-memory only. None of them exists yet.
#pragma once

#include <cstddef>
#include <string>

namespace armature::transfer {

// A failed system call: errno value and the name of the call that set it.
// `detail` replaces strerror(err) in the message when the errno alone is misleading
// (e.g. ERANGE for "object smaller than requested").
struct SysFailure {
  int err = 0;  // 0: success
  const char* syscall = "";
  std::string detail;

  bool ok() const { return err == 0; }
};

struct RegionMapping {
  void* addr = nullptr;
  size_t bytes = 0;
};

// Returns 0 if `name` is a portable POSIX shm name ("/" then 1..253 bytes, no other "/",
// not "." or "..", no NUL), otherwise EINVAL or ENAMETOOLONG with `why` filled in.
int CheckRegionName(const std::string& name, std::string* why);

// shm_open(O_CREAT|O_EXCL|O_RDWR, 0600) + ftruncate + (Linux) posix_fallocate + mmap.
// The object is zero-filled. Its pages are reserved up front so that a full /dev/shm is
// an ENOSPC here instead of a SIGBUS on first touch. On failure nothing is left behind
// (the name is unlinked again).
SysFailure CreateRegion(const std::string& name, size_t bytes, RegionMapping* out);

// shm_open(O_RDWR) + fstat (ERANGE if the object is smaller than `bytes`) + mmap of
// exactly `bytes` bytes.
SysFailure OpenRegion(const std::string& name, size_t bytes, RegionMapping* out);

// shm_unlink; ENOENT counts as success, so it is idempotent.
SysFailure UnlinkRegion(const std::string& name);

// munmap.
SysFailure UnmapRegion(const RegionMapping& mapping);

}  // namespace armature::transfer

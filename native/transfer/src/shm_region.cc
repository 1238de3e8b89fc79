// POSIX shared-memory regions: the system calls behind shmCreate/shmOpen/shmUnlink/shmClose.
// See shm_region.h for the contract; errors are returned, never thrown.
#include "shm_region.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace armature::transfer {

namespace {

// glibc rejects names whose part after "/" is 254 bytes or more (NAME_MAX - 1 with NUL).
constexpr size_t kMaxNameBody = 253;

SysFailure Fail(int err, const char* syscall, std::string detail = {}) {
  return SysFailure{err, syscall, std::move(detail)};
}

SysFailure MapShared(int fd, size_t bytes, RegionMapping* out) {
  void* addr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return Fail(errno, "mmap");
  out->addr = addr;
  out->bytes = bytes;
  return {};
}

// Reserves the object's pages now (tmpfs allocates and zeroes them), so running out of
// /dev/shm fails here with ENOSPC rather than killing the process with SIGBUS later.
SysFailure ReservePages(int fd, size_t bytes) {
#ifdef __linux__
  int rc;
  do {
    rc = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  } while (rc == EINTR);
  // Filesystems without fallocate keep lazy allocation; that is not an error.
  if (rc != 0 && rc != EOPNOTSUPP && rc != ENOSYS) return Fail(rc, "posix_fallocate");
#else
  (void)fd;
  (void)bytes;
#endif
  return {};
}

}  // namespace

int CheckRegionName(const std::string& name, std::string* why) {
  if (name.size() < 2 || name[0] != '/') {
    *why = "name must be \"/\" followed by at least one character";
    return EINVAL;
  }
  if (name.size() - 1 > kMaxNameBody) {
    *why = "name is longer than " + std::to_string(kMaxNameBody + 1) + " bytes";
    return ENAMETOOLONG;
  }
  if (name.find('/', 1) != std::string::npos) {
    *why = "name may contain \"/\" only as its first character";
    return EINVAL;
  }
  if (name == "/." || name == "/..") {
    *why = "name may not be \"/.\" or \"/..\"";
    return EINVAL;
  }
  if (name.find('\0') != std::string::npos) {
    *why = "name may not contain NUL characters";
    return EINVAL;
  }
  return 0;
}

SysFailure CreateRegion(const std::string& name, size_t bytes, RegionMapping* out) {
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) return Fail(errno, "shm_open");

  SysFailure failure;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    failure = Fail(errno, "ftruncate");
  } else {
    failure = ReservePages(fd, bytes);
    if (failure.ok()) failure = MapShared(fd, bytes, out);
  }
  close(fd);  // the mapping keeps the object alive
  if (!failure.ok()) shm_unlink(name.c_str());
  return failure;
}

SysFailure OpenRegion(const std::string& name, size_t bytes, RegionMapping* out) {
  int fd = shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) return Fail(errno, "shm_open");

  SysFailure failure;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    failure = Fail(errno, "fstat");
  } else if (static_cast<unsigned long long>(st.st_size) < bytes) {
    failure = Fail(ERANGE, "shm_open",
                   "object is " + std::to_string(st.st_size) + " bytes, smaller than the " +
                       std::to_string(bytes) + " requested");
  } else {
    failure = MapShared(fd, bytes, out);
  }
  close(fd);
  return failure;
}

SysFailure UnlinkRegion(const std::string& name) {
  if (shm_unlink(name.c_str()) != 0 && errno != ENOENT) return Fail(errno, "shm_unlink");
  return {};
}

SysFailure UnmapRegion(const RegionMapping& mapping) {
  if (munmap(mapping.addr, mapping.bytes) != 0) return Fail(errno, "munmap");
  return {};
}

}  // namespace armature::transfer

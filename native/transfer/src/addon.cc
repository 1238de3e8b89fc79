// N-API bindings of armature-transfer: argument checking and JS objects only.
//
// The work lives elsewhere: shm_region.cc (POSIX shared memory), block_ops.cc (block copy
// plans, armature-mx64 checksum); every exception is made by js_errors.cc. Written against
// the plain C N-API (NAPI_VERSION 8), so it needs no npm header package and the same binary
// loads in any Node.js that offers N-API 8 (Node 16 and later).
//
// Backend seam: shmCreate/shmOpen/shmClose are the host shared-memory backend. A CUDA IPC,
// UCX or RDMA backend would add its own region file (see shm_region.h) and its own exports
// here (e.g. cudaIpcExport/cudaIpcOpen returning a handle, not an ArrayBuffer, since device
// memory cannot be viewed from JS); the TypeScript side picks a backend per peer. Not built.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "block_ops.h"
#include "js_errors.h"
#include "shm_region.h"

#define ARMATURE_STRINGIFY_X(x) #x
#define ARMATURE_STRINGIFY(x) ARMATURE_STRINGIFY_X(x)

namespace armature::transfer {
namespace {

constexpr char kVersion[] = "armature-transfer 0.1.0 (napi " ARMATURE_STRINGIFY(NAPI_VERSION) ")";
constexpr double kMaxSafeInteger = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

// ---------------------------------------------------------------------------------------
// Live mappings. shmClose needs to find the mapping behind an ArrayBuffer, and the GC
// finalizer must not unmap what shmClose already unmapped. Keyed by address, which is
// unique among live mappings of the process; global (not per napi_env) so that worker
// threads share it, and never destroyed so that finalizers running at exit find it.

struct LiveRegion {
  RegionMapping mapping;
  bool owned_by_js = false;      // set once the ArrayBuffer exists; until then the creator owns cleanup
  bool unmapped = false;         // shmClose unmapped it; the finalizer only frees the record
  bool finalized_early = false;  // the finalizer ran while creating the ArrayBuffer failed
};

std::mutex& RegistryMutex() {
  static auto* mutex = new std::mutex;
  return *mutex;
}

std::unordered_map<void*, LiveRegion*>& Registry() {
  static auto* registry = new std::unordered_map<void*, LiveRegion*>;
  return *registry;
}

// Runs when the ArrayBuffer is collected, at environment teardown, or (in some Node.js
// versions) synchronously when creating it fails. Touches no JS.
void FinalizeRegion(napi_env /*env*/, void* /*data*/, void* hint) {
  auto* record = static_cast<LiveRegion*>(hint);
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (!record->owned_by_js) {
    record->finalized_early = true;  // WrapRegion sees this and frees the record itself
    return;
  }
  if (!record->unmapped) {
    auto it = Registry().find(record->mapping.addr);
    if (it != Registry().end() && it->second == record) Registry().erase(it);
    UnmapRegion(record->mapping);
  }
  delete record;
}

// Wraps a fresh mapping in an external ArrayBuffer. On failure the mapping is already
// unmapped, a JS exception is pending, and false is returned.
bool WrapRegion(napi_env env, const RegionMapping& mapping, napi_value* result) {
  auto* record = new LiveRegion{mapping};
  napi_status status = napi_create_external_arraybuffer(env, mapping.addr, mapping.bytes, FinalizeRegion, record, result);
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (status == napi_ok) {
    record->owned_by_js = true;
    Registry()[mapping.addr] = record;
    return true;
  }
  UnmapRegion(mapping);
  // If the finalizer already ran it will not run again; otherwise it may still run later
  // and touch the record, so the record is left behind (a few bytes, on a rare path).
  if (record->finalized_early) delete record;
  return false;
}

// Node.js refuses ArrayBuffers larger than buffer.constants.MAX_LENGTH (4 GiB on Node 20):
// turn that (or any other wrap failure) into an EINVAL naming the call and the shm name.
napi_value ThrowWrapFailure(napi_env env, const char* syscall, const std::string& name, size_t bytes) {
  std::string cause = "N-API could not create the ArrayBuffer";
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value exception, message;
    size_t length = 0;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok &&
        napi_coerce_to_string(env, exception, &message) == napi_ok &&
        napi_get_value_string_utf8(env, message, nullptr, 0, &length) == napi_ok) {
      std::string text(length + 1, '\0');
      napi_get_value_string_utf8(env, message, text.data(), text.size(), &length);
      text.resize(length);
      cause = text;
    }
  }
  return ThrowSysError(env,
                       SysFailure{EINVAL, syscall,
                                  "cannot expose " + std::to_string(bytes) + " bytes as an ArrayBuffer (" + cause + ")"},
                       name);
}

// ---------------------------------------------------------------------------------------
// Argument readers: each returns false with a JS exception pending.

template <size_t N>
bool GetArgs(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;  // missing arguments come back as undefined
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) {
    ThrowNapiFailure(env, "napi_get_cb_info");
    return false;
  }
  return true;
}

bool IsType(napi_env env, napi_value value, napi_valuetype expected) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && type == expected;
}

// A shm name: a string that passes CheckRegionName, else EINVAL/ENAMETOOLONG from `syscall`.
bool ReadRegionName(napi_env env, napi_value value, const char* fn, const char* syscall, std::string* out) {
  size_t length = 0;
  if (!IsType(env, value, napi_string) || napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) {
    ThrowTypeError(env, std::string(fn) + ": name must be a string such as \"/armature-<agent>-<region>\"");
    return false;
  }
  std::string name(length + 1, '\0');
  napi_get_value_string_utf8(env, value, name.data(), name.size(), &length);
  name.resize(length);
  std::string why;
  if (int err = CheckRegionName(name, &why); err != 0) {
    ThrowSysError(env, SysFailure{err, syscall, why}, name);
    return false;
  }
  *out = std::move(name);
  return true;
}

// A positive integer number no larger than Number.MAX_SAFE_INTEGER.
bool ReadPositiveInteger(napi_env env, napi_value value, double* out) {
  if (napi_get_value_double(env, value, out) != napi_ok) return false;
  return std::isfinite(*out) && *out >= 1 && *out <= kMaxSafeInteger && std::floor(*out) == *out &&
         *out <= static_cast<double>(SIZE_MAX);
}

// The size of a region: a number, else TypeError; a positive integer, else EINVAL.
bool ReadRegionBytes(napi_env env, napi_value value, const char* fn, const char* syscall, const std::string& name,
                     size_t* out) {
  if (!IsType(env, value, napi_number)) {
    ThrowTypeError(env, std::string(fn) + ": bytes must be a number");
    return false;
  }
  double bytes = 0;
  if (!ReadPositiveInteger(env, value, &bytes)) {
    ThrowSysError(env, SysFailure{EINVAL, syscall, "bytes must be a positive safe integer"}, name);
    return false;
  }
  *out = static_cast<size_t>(bytes);
  return true;
}

// blockBytes: a number, else TypeError; a positive integer, else RangeError.
bool ReadBlockBytes(napi_env env, napi_value value, const char* fn, size_t* out) {
  if (!IsType(env, value, napi_number)) {
    ThrowTypeError(env, std::string(fn) + ": blockBytes must be a number");
    return false;
  }
  double bytes = 0;
  if (!ReadPositiveInteger(env, value, &bytes)) {
    ThrowRangeError(env, std::string(fn) + ": blockBytes must be a positive safe integer");
    return false;
  }
  *out = static_cast<size_t>(bytes);
  return true;
}

struct HostBuffer {
  uint8_t* data = nullptr;
  size_t length = 0;
};

napi_value GlobalConstructor(napi_env env, const char* name) {
  napi_value global, ctor;
  if (napi_get_global(env, &global) != napi_ok || napi_get_named_property(env, global, name, &ctor) != napi_ok ||
      !IsType(env, ctor, napi_function))
    return nullptr;
  return ctor;
}

// N-API (version 8) has no call that reads a SharedArrayBuffer's memory, but a Uint8Array
// over it can be read: build `new Uint8Array(sab)` and check that it really views `value`
// (so a look-alike object, which Uint8Array would copy, is refused).
bool ReadSharedArrayBuffer(napi_env env, napi_value value, HostBuffer* out) {
  napi_value sab_ctor = GlobalConstructor(env, "SharedArrayBuffer");
  napi_value view_ctor = GlobalConstructor(env, "Uint8Array");
  bool is_sab = false;
  if (sab_ctor == nullptr || view_ctor == nullptr || !IsType(env, value, napi_object) ||
      napi_instanceof(env, value, sab_ctor, &is_sab) != napi_ok || !is_sab)
    return false;
  napi_value view, viewed;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  bool same = false;
  if (napi_new_instance(env, view_ctor, 1, &value, &view) != napi_ok ||
      napi_get_typedarray_info(env, view, &type, &length, &data, &viewed, &offset) != napi_ok ||
      napi_strict_equals(env, viewed, value, &same) != napi_ok || !same || offset != 0) {
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    return false;
  }
  out->data = static_cast<uint8_t*>(data);
  out->length = length;
  return true;
}

// An ArrayBuffer (detached: length 0) or a SharedArrayBuffer, else TypeError.
bool ReadHostBuffer(napi_env env, napi_value value, const char* fn, const char* arg, HostBuffer* out) {
  bool is_arraybuffer = false;
  if (napi_is_arraybuffer(env, value, &is_arraybuffer) == napi_ok && is_arraybuffer) {
    void* data = nullptr;
    if (napi_get_arraybuffer_info(env, value, &data, &out->length) != napi_ok) {
      ThrowNapiFailure(env, "napi_get_arraybuffer_info");
      return false;
    }
    out->data = static_cast<uint8_t*>(data);
    return true;
  }
  if (ReadSharedArrayBuffer(env, value, out)) return true;
  ThrowTypeError(env, std::string(fn) + ": " + arg + " must be an ArrayBuffer or SharedArrayBuffer");
  return false;
}

// A typed array of the given type, else TypeError.
bool ReadTypedArray(napi_env env, napi_value value, napi_typedarray_type expected, const char* fn, const char* arg,
                    const char* type_name, void** data, size_t* count) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  napi_value ignored_buffer;
  size_t ignored_offset;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, value, &type, count, data, &ignored_buffer, &ignored_offset) != napi_ok ||
      type != expected) {
    ThrowTypeError(env, std::string(fn) + ": " + arg + " must be a " + type_name);
    return false;
  }
  return true;
}

bool ReadBlockIds(napi_env env, napi_value value, const char* fn, const char* arg, const uint32_t** ids,
                  size_t* count) {
  void* data = nullptr;
  if (!ReadTypedArray(env, value, napi_uint32_array, fn, arg, "Uint32Array", &data, count)) return false;
  *ids = static_cast<const uint32_t*>(data);
  return true;
}

napi_value ThrowBlockOutOfBounds(napi_env env, const char* fn, const char* ids_arg, const char* buffer_arg,
                                 const OutOfBounds& bad, size_t block_bytes, size_t length) {
  return ThrowRangeError(env, std::string(fn) + ": " + ids_arg + "[" + std::to_string(bad.index) +
                                  "] = " + std::to_string(bad.block_id) + " is out of bounds: " + buffer_arg + " has " +
                                  std::to_string(length) + " bytes, room for " + std::to_string(length / block_bytes) +
                                  " blocks of " + std::to_string(block_bytes) + " bytes; nothing was copied");
}

napi_value Undefined(napi_env env) {
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Exports.

napi_value Version(napi_env env, napi_callback_info /*info*/) {
  napi_value result;
  ARMATURE_NAPI_CALL(env, napi_create_string_utf8(env, kVersion, NAPI_AUTO_LENGTH, &result));
  return result;
}

// shmCreate(name, bytes): ArrayBuffer over a new, zero-filled shared-memory object.
napi_value ShmCreate(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  std::string name;
  size_t bytes = 0;
  if (!GetArgs(env, info, argv) || !ReadRegionName(env, argv[0], "shmCreate", "shm_open", &name) ||
      !ReadRegionBytes(env, argv[1], "shmCreate", "shm_open", name, &bytes))
    return nullptr;
  RegionMapping mapping;
  if (SysFailure failure = CreateRegion(name, bytes, &mapping); !failure.ok()) return ThrowSysError(env, failure, name);
  napi_value result;
  if (!WrapRegion(env, mapping, &result)) {
    UnlinkRegion(name);  // all or nothing: no name is left behind either
    return ThrowWrapFailure(env, "shm_open", name, bytes);
  }
  return result;
}

// shmOpen(name, bytes): ArrayBuffer over the first `bytes` bytes of an existing object.
napi_value ShmOpen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  std::string name;
  size_t bytes = 0;
  if (!GetArgs(env, info, argv) || !ReadRegionName(env, argv[0], "shmOpen", "shm_open", &name) ||
      !ReadRegionBytes(env, argv[1], "shmOpen", "shm_open", name, &bytes))
    return nullptr;
  RegionMapping mapping;
  if (SysFailure failure = OpenRegion(name, bytes, &mapping); !failure.ok()) return ThrowSysError(env, failure, name);
  napi_value result;
  if (!WrapRegion(env, mapping, &result)) return ThrowWrapFailure(env, "shm_open", name, bytes);
  return result;
}

// shmUnlink(name): removes the name; ENOENT is success.
napi_value ShmUnlink(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  std::string name;
  if (!GetArgs(env, info, argv) || !ReadRegionName(env, argv[0], "shmUnlink", "shm_unlink", &name)) return nullptr;
  if (SysFailure failure = UnlinkRegion(name); !failure.ok()) return ThrowSysError(env, failure, name);
  return Undefined(env);
}

// shmClose(buffer): detaches the ArrayBuffer, then unmaps; a detached buffer is a no-op.
napi_value ShmClose(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!GetArgs(env, info, argv)) return nullptr;
  bool is_arraybuffer = false, detached = false;
  if (napi_is_arraybuffer(env, argv[0], &is_arraybuffer) != napi_ok || !is_arraybuffer)
    return ThrowTypeError(env, "shmClose: buffer must be an ArrayBuffer returned by shmCreate or shmOpen");
  ARMATURE_NAPI_CALL(env, napi_is_detached_arraybuffer(env, argv[0], &detached));
  if (detached) return Undefined(env);
  void* addr = nullptr;
  size_t length = 0;
  ARMATURE_NAPI_CALL(env, napi_get_arraybuffer_info(env, argv[0], &addr, &length));
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    auto it = Registry().find(addr);
    if (it == Registry().end() || it->second->mapping.bytes != length)
      return ThrowTypeError(env, "shmClose: buffer is not a mapping returned by shmCreate or shmOpen");
  }
  // Detach first: once JS can no longer reach the memory, unmapping it is safe. The lock
  // is not held across N-API calls, which may run the finalizer.
  ARMATURE_NAPI_CALL(env, napi_detach_arraybuffer(env, argv[0]));
  SysFailure failure;
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    auto it = Registry().find(addr);
    if (it != Registry().end()) {  // else the finalizer already unmapped it
      LiveRegion* record = it->second;
      Registry().erase(it);
      record->unmapped = true;
      failure = UnmapRegion(record->mapping);
    }
  }
  if (!failure.ok()) return ThrowSysError(env, failure, "");
  return Undefined(env);
}

// copyBlocks(src, srcIds, dst, dstIds, blockBytes): validates every id, then copies.
napi_value CopyBlocks(napi_env env, napi_callback_info info) {
  constexpr const char* fn = "copyBlocks";
  napi_value argv[5];
  HostBuffer src, dst;
  const uint32_t *src_ids = nullptr, *dst_ids = nullptr;
  size_t src_count = 0, dst_count = 0, block_bytes = 0;
  if (!GetArgs(env, info, argv) || !ReadHostBuffer(env, argv[0], fn, "src", &src) ||
      !ReadBlockIds(env, argv[1], fn, "srcIds", &src_ids, &src_count) ||
      !ReadHostBuffer(env, argv[2], fn, "dst", &dst) ||
      !ReadBlockIds(env, argv[3], fn, "dstIds", &dst_ids, &dst_count) ||
      !ReadBlockBytes(env, argv[4], fn, &block_bytes))
    return nullptr;
  if (src_count != dst_count)
    return ThrowRangeError(env, std::string(fn) + ": srcIds has " + std::to_string(src_count) +
                                    " ids but dstIds has " + std::to_string(dst_count));
  const bool overlapping = MemoryOverlaps(src.data, src.length, dst.data, dst.length);
  std::vector<CopyRun> plan;
  OutOfBounds bad{};
  if (!PlanCopy(src_ids, dst_ids, src_count, block_bytes, src.length, dst.length, !overlapping, &plan, &bad)) {
    return bad.in_source ? ThrowBlockOutOfBounds(env, fn, "srcIds", "src", bad, block_bytes, src.length)
                         : ThrowBlockOutOfBounds(env, fn, "dstIds", "dst", bad, block_bytes, dst.length);
  }
  RunCopy(src.data, dst.data, plan, overlapping);
  return Undefined(env);
}

// checksumBlocks(buffer, ids, blockBytes, out): out[i] = armature-mx64 of block ids[i].
napi_value ChecksumBlocks(napi_env env, napi_callback_info info) {
  constexpr const char* fn = "checksumBlocks";
  napi_value argv[4];
  HostBuffer buffer;
  const uint32_t* ids = nullptr;
  size_t count = 0, block_bytes = 0, out_count = 0;
  void* out = nullptr;
  if (!GetArgs(env, info, argv) || !ReadHostBuffer(env, argv[0], fn, "buffer", &buffer) ||
      !ReadBlockIds(env, argv[1], fn, "ids", &ids, &count) || !ReadBlockBytes(env, argv[2], fn, &block_bytes) ||
      !ReadTypedArray(env, argv[3], napi_biguint64_array, fn, "out", "BigUint64Array", &out, &out_count))
    return nullptr;
  if (out_count != count)
    return ThrowRangeError(env, std::string(fn) + ": out has length " + std::to_string(out_count) + " but ids has " +
                                    std::to_string(count));
  // Validate and snapshot every offset before hashing (ids may share memory with others).
  std::vector<size_t> offsets(count);
  for (size_t i = 0; i < count; i++) {
    const uint32_t id = ids[i];
    if (!BlockInBounds(id, block_bytes, buffer.length))
      return ThrowRangeError(env, std::string(fn) + ": ids[" + std::to_string(i) + "] = " + std::to_string(id) +
                                      " is out of bounds: buffer has " + std::to_string(buffer.length) +
                                      " bytes, room for " + std::to_string(buffer.length / block_bytes) +
                                      " blocks of " + std::to_string(block_bytes) + " bytes");
    offsets[i] = static_cast<size_t>(id) * block_bytes;
  }
  std::vector<uint64_t> sums(count);
  for (size_t i = 0; i < count; i++) sums[i] = ChecksumBlock(buffer.data + offsets[i], block_bytes);
  if (count != 0) std::memcpy(out, sums.data(), count * sizeof(uint64_t));
  return Undefined(env);
}

}  // namespace
}  // namespace armature::transfer

NAPI_MODULE_INIT() {
  using namespace armature::transfer;
  const napi_property_descriptor exports_list[] = {
      {"version", nullptr, Version, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"shmCreate", nullptr, ShmCreate, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"shmOpen", nullptr, ShmOpen, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"shmUnlink", nullptr, ShmUnlink, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"shmClose", nullptr, ShmClose, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"copyBlocks", nullptr, CopyBlocks, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"checksumBlocks", nullptr, ChecksumBlocks, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof(exports_list) / sizeof(exports_list[0]), exports_list) != napi_ok) {
    ThrowNapiFailure(env, "napi_define_properties");
    return nullptr;
  }
  return exports;
}

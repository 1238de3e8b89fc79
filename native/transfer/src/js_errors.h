// The one place where failures become JavaScript exceptions.
//
// System-call failures become `Error` objects shaped like Node's own system errors:
//   message "EEXIST: File exists, shm_open '/armature-a-kv'", code 'EEXIST',
//   errno -17 (negative, as in Node), syscall 'shm_open', path '/armature-a-kv'.
// Argument errors become TypeError (code 'ERR_INVALID_ARG_TYPE') or RangeError
// (code 'ERR_OUT_OF_RANGE'). Every Throw* returns nullptr so a binding can
// `return ThrowX(...)`.
#pragma once

#include <node_api.h>

#include <string>

#include "shm_region.h"

namespace armature::transfer {

// "EEXIST" for EEXIST, ...; "E<number>" for an errno this table does not know.
std::string ErrnoName(int err);

// Throws the Error described above; `path` is the shm name ("" leaves `path` unset).
napi_value ThrowSysError(napi_env env, const SysFailure& failure, const std::string& path);

napi_value ThrowTypeError(napi_env env, const std::string& message);
napi_value ThrowRangeError(napi_env env, const std::string& message);

// For an N-API call that failed where it should not: rethrows a pending JS exception if
// there is one, otherwise throws Error naming the call and N-API's own message.
napi_value ThrowNapiFailure(napi_env env, const char* call);

}  // namespace armature::transfer

// Runs an N-API call; on failure throws (ThrowNapiFailure) and returns nullptr from the
// enclosing binding.
#define ARMATURE_NAPI_CALL(env, call)                                      \
  do {                                                                     \
    if ((call) != napi_ok) return ::armature::transfer::ThrowNapiFailure((env), #call); \
  } while (0)

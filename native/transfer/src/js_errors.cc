// Converts SysFailure and argument errors into JS exceptions (see js_errors.h).
#include "js_errors.h"

#include <cerrno>
#include <cstring>

namespace armature::transfer {

namespace {

// Sets obj[key] = value; failures here only lose a decoration, so they are ignored.
void SetString(napi_env env, napi_value obj, const char* key, const std::string& value) {
  napi_value js;
  if (napi_create_string_utf8(env, value.data(), value.size(), &js) == napi_ok) napi_set_named_property(env, obj, key, js);
}

napi_value ThrowWithCode(napi_env env, napi_status (*create)(napi_env, napi_value, napi_value, napi_value*),
                         const char* code, const std::string& message) {
  napi_value js_code, js_message, error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_string_utf8(env, message.data(), message.size(), &js_message) != napi_ok ||
      create(env, js_code, js_message, &error) != napi_ok) {
    napi_throw_error(env, code, message.c_str());
    return nullptr;
  }
  napi_throw(env, error);
  return nullptr;
}

}  // namespace

std::string ErrnoName(int err) {
  switch (err) {
#define ARMATURE_ERRNO(name) \
  case name:                 \
    return #name;
    ARMATURE_ERRNO(EACCES)
    ARMATURE_ERRNO(EAGAIN)
    ARMATURE_ERRNO(EBADF)
    ARMATURE_ERRNO(EBUSY)
    ARMATURE_ERRNO(EEXIST)
    ARMATURE_ERRNO(EFAULT)
    ARMATURE_ERRNO(EFBIG)
    ARMATURE_ERRNO(EINTR)
    ARMATURE_ERRNO(EINVAL)
    ARMATURE_ERRNO(EIO)
    ARMATURE_ERRNO(EISDIR)
    ARMATURE_ERRNO(EMFILE)
    ARMATURE_ERRNO(ENAMETOOLONG)
    ARMATURE_ERRNO(ENFILE)
    ARMATURE_ERRNO(ENODEV)
    ARMATURE_ERRNO(ENOENT)
    ARMATURE_ERRNO(ENOMEM)
    ARMATURE_ERRNO(ENOSPC)
    ARMATURE_ERRNO(ENOSYS)
    ARMATURE_ERRNO(ENOTSUP)
    ARMATURE_ERRNO(EOVERFLOW)
    ARMATURE_ERRNO(EPERM)
    ARMATURE_ERRNO(ERANGE)
    ARMATURE_ERRNO(EROFS)
    ARMATURE_ERRNO(ETXTBSY)
#undef ARMATURE_ERRNO
    default:
      return "E" + std::to_string(err);
  }
}

napi_value ThrowSysError(napi_env env, const SysFailure& failure, const std::string& path) {
  const std::string code = ErrnoName(failure.err);
  std::string message = code + ": " + (failure.detail.empty() ? std::strerror(failure.err) : failure.detail) + ", " +
                        failure.syscall;
  if (!path.empty()) message += " '" + path + "'";

  napi_value js_message, error, js_errno;
  if (napi_create_string_utf8(env, message.data(), message.size(), &js_message) != napi_ok ||
      napi_create_error(env, nullptr, js_message, &error) != napi_ok) {
    napi_throw_error(env, code.c_str(), message.c_str());
    return nullptr;
  }
  SetString(env, error, "code", code);
  if (napi_create_int32(env, -failure.err, &js_errno) == napi_ok) napi_set_named_property(env, error, "errno", js_errno);
  SetString(env, error, "syscall", failure.syscall);
  if (!path.empty()) SetString(env, error, "path", path);
  napi_throw(env, error);
  return nullptr;
}

napi_value ThrowTypeError(napi_env env, const std::string& message) {
  return ThrowWithCode(env, napi_create_type_error, "ERR_INVALID_ARG_TYPE", message);
}

napi_value ThrowRangeError(napi_env env, const std::string& message) {
  return ThrowWithCode(env, napi_create_range_error, "ERR_OUT_OF_RANGE", message);
}

napi_value ThrowNapiFailure(napi_env env, const char* call) {
  // Read the error info first: every other N-API call resets it.
  const napi_extended_error_info* info = nullptr;
  std::string message = std::string("armature-transfer: ") + call + " failed";
  if (napi_get_last_error_info(env, &info) == napi_ok && info != nullptr && info->error_message != nullptr) {
    message += ": ";
    message += info->error_message;
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return nullptr;
  napi_throw_error(env, "ERR_ARMATURE_NAPI", message.c_str());
  return nullptr;
}

}  // namespace armature::transfer

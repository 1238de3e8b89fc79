# armature-transfer: N-API addon (plain C N-API, NAPI_VERSION 8), built by build.mjs.
{
  "targets": [
    {
      "target_name": "armature_transfer",
      "sources": [
        "src/addon.cc",
        "src/block_ops.cc",
        "src/js_errors.cc",
        "src/shm_region.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O2"],
      "cflags_cc!": ["-O2", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3"
      },
      "conditions": [
        ["OS=='linux'", { "libraries": ["-lrt"] }]
      ]
    }
  ]
}

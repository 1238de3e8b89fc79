// Block copy and block checksum over host memory: the work behind copyBlocks and
// checksumBlocks, with no N-API in sight.
//
// Both work in two passes: first every block id is validated and turned into byte offsets
// (a plan), then the plan runs. Nothing is copied or hashed unless every id is in bounds,
// and ids that live inside the destination (or change under another thread, for a
// SharedArrayBuffer) cannot move a copy out of bounds once validated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace armature::transfer {

// One memcpy: `bytes` bytes from src + src_offset to dst + dst_offset.
struct CopyRun {
  size_t src_offset;
  size_t dst_offset;
  size_t bytes;
};

// The first block id that does not fit, for the RangeError message.
struct OutOfBounds {
  size_t index;       // position in the id array
  bool in_source;     // true: srcIds / ids; false: dstIds
  uint32_t block_id;  // the offending id
};

// True if block `id` of `block_bytes` bytes lies inside a buffer of `length` bytes
// (computed without overflow).
inline bool BlockInBounds(uint32_t id, size_t block_bytes, size_t length) {
  return block_bytes <= length && id <= (length - block_bytes) / block_bytes;
}

// Validates every (src_ids[i], dst_ids[i]) pair and builds the copy plan. With
// merge_runs, pairs that continue the previous run in both buffers join it, so contiguous
// ids become one memcpy. Returns false (plan untouched) at the first id out of bounds.
bool PlanCopy(const uint32_t* src_ids, const uint32_t* dst_ids, size_t count, size_t block_bytes,
              size_t src_length, size_t dst_length, bool merge_runs, std::vector<CopyRun>* plan,
              OutOfBounds* bad);

// Runs a plan. When src and dst memory overlap, runs must be unmerged: each block is then
// moved with memmove in plan order (as if the pairs were copied one by one, i = 0..n-1).
void RunCopy(const uint8_t* src, uint8_t* dst, const std::vector<CopyRun>& plan, bool overlapping);

// True if [a, a + a_length) and [b, b + b_length) share any byte.
bool MemoryOverlaps(const void* a, size_t a_length, const void* b, size_t b_length);

// Checksum of one block: "armature-mx64", a 4-lane multiply-xorshift hash over
// little-endian 8-byte words (full algorithm in README.md; libs/transfer's fallback must
// produce the same values). Changing any single 8-byte word always changes the result.
uint64_t ChecksumBlock(const uint8_t* block, size_t bytes);

}  // namespace armature::transfer

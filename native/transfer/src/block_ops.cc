// Block copy plans and the armature-mx64 block checksum (see block_ops.h, README.md).
#include "block_ops.h"

#include <cstring>

namespace armature::transfer {

bool PlanCopy(const uint32_t* src_ids, const uint32_t* dst_ids, size_t count, size_t block_bytes,
              size_t src_length, size_t dst_length, bool merge_runs, std::vector<CopyRun>* plan,
              OutOfBounds* bad) {
  std::vector<CopyRun> runs;
  runs.reserve(count);
  for (size_t i = 0; i < count; i++) {
    // Read each id once: the arrays may be shared with other threads.
    const uint32_t src_id = src_ids[i];
    const uint32_t dst_id = dst_ids[i];
    if (!BlockInBounds(src_id, block_bytes, src_length)) {
      *bad = OutOfBounds{i, true, src_id};
      return false;
    }
    if (!BlockInBounds(dst_id, block_bytes, dst_length)) {
      *bad = OutOfBounds{i, false, dst_id};
      return false;
    }
    const size_t src_offset = static_cast<size_t>(src_id) * block_bytes;
    const size_t dst_offset = static_cast<size_t>(dst_id) * block_bytes;
    if (merge_runs && !runs.empty()) {
      CopyRun& last = runs.back();
      if (last.src_offset + last.bytes == src_offset && last.dst_offset + last.bytes == dst_offset) {
        last.bytes += block_bytes;
        continue;
      }
    }
    runs.push_back(CopyRun{src_offset, dst_offset, block_bytes});
  }
  *plan = std::move(runs);
  return true;
}

void RunCopy(const uint8_t* src, uint8_t* dst, const std::vector<CopyRun>& plan, bool overlapping) {
  if (overlapping) {
    for (const CopyRun& run : plan) std::memmove(dst + run.dst_offset, src + run.src_offset, run.bytes);
  } else {
    for (const CopyRun& run : plan) std::memcpy(dst + run.dst_offset, src + run.src_offset, run.bytes);
  }
}

bool MemoryOverlaps(const void* a, size_t a_length, const void* b, size_t b_length) {
  const auto a_begin = reinterpret_cast<uintptr_t>(a);
  const auto b_begin = reinterpret_cast<uintptr_t>(b);
  return a_length != 0 && b_length != 0 && a_begin < b_begin + b_length && b_begin < a_begin + a_length;
}

namespace {

// armature-mx64. Constants: kMul is the 64-bit golden ratio (odd, so multiplying is a
// bijection); lane seeds are the first hex digits of pi; the finalizer is MurmurHash3's fmix64.
constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kLaneSeed[4] = {0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL, 0xA4093822299F31D0ULL,
                                   0x082EFA98EC4E6C89ULL};

inline uint64_t LoadLittleEndian64(const uint8_t* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  word = __builtin_bswap64(word);
#endif
  return word;
}

// Bijective in `lane` for a fixed word and in `word` for a fixed lane: a change to one
// word always changes the lane state, and later rounds cannot undo it.
inline uint64_t Round(uint64_t lane, uint64_t word) {
  lane = (lane ^ word) * kMul;
  return lane ^ (lane >> 32);
}

inline uint64_t Fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDULL;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ULL;
  return k ^ (k >> 33);
}

inline uint64_t RotateLeft(uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

}  // namespace

uint64_t ChecksumBlock(const uint8_t* block, size_t bytes) {
  uint64_t lane[4] = {kLaneSeed[0], kLaneSeed[1], kLaneSeed[2], kLaneSeed[3]};
  const size_t words = bytes / 8;
  size_t w = 0;
  // 32-byte stripes: four independent dependency chains keep the multiplier busy.
  for (; w + 4 <= words; w += 4) {
    const uint8_t* p = block + w * 8;
    lane[0] = Round(lane[0], LoadLittleEndian64(p));
    lane[1] = Round(lane[1], LoadLittleEndian64(p + 8));
    lane[2] = Round(lane[2], LoadLittleEndian64(p + 16));
    lane[3] = Round(lane[3], LoadLittleEndian64(p + 24));
  }
  // As in the stripes, word w goes to lane w % 4; a partial last word is zero-padded.
  for (; w < words; w++) lane[w % 4] = Round(lane[w % 4], LoadLittleEndian64(block + w * 8));
  const size_t tail = bytes % 8;
  if (tail != 0) {
    uint8_t padded[8] = {0};
    std::memcpy(padded, block + words * 8, tail);
    lane[words % 4] = Round(lane[words % 4], LoadLittleEndian64(padded));
  }
  // Each step is bijective in the lane it folds in, so one changed lane changes the result.
  uint64_t hash = static_cast<uint64_t>(bytes) * kMul;
  for (int i = 0; i < 4; i++) hash = RotateLeft(hash ^ Fmix64(lane[i]), 27) * kMul + kLaneSeed[i];
  return Fmix64(hash);
}

}  // namespace armature::transfer

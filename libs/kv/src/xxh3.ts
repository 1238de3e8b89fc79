// XXH3-64 (xxHash v0.8, 64-bit output, u64 seed) in plain TypeScript. KV block identity
// must match Dynamo and other engines bit for bit, and it sits on the routing hot path, so
// the whole algorithm runs on pairs of u32 limbs (Math.imul and 16-bit partial products)
// instead of BigInt; BigInt appears only at the API edge to carry the seed and the result.
//
// u64 values are written as (hi, lo) pairs of u32 numbers. Helpers return through
// the typed-array registers in REG so the hot path allocates nothing.
//
// One file past 450 lines on purpose: the algorithm's stages share the limb registers and
// constants, and splitting them would put module boundaries inside the hot loop.

const MASK32 = 0xffffffff;
const TWO32 = 4294967296;
const INV_TWO32 = 1 / TWO32;

const PRIME32_1 = 0x9e3779b1;
const PRIME32_2 = 0x85ebca77;
const PRIME32_3 = 0xc2b2ae3d;
const PRIME64_1_HI = 0x9e3779b1;
const PRIME64_1_LO = 0x85ebca87;
const PRIME64_2_HI = 0xc2b2ae3d;
const PRIME64_2_LO = 0x27d4eb4f;
const PRIME64_3_HI = 0x165667b1;
const PRIME64_3_LO = 0x9e3779f9;
const PRIME64_4_HI = 0x85ebca77;
const PRIME64_4_LO = 0xc2b2ae63;
const PRIME64_5_HI = 0x27d4eb2f;
const PRIME64_5_LO = 0x165667c5;
const PRIME_MX1_HI = 0x16566791;
const PRIME_MX1_LO = 0x9e3779f9;
const PRIME_MX2_HI = 0x9fb21c65;
const PRIME_MX2_LO = 0x1e98df25;

/** The 192-byte default secret of XXH3 (taken by xxHash from FARSH). */
// prettier-ignore
const K_SECRET = new Uint8Array([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
  0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
  0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
  0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
  0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
  0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
  0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
  0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
  0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
  0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
  0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
  0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
]);

const SECRET_SIZE = 192;
const STRIPE_LEN = 64;
const SECRET_CONSUME_RATE = 8;
const STRIPES_PER_BLOCK = (SECRET_SIZE - STRIPE_LEN) / SECRET_CONSUME_RATE; // 16
const BLOCK_LEN = STRIPE_LEN * STRIPES_PER_BLOCK; // 1024
const MIDSIZE_MAX = 240;
const SECRET_SIZE_MIN = 136;
const MIDSIZE_STARTOFFSET = 3;
const MIDSIZE_LASTOFFSET = 17;
const SECRET_LASTACC_START = 7;
const SECRET_MERGEACCS_START = 11;

/**
 * A secret as a table of the little-endian u32 at every byte offset, so reads at the
 * unaligned offsets XXH3 uses (3, 7, 11, 119, ...) are a single indexed load.
 */
type SecretWords = Uint32Array;

function secretWords(secret: Uint8Array): SecretWords {
  const words = new Uint32Array(secret.length - 3);
  for (let k = 0; k < words.length; k++) {
    words[k] = (secret[k]! | (secret[k + 1]! << 8) | (secret[k + 2]! << 16) | (secret[k + 3]! << 24)) >>> 0;
  }
  return words;
}

const DEFAULT_SECRET: SecretWords = secretWords(K_SECRET);

// Result registers of the limb helpers: [0] = low, [1] = high u32 of the last result, [2..3]
// the mid-size accumulator. A typed array, not module `let`s: u32 values do not fit V8's small
// integers, so storing them in module variables would allocate a heap number per write.
const REG = new Uint32Array(4);

/**
 * 32x32 -> 64-bit multiply of two u32 values into REG[1]:REG[0]. The low half is exact from
 * Math.imul; the float product is within 2^11 of the true one, so subtracting the exact low
 * half and rounding recovers the high half exactly.
 */
function mul32(a: number, b: number): void {
  const lo = Math.imul(a, b) >>> 0;
  REG[0] = lo;
  REG[1] = Math.floor((a * b - lo) * INV_TWO32 + 0.5);
}

/** Low 64 bits of a 64x64 multiply into REG[1]:REG[0]. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  mul32(aLo, bLo);
  REG[1] = (REG[1] + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
}

/** 64x64 -> 128-bit multiply, folded as low64 ^ high64 (XXH3_mul128_fold64), into REG. */
function mul128Fold(aHi: number, aLo: number, bHi: number, bLo: number): void {
  // Four 32x32 -> 64 partial products, computed as in mul32 but kept in locals.
  const llL = Math.imul(aLo, bLo) >>> 0;
  const llH = Math.floor((aLo * bLo - llL) * INV_TWO32 + 0.5);
  const hlL = Math.imul(aHi, bLo) >>> 0;
  const hlH = Math.floor((aHi * bLo - hlL) * INV_TWO32 + 0.5);
  const lhL = Math.imul(aLo, bHi) >>> 0;
  const lhH = Math.floor((aLo * bHi - lhL) * INV_TWO32 + 0.5);
  const hhL = Math.imul(aHi, bHi) >>> 0;
  const hhH = Math.floor((aHi * bHi - hhL) * INV_TWO32 + 0.5);
  // cross = (ll >> 32) + (hl & 0xffffffff) + lh; never overflows 64 bits.
  const crossSum = llH + hlL + lhL;
  const crossL = crossSum >>> 0;
  const crossH = lhH + Math.floor(crossSum * INV_TWO32);
  // upper = (hl >> 32) + (cross >> 32) + hh; lower = (cross << 32) | (ll & 0xffffffff).
  const upperSum = hhL + hlH + crossH;
  const upperL = upperSum >>> 0;
  const upperH = hhH + Math.floor(upperSum * INV_TWO32);
  REG[1] = upperH ^ crossL;
  REG[0] = upperL ^ llL;
}

/** XXH3_avalanche: xorshift 37, multiply by PRIME_MX1, xorshift 32. */
function avalanche(hi: number, lo: number): void {
  lo = (lo ^ (hi >>> 5)) >>> 0;
  mul64(hi, lo, PRIME_MX1_HI, PRIME_MX1_LO);
  REG[0] = (REG[0] ^ REG[1]) >>> 0;
}

/** XXH64_avalanche, used by the 0..3-byte paths. */
function avalanche64(hi: number, lo: number): void {
  lo = (lo ^ (hi >>> 1)) >>> 0;
  mul64(hi, lo, PRIME64_2_HI, PRIME64_2_LO);
  hi = REG[1];
  lo = REG[0];
  const lo2 = (lo ^ ((lo >>> 29) | (hi << 3))) >>> 0;
  const hi2 = (hi ^ (hi >>> 29)) >>> 0;
  mul64(hi2, lo2, PRIME64_3_HI, PRIME64_3_LO);
  REG[0] = (REG[0] ^ REG[1]) >>> 0;
}

/** XXH3_rrmxmx, the stronger finaliser of the 4..8-byte path. */
function rrmxmx(hi: number, lo: number, len: number): void {
  // h ^= rotl(h, 49) ^ rotl(h, 24)
  const r49Hi = (lo << 17) | (hi >>> 15);
  const r49Lo = (hi << 17) | (lo >>> 15);
  const r24Hi = (hi << 24) | (lo >>> 8);
  const r24Lo = (lo << 24) | (hi >>> 8);
  hi = (hi ^ r49Hi ^ r24Hi) >>> 0;
  lo = (lo ^ r49Lo ^ r24Lo) >>> 0;
  mul64(hi, lo, PRIME_MX2_HI, PRIME_MX2_LO);
  // h ^= (h >> 35) + len; (h >> 35) < 2^29 so the sum stays in the low limb.
  lo = (REG[0] ^ ((REG[1] >>> 3) + len)) >>> 0;
  mul64(REG[1], lo, PRIME_MX2_HI, PRIME_MX2_LO);
  hi = REG[1];
  lo = REG[0];
  REG[0] = (lo ^ ((lo >>> 28) | (hi << 4))) >>> 0;
  REG[1] = (hi ^ (hi >>> 28)) >>> 0;
}

function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/**
 * XXH3_mix16B into REG[1]:REG[0]: 16 input bytes at `inOff` keyed by 16 secret bytes at
 * `secOff`, with the seed added to the first secret word and subtracted from the second.
 */
function mix16B(view: DataView, inOff: number, secOff: number, seedHi: number, seedLo: number): void {
  const s = DEFAULT_SECRET;
  let lo = s[secOff]! + seedLo;
  const aHi = ((s[secOff + 4]! + seedHi + (lo > MASK32 ? 1 : 0)) ^ view.getUint32(inOff + 4, true)) >>> 0;
  const aLo = (lo ^ view.getUint32(inOff, true)) >>> 0;
  lo = s[secOff + 8]! - seedLo;
  const bHi = ((s[secOff + 12]! - seedHi - (lo < 0 ? 1 : 0)) ^ view.getUint32(inOff + 12, true)) >>> 0;
  const bLo = (lo ^ view.getUint32(inOff + 8, true)) >>> 0;
  mul128Fold(aHi, aLo, bHi, bLo);
}

function hashLen0To16(view: DataView, off: number, len: number, seedHi: number, seedLo: number): void {
  const s = DEFAULT_SECRET;
  if (len > 8) {
    // bitflip1 = (s[24] ^ s[32]) + seed; bitflip2 = (s[40] ^ s[48]) - seed
    let lo = ((s[24]! ^ s[32]!) >>> 0) + seedLo;
    const b1Hi = (((s[28]! ^ s[36]!) >>> 0) + seedHi + (lo > MASK32 ? 1 : 0)) >>> 0;
    const b1Lo = lo >>> 0;
    lo = ((s[40]! ^ s[48]!) >>> 0) - seedLo;
    const b2Hi = (((s[44]! ^ s[52]!) >>> 0) - seedHi - (lo < 0 ? 1 : 0)) >>> 0;
    const b2Lo = lo >>> 0;
    const inLoLo = (view.getUint32(off, true) ^ b1Lo) >>> 0;
    const inLoHi = (view.getUint32(off + 4, true) ^ b1Hi) >>> 0;
    const inHiLo = (view.getUint32(off + len - 8, true) ^ b2Lo) >>> 0;
    const inHiHi = (view.getUint32(off + len - 4, true) ^ b2Hi) >>> 0;
    mul128Fold(inLoHi, inLoLo, inHiHi, inHiLo);
    // acc = len + swap64(input_lo) + input_hi + fold
    const sumLo = len + bswap32(inLoHi) + inHiLo + REG[0]!; // < 2^34, exact
    const sumHi = bswap32(inLoLo) + inHiHi + REG[1]! + ((sumLo / TWO32) | 0);
    avalanche(sumHi >>> 0, sumLo >>> 0);
    return;
  }
  if (len >= 4) {
    const sHi = (seedHi ^ bswap32(seedLo)) >>> 0;
    const input1 = view.getUint32(off, true);
    const input2 = view.getUint32(off + len - 4, true);
    // bitflip = (s[8] ^ s[16]) - seed
    const lo = ((s[8]! ^ s[16]!) >>> 0) - seedLo;
    const bHi = ((s[12]! ^ s[20]!) >>> 0) - sHi - (lo < 0 ? 1 : 0);
    rrmxmx((input1 ^ bHi) >>> 0, (input2 ^ lo) >>> 0, len);
    return;
  }
  if (len > 0) {
    const c1 = view.getUint8(off);
    const c2 = view.getUint8(off + (len >> 1));
    const c3 = view.getUint8(off + len - 1);
    const combined = ((c1 << 16) | (c2 << 24) | c3 | (len << 8)) >>> 0;
    const lo = ((s[0]! ^ s[4]!) >>> 0) + seedLo;
    const hi = seedHi + (lo > MASK32 ? 1 : 0);
    avalanche64(hi >>> 0, (lo ^ combined) >>> 0);
    return;
  }
  avalanche64((seedHi ^ s[60]! ^ s[68]!) >>> 0, (seedLo ^ s[56]! ^ s[64]!) >>> 0);
}

function hashLen17To128(view: DataView, off: number, len: number, seedHi: number, seedLo: number): void {
  mul64(0, len, PRIME64_1_HI, PRIME64_1_LO);
  let accHi = REG[1]!;
  let accLo = REG[0]!;
  let lo = 0;
  // Pairs of 16-byte lanes from both ends, (0, len-16), (16, len-32), ... (XXH_SIZE_OPT form).
  for (let pair = (len - 1) >>> 5; pair >= 0; pair--) {
    mix16B(view, off + 16 * pair, 32 * pair, seedHi, seedLo);
    lo = accLo + REG[0]!;
    accHi = (accHi + REG[1]! + (lo > MASK32 ? 1 : 0)) >>> 0;
    accLo = lo >>> 0;
    mix16B(view, off + len - 16 * (pair + 1), 32 * pair + 16, seedHi, seedLo);
    lo = accLo + REG[0]!;
    accHi = (accHi + REG[1]! + (lo > MASK32 ? 1 : 0)) >>> 0;
    accLo = lo >>> 0;
  }
  avalanche(accHi, accLo);
}

function hashLen129To240(view: DataView, off: number, len: number, seedHi: number, seedLo: number): void {
  const nbRounds = len >>> 4;
  mul64(0, len, PRIME64_1_HI, PRIME64_1_LO);
  let accHi = REG[1]!;
  let accLo = REG[0]!;
  let lo = 0;
  for (let i = 0; i < 8; i++) {
    mix16B(view, off + 16 * i, 16 * i, seedHi, seedLo);
    lo = accLo + REG[0]!;
    accHi = (accHi + REG[1]! + (lo > MASK32 ? 1 : 0)) >>> 0;
    accLo = lo >>> 0;
  }
  avalanche(accHi, accLo);
  const headHi = REG[1]!;
  const headLo = REG[0]!;
  mix16B(view, off + len - 16, SECRET_SIZE_MIN - MIDSIZE_LASTOFFSET, seedHi, seedLo);
  accHi = REG[1]!;
  accLo = REG[0]!;
  for (let i = 8; i < nbRounds; i++) {
    mix16B(view, off + 16 * i, 16 * (i - 8) + MIDSIZE_STARTOFFSET, seedHi, seedLo);
    lo = accLo + REG[0]!;
    accHi = (accHi + REG[1]! + (lo > MASK32 ? 1 : 0)) >>> 0;
    accLo = lo >>> 0;
  }
  lo = headLo + accLo;
  avalanche((headHi + accHi + (lo > MASK32 ? 1 : 0)) >>> 0, lo >>> 0);
}

// The eight 64-bit accumulator lanes of the long path.
const LANE_HI = new Uint32Array(8);
const LANE_LO = new Uint32Array(8);

/**
 * XXH3_accumulate (scalar): `stripes` consecutive 64-byte stripes into the eight lanes, the
 * secret advancing 8 bytes per stripe. Lanes 2j and 2j+1 only feed each other (the data swap),
 * so each pair runs over all stripes in locals before going back to LANE_HI/LANE_LO.
 */
function accumulateStripes(view: DataView, inOff: number, stripes: number, s: SecretWords, secOff: number): void {
  for (let pair = 0; pair < 4; pair++) {
    let evenHi = LANE_HI[2 * pair]!;
    let evenLo = LANE_LO[2 * pair]!;
    let oddHi = LANE_HI[2 * pair + 1]!;
    let oddLo = LANE_LO[2 * pair + 1]!;
    for (let stripe = 0; stripe < stripes; stripe++) {
      const at = inOff + STRIPE_LEN * stripe + 16 * pair;
      const key = secOff + SECRET_CONSUME_RATE * stripe + 16 * pair;
      const evenDataLo = view.getUint32(at, true);
      const evenDataHi = view.getUint32(at + 4, true);
      const oddDataLo = view.getUint32(at + 8, true);
      const oddDataHi = view.getUint32(at + 12, true);
      // acc[lane] += lo32(data ^ key) * hi32(data ^ key); acc[lane ^ 1] += data.
      let keyLo = (evenDataLo ^ s[key]!) >>> 0;
      let keyHi = (evenDataHi ^ s[key + 4]!) >>> 0;
      let productLo = Math.imul(keyLo, keyHi) >>> 0;
      let productHi = Math.floor((keyLo * keyHi - productLo) * INV_TWO32 + 0.5);
      let lo = evenLo + productLo + oddDataLo; // < 3 * 2^32
      let carry = lo > MASK32 ? (lo > 2 * MASK32 + 1 ? 2 : 1) : 0;
      evenHi = (evenHi + productHi + oddDataHi + carry) >>> 0;
      evenLo = lo >>> 0;
      keyLo = (oddDataLo ^ s[key + 8]!) >>> 0;
      keyHi = (oddDataHi ^ s[key + 12]!) >>> 0;
      productLo = Math.imul(keyLo, keyHi) >>> 0;
      productHi = Math.floor((keyLo * keyHi - productLo) * INV_TWO32 + 0.5);
      lo = oddLo + productLo + evenDataLo;
      carry = lo > MASK32 ? (lo > 2 * MASK32 + 1 ? 2 : 1) : 0;
      oddHi = (oddHi + productHi + evenDataHi + carry) >>> 0;
      oddLo = lo >>> 0;
    }
    LANE_HI[2 * pair] = evenHi;
    LANE_LO[2 * pair] = evenLo;
    LANE_HI[2 * pair + 1] = oddHi;
    LANE_LO[2 * pair + 1] = oddLo;
  }
}

/** XXH3_scrambleAcc (scalar). */
function scrambleLanes(s: SecretWords, secOff: number): void {
  for (let lane = 0; lane < 8; lane++) {
    const hi = LANE_HI[lane]!;
    const lo = (LANE_LO[lane]! ^ (hi >>> 15) ^ s[secOff + 8 * lane]!) >>> 0; // ^= acc >> 47, ^= key
    const keyedHi = hi ^ s[secOff + 8 * lane + 4]!;
    mul32(lo, PRIME32_1);
    LANE_HI[lane] = REG[1] + Math.imul(keyedHi, PRIME32_1);
    LANE_LO[lane] = REG[0];
  }
}

function hashLong(view: DataView, off: number, len: number, s: SecretWords): void {
  LANE_HI[0] = 0;
  LANE_LO[0] = PRIME32_3;
  LANE_HI[1] = PRIME64_1_HI;
  LANE_LO[1] = PRIME64_1_LO;
  LANE_HI[2] = PRIME64_2_HI;
  LANE_LO[2] = PRIME64_2_LO;
  LANE_HI[3] = PRIME64_3_HI;
  LANE_LO[3] = PRIME64_3_LO;
  LANE_HI[4] = PRIME64_4_HI;
  LANE_LO[4] = PRIME64_4_LO;
  LANE_HI[5] = 0;
  LANE_LO[5] = PRIME32_2;
  LANE_HI[6] = PRIME64_5_HI;
  LANE_LO[6] = PRIME64_5_LO;
  LANE_HI[7] = 0;
  LANE_LO[7] = PRIME32_1;

  const nbBlocks = Math.floor((len - 1) / BLOCK_LEN);
  for (let n = 0; n < nbBlocks; n++) {
    accumulateStripes(view, off + n * BLOCK_LEN, STRIPES_PER_BLOCK, s, 0);
    scrambleLanes(s, SECRET_SIZE - STRIPE_LEN);
  }
  const nbStripes = Math.floor((len - 1 - BLOCK_LEN * nbBlocks) / STRIPE_LEN);
  accumulateStripes(view, off + nbBlocks * BLOCK_LEN, nbStripes, s, 0);
  accumulateStripes(view, off + len - STRIPE_LEN, 1, s, SECRET_SIZE - STRIPE_LEN - SECRET_LASTACC_START);

  // mergeAccs, starting from len * PRIME64_1 (len may exceed 2^32).
  mul64(Math.floor(len / TWO32) >>> 0, len >>> 0, PRIME64_1_HI, PRIME64_1_LO);
  let resHi = REG[1];
  let resLo = REG[0];
  for (let i = 0; i < 4; i++) {
    const k = SECRET_MERGEACCS_START + 16 * i;
    mul128Fold(
      (LANE_HI[2 * i]! ^ s[k + 4]!) >>> 0,
      (LANE_LO[2 * i]! ^ s[k]!) >>> 0,
      (LANE_HI[2 * i + 1]! ^ s[k + 12]!) >>> 0,
      (LANE_LO[2 * i + 1]! ^ s[k + 8]!) >>> 0,
    );
    const lo = resLo + REG[0];
    resHi = (resHi + REG[1] + (lo > MASK32 ? 1 : 0)) >>> 0;
    resLo = lo >>> 0;
  }
  avalanche(resHi, resLo);
}

// Seed-derived secrets of the long path, cached per seed (a few seeds are used at a time:
// the KV seed and its salted variants), round-robin over a small fixed set of slots.
const SECRET_CACHE_SLOTS = 8;
const cachedSeedHi = new Float64Array(SECRET_CACHE_SLOTS).fill(-1);
const cachedSeedLo = new Float64Array(SECRET_CACHE_SLOTS).fill(-1);
const cachedSecrets: SecretWords[] = new Array<SecretWords>(SECRET_CACHE_SLOTS);
let nextSecretSlot = 0;

/** XXH3_initCustomSecret: kSecret with the seed added to even and subtracted from odd u64s. */
function customSecret(seedHi: number, seedLo: number): SecretWords {
  if (seedHi === 0 && seedLo === 0) return DEFAULT_SECRET;
  for (let slot = 0; slot < SECRET_CACHE_SLOTS; slot++) {
    if (cachedSeedHi[slot] === seedHi && cachedSeedLo[slot] === seedLo) return cachedSecrets[slot]!;
  }
  const bytes = new Uint8Array(SECRET_SIZE);
  const out = new DataView(bytes.buffer);
  const k = DEFAULT_SECRET;
  for (let i = 0; i < SECRET_SIZE / 16; i++) {
    let lo = k[16 * i]! + seedLo;
    out.setUint32(16 * i, lo >>> 0, true);
    out.setUint32(16 * i + 4, (k[16 * i + 4]! + seedHi + (lo > MASK32 ? 1 : 0)) >>> 0, true);
    lo = k[16 * i + 8]! - seedLo;
    out.setUint32(16 * i + 8, lo >>> 0, true);
    out.setUint32(16 * i + 12, (k[16 * i + 12]! - seedHi - (lo < 0 ? 1 : 0)) >>> 0, true);
  }
  const words = secretWords(bytes);
  const slot = nextSecretSlot;
  nextSecretSlot = (nextSecretSlot + 1) % SECRET_CACHE_SLOTS;
  cachedSeedHi[slot] = seedHi;
  cachedSeedLo[slot] = seedLo;
  cachedSecrets[slot] = words;
  return words;
}

/**
 * Raw XXH3-64 over `len` bytes of `view` starting at `off`, seed given as u32 limbs.
 * Writes the result to XXH3_RESULT ([0] = low u32, [1] = high u32); internal to libs/kv.
 */
export function xxh3_64Limbs(view: DataView, off: number, len: number, seedHi: number, seedLo: number): void {
  if (len <= 16) hashLen0To16(view, off, len, seedHi, seedLo);
  else if (len <= 128) hashLen17To128(view, off, len, seedHi, seedLo);
  else if (len <= MIDSIZE_MAX) hashLen129To240(view, off, len, seedHi, seedLo);
  else hashLong(view, off, len, customSecret(seedHi, seedLo));
  XXH3_RESULT[0] = REG[0];
  XXH3_RESULT[1] = REG[1];
}

/** Output of xxh3_64Limbs: [0] = low u32, [1] = high u32 of the last hash. */
export const XXH3_RESULT = new Uint32Array(2);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const U64_CELL = new BigUint64Array(1);
const U32_CELL = new Uint32Array(U64_CELL.buffer);

/** Builds a u64 bigint from two u32 limbs with one typed-array read (no BigInt arithmetic). */
export function u64FromLimbs(hi: number, lo: number): bigint {
  if (LITTLE_ENDIAN) {
    U32_CELL[0] = lo;
    U32_CELL[1] = hi;
  } else {
    U32_CELL[0] = hi;
    U32_CELL[1] = lo;
  }
  return U64_CELL[0]!;
}

/** Splits a bigint into u32 limbs of its low 64 bits, written to `out` as [lo, hi]. */
export function u64ToLimbs(value: bigint, out: Uint32Array): void {
  U64_CELL[0] = BigInt.asUintN(64, value);
  if (LITTLE_ENDIAN) {
    out[0] = U32_CELL[0]!;
    out[1] = U32_CELL[1]!;
  } else {
    out[0] = U32_CELL[1]!;
    out[1] = U32_CELL[0]!;
  }
}

const SEED_LIMBS = new Uint32Array(2);

/** XXH3-64 of `data` with a u64 seed (default 0; taken modulo 2^64), as in xxhash.h v0.8 XXH3_64bits_withSeed. */
export function xxh3_64(data: Uint8Array, seed: bigint = 0n): bigint {
  u64ToLimbs(seed, SEED_LIMBS);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  xxh3_64Limbs(view, 0, data.byteLength, SEED_LIMBS[1]!, SEED_LIMBS[0]!);
  return u64FromLimbs(XXH3_RESULT[1]!, XXH3_RESULT[0]!);
}

/**
 * Seeded randomness for the generator's hot path: 32-bit integer arithmetic only (Math.imul,
 * shifts), no allocation per call, no Math.random.
 */

/** splitmix32 step: spreads a seed into well-mixed 32-bit words. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0
  let z = x
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/** xoshiro128**: fast, 2^128 − 1 period, good enough statistics for workload generation. */
export class Xoshiro128 {
  private s0: number
  private s1: number
  private s2: number
  private s3: number

  /** `seed` is any safe integer; equal seeds give equal sequences. */
  constructor(seed: number) {
    const lo = seed >>> 0
    const hi = Math.floor(seed / 4294967296) >>> 0
    let x = mix32(lo ^ 0x5bd1e995)
    this.s0 = x
    x = mix32(x ^ hi)
    this.s1 = x
    x = mix32(x + 0x27d4eb2f)
    this.s2 = x
    x = mix32(x ^ 0x165667b1)
    this.s3 = x
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1
  }

  /** The next unsigned 32-bit integer. */
  next(): number {
    const s1 = this.s1
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0
    const t = s1 << 9
    this.s2 ^= this.s0
    this.s3 ^= s1
    this.s1 ^= this.s2
    this.s0 ^= this.s3
    this.s2 ^= t
    this.s3 = rotl(this.s3, 11)
    return result
  }

  /** A uniform integer in [0, n) for n ≤ 2^32 (bias below 2^-32 × n, irrelevant here). */
  below(n: number): number {
    return Math.floor(this.next() * 2.3283064365386963e-10 * n)
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

/**
 * A seeded permutation of [0, n) produced one element at a time in O(1) memory: a keyed
 * bijection on k-bit integers (xor, odd multiply, xorshift — each invertible mod 2^k), walked
 * over 0 … 2^k − 1 with values ≥ n skipped. This is the generator's "random map": every block
 * exactly once per pass, as fio's default, without a bitmap the size of the disk.
 */
export class RandomPermutation {
  private readonly mask: number
  private readonly shift: number
  private readonly k0: number
  private readonly k1: number
  private readonly k2: number
  private readonly m0: number
  private readonly m1: number
  private readonly m2: number
  private counter = 0
  /** Elements left in the current pass. */
  remaining: number

  constructor(readonly n: number, rng: Xoshiro128) {
    if (!(n >= 1 && n <= 0x80000000)) throw new RangeError(`permutation size ${n} is outside 1 … 2^31`)
    let bits = 1
    while (2 ** bits < n) bits++
    this.mask = bits >= 31 ? 0x7fffffff : (1 << bits) - 1
    this.shift = Math.max(1, bits >> 1)
    this.k0 = rng.next() & this.mask
    this.k1 = rng.next() & this.mask
    this.k2 = rng.next() & this.mask
    this.m0 = (rng.next() | 1) >>> 0
    this.m1 = (rng.next() | 1) >>> 0
    this.m2 = (rng.next() | 1) >>> 0
    this.remaining = n
  }

  /** The next element of the pass; call only while `remaining > 0`. */
  next(): number {
    const n = this.n
    for (;;) {
      const x = this.permute(this.counter++)
      if (x < n) {
        this.remaining--
        return x
      }
    }
  }


  private permute(x: number): number {
    const mask = this.mask
    const s = this.shift
    x = (x ^ this.k0) & mask
    x = Math.imul(x, this.m0) & mask
    x ^= x >>> s
    x = (x ^ this.k1) & mask
    x = Math.imul(x, this.m1) & mask
    x ^= x >>> s
    x = (x ^ this.k2) & mask
    x = Math.imul(x, this.m2) & mask
    x ^= x >>> s
    return x
  }
}

/** Derives an independent seed for one copy of a job (fio gives every clone its own). */
export function deriveSeed(seed: number, stream: number): number {
  const lo = mix32((seed >>> 0) ^ mix32(stream))
  const hi = mix32((Math.floor(seed / 4294967296) >>> 0) + lo) & 0x1fffff
  return hi * 4294967296 + lo
}

/** A small seeded PRNG (splitmix32-seeded xorshift128): reproducible across runs for a seed. */
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  constructor(seed: number) {
    let s = seed >>> 0
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next() | 1
    this.b = next()
    this.c = next()
    this.d = next()
  }
  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    let t = this.d
    const s = this.a
    this.d = this.c
    this.c = this.b
    this.b = s
    t ^= t << 11
    t ^= t >>> 8
    this.a = (t ^ s ^ (s >>> 19)) >>> 0
    return this.a
  }
  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 4294967296 ? Math.floor(this.float() * n) : Math.floor((this.u32() * 4294967296 + this.u32()) / 18446744073709551616 * n)
  }
  /** Fills `buf` with pseudo-random bytes. */
  fill(buf: Uint8Array): Uint8Array {
    let i = 0
    for (; i + 4 <= buf.length; i += 4) {
      const v = this.u32()
      buf[i] = v; buf[i + 1] = v >>> 8; buf[i + 2] = v >>> 16; buf[i + 3] = v >>> 24
    }
    for (; i < buf.length; i++) buf[i] = this.u32()
    return buf
  }
  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = arr[i]!; arr[i] = arr[j]!; arr[j] = t
    }
    return arr
  }
  /** A derived generator, independent of this one's future outputs. */
  fork(salt: number): Rng {
    return new Rng((this.u32() ^ Math.imul(salt, 0x27d4eb2d)) >>> 0)
  }
}

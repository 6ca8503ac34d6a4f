/**
 * The ring through which an instance hands the bytes of completed writes to its daemon: one
 * shared buffer per instance, written by the instance (`Ring`) and read by the daemon
 * (`RingReader`).
 *
 * Format: [taken: int32, the sector count the daemon has taken out][pad to RING_HEADER][data:
 * RING_SECTORS sectors]. A write takes whole sectors and never wraps (the ring's tail is skipped
 * and freed with it); the daemon copies writes out in post order and stores, after each, the end
 * the instance gave it.
 */
/**
 * Sectors of the ring through which an instance hands write data to its daemon (a power of 2):
 * 1 MiB, 256 writes of 4 KiB. Every open disk has one, written all round, so it is resident: 128
 * VMs on a host hold 128 MiB of rings. A write that does not fit travels in a buffer of its own.
 */
export const RING_SECTORS = 2048
/** The ring's header: the sector count the daemon has taken out, then the data. */
export const RING_HEADER = 64

/**
 * Write data on its way to the daemon. A fresh ArrayBuffer per write, transferred, costs the VM's
 * I/O thread far more than the copy itself (allocation, then the collector); so writes are copied
 * into one shared buffer the daemon copies them out of as the posts arrive. Only this instance
 * writes into it and only the daemon advances `taken`, after copying out, in post order.
 */
export class Ring {
  readonly sab = new SharedArrayBuffer(RING_HEADER + RING_SECTORS * 512)
  private readonly bytes = new Uint8Array(this.sab, RING_HEADER)
  private readonly taken = new Int32Array(this.sab, 0, 1)
  /** Sectors handed out so far (modulo 2^32). */
  private given = 0

  /** Copies `data` in; null when it does not fit now (then it travels in a buffer of its own). */
  stage(data: Uint8Array): { at: number; end: number } | null {
    const n = data.length >>> 9
    if (n * 512 !== data.length || n > RING_SECTORS / 4) return null
    const used = (this.given - Atomics.load(this.taken, 0)) | 0
    const pos = this.given & (RING_SECTORS - 1)
    // a write never wraps: the ring's tail is skipped, and freed with it
    const skip = pos + n > RING_SECTORS ? RING_SECTORS - pos : 0
    if (used + skip + n > RING_SECTORS) return null
    const at = skip > 0 ? 0 : pos
    this.bytes.set(data, at * 512)
    this.given = (this.given + skip + n) | 0
    return { at, end: this.given }
  }
}

/** The daemon's side of an instance's ring. */
export class RingReader {
  private readonly bytes: Uint8Array
  private readonly taken: Int32Array

  constructor(sab: SharedArrayBuffer) {
    this.bytes = new Uint8Array(sab, RING_HEADER)
    this.taken = new Int32Array(sab, 0, 1)
  }

  /** Copies a staged write out of the ring and frees its place there (up to sector `end`). */
  take(at: number, length: number, end: number): Uint8Array {
    const data = this.bytes.slice(at * 512, at * 512 + length)
    Atomics.store(this.taken, 0, end)
    return data
  }
}

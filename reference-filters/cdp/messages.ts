/**
 * What an instance says to its host's daemon (posts, and requests it waits on), and how an error
 * becomes text for a log line or a message.
 */

// ---- messages an instance sends its daemon. `inst` names the instance that opened the disk last:
// what an instance that died (its VM's worker ended) left in flight is dropped, not applied after
// what its successor sends.
export type ToDaemon =
  | { kind: 'open'; inst: number; site: string }
  | { kind: 'write'; inst: number; offset: number; buf: ArrayBuffer }
  /** Writes read back together, in order: `bufs[i]` was written at `offsets[i]`. One message, not one a write. */
  | { kind: 'writes'; inst: number; offsets: number[]; bufs: ArrayBuffer[] }
  /**
   * Completed writes, in order, their bytes one after another in `buf`: the i-th wrote
   * `lengths[i]` bytes at `offsets[i]`. One message and one buffer, not one a write.
   */
  | { kind: 'packed'; inst: number; offsets: number[]; lengths: number[]; buf: ArrayBuffer }
  | { kind: 'zero'; inst: number; offset: number; length: number }
  | { kind: 'resync'; inst: number }
  | { kind: 'drain'; timeoutMs: number }
  | { kind: 'forget' }
  | { kind: 'bye' }
  | { kind: 'watch'; epoch: number }
  | { kind: 'unwatch' }
  /** Whether the disk's backlog is under LOW_WATER; with `wait`, answered once it is (bounded). */
  | { kind: 'room'; wait: boolean; writes: boolean }

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

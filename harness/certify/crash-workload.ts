/**
 * The workload lifecycle.crash runs in a child process that it then kills with `kill -9`: batches
 * of writes, each followed by a flush, generated from a seed so that the parent — which only hears
 * which batches completed and which flushes completed — can rebuild every payload afterwards
 * rather than receive them over the pipe.
 */
import { Rng, type GuestIo } from '../framework/index.js'

/** The shape of the crash workload's batches. */
export interface CrashShape {
  readonly seed: number
  /** Writes per batch, issued together; no two of a batch overlap (their order would be undefined). */
  readonly writes: number
  readonly queueDepth: number
  readonly maxSectors: number
  readonly regionStart: number
  readonly regionLength: number
}

/** What the child is told to do (its one argument, as JSON). */
export interface CrashChildArgs {
  readonly dir: string
  readonly vm: string
  readonly disk: string
  /** The recovery site `dr` keeps its replicas here, so they outlive the child. */
  readonly siteDir: string
  /** Batches to run at most; the parent kills the child long before. */
  readonly batches: number
  readonly shape: CrashShape
}

/** What the child tells the parent, in order. */
export type CrashChildMessage =
  | { readonly t: 'ready'; readonly ms: number }
  /** Every write of the batch completed to the guest; its flush is issued next. */
  | { readonly t: 'acked'; readonly batch: number }
  /** The flush after the batch completed: the batch and all before it are durable. */
  | { readonly t: 'flushed'; readonly batch: number }
  | { readonly t: 'io-error'; readonly batch: number; readonly op: string; readonly offset: number; readonly length: number; readonly error: string }
  | { readonly t: 'failed'; readonly code: string; readonly message: string }
  | { readonly t: 'done' }

const SECTOR = 512

/** Batch `b` of the workload: the same writes, byte for byte, wherever it is generated. */
export function crashBatch(shape: CrashShape, b: number): GuestIo[] {
  const rng = new Rng((shape.seed ^ Math.imul(b + 1, 0x9e3779b1)) >>> 0)
  const out: GuestIo[] = []
  const sectorsIn = shape.regionLength / SECTOR
  let guard = 0
  while (out.length < shape.writes && guard++ < shape.writes * 20) {
    // sizes skewed small, as guest writes are
    const sectors = 1 + (rng.float() < 0.8 ? rng.int(Math.min(16, shape.maxSectors)) : rng.int(shape.maxSectors))
    const offset = shape.regionStart + rng.int(sectorsIn - sectors + 1) * SECTOR
    const length = sectors * SECTOR
    if (out.some(w => w.offset < offset + length && offset < w.offset + w.data!.length)) continue
    out.push({ op: 'write', offset, data: rng.fill(new Uint8Array(length)) })
  }
  return out
}

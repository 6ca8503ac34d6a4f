/**
 * fsync and fdatasync, or nothing where Node's permission model is on: Node 20 refuses
 * descriptor-based syncs under it. The sandboxed subject process runs under that model; its files
 * live in a scratch folder that is removed after the run, and its emulated power cuts kill
 * processes, which the kernel's page cache survives — so skipping the sync there loses nothing
 * a check observes.
 */
import * as fs from 'node:fs'

// read once, when the harness's modules load (vendor code later sees a process object of its own)
const refused = typeof (process as { permission?: unknown }).permission === 'object'

/** Makes a file's data and metadata durable (a no-op under the permission model). */
export function syncFile(fd: number): void {
  if (!refused) fs.fsyncSync(fd)
}

/** Makes a file's data durable (a no-op under the permission model). */
export function syncData(fd: number): void {
  if (!refused) fs.fdatasyncSync(fd)
}

/** Makes a directory's entries (files created, renamed or removed in it) durable (a no-op under the permission model). */
export function syncDir(dir: string): void {
  if (refused) return
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

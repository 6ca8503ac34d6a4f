/**
 * The nemesis's schedules: a seeded list of steps over a small cluster (two hosts, two or three
 * VMs with one disk each) — guest I/O, and lifecycle transitions taken while that I/O runs, back to
 * back, right after a close, while the recovery site is down. A schedule is a pure function of its
 * sub-seed and the filter's class: the same sub-seed gives the same steps, with the same
 * parameters, in the same order.
 *
 * Generation simulates the state the steps leave (which VM is on, on which host; which disks'
 * site is down), so every step it writes applies; a shrunk schedule may hold steps that no longer
 * apply, which the executor then skips and says so.
 */
import type { FilterClass } from '../../harness/sdk/index.js'
import { Rng } from '../../harness/framework/index.js'

/** The hosts of a nemesis cluster. */
export const HOSTS = ['esx1', 'esx2'] as const

/** What a step does. */
export type StepKind =
  /** Guest I/O on every powered-on VM, `ios` each. */
  | 'burst'
  | 'power-off'
  | 'power-on'
  /** To the other host, under I/O. */
  | 'migrate'
  /** A clean restart of a host: its VMs close with `host-shutdown`, its daemons stop; the VMs that were on power on again. */
  | 'reboot-host'
  /** A power cut of a host (unflushed writes lost, daemons killed), `downMs` down, then a restart; its VMs power on again. */
  | 'crash-host'
  /** The VM powers off (its filters close) and its host's power is cut at once; the host restarts, the VM stays off. */
  | 'close-crash'
  /** The VM's worker dies (its drives keep power); the VM powers on again. */
  | 'vm-crash'
  /** The recovery site refuses writes for the listed VMs' disks. */
  | 'site-down'
  /** The site takes every disk's writes again. */
  | 'site-up'
  /** The disk is stunned `holdMs` under I/O, then unstunned. */
  | 'stun'
  /** A snapshot of the disk under I/O. */
  | 'snapshot'
  /** The policy comes off the running VM's disk under I/O and is applied again after half of the rest of it. */
  | 'detach'
  /** The guests quiesce and flush; disks are read back; replicas must catch up and equal their disks. */
  | 'checkpoint'

/** One step of a schedule. */
export interface Step {
  readonly kind: StepKind
  /** The VM the step acts on. */
  readonly vm?: string
  /** The host the step acts on. */
  readonly host?: string
  /** For site-down: the VMs whose disks lose their site. */
  readonly vms?: readonly string[]
  /** Guest I/Os each powered-on VM issues during the step (0: the transition is taken quiesced). */
  readonly ios: number
  /** The transition is taken once this many of the acting VM's I/Os have completed (≤ ios). */
  readonly at: number
  readonly holdMs?: number
  readonly downMs?: number
  /** Seed of the host crash's power cut (which unflushed sectors are lost). */
  readonly cutSeed?: number
  /** For detach: the guest also trims a whole aligned MiB while the policy is off. */
  readonly trim?: boolean
}

/** A VM of a schedule and the host it starts on. */
export interface VmPlan {
  readonly name: string
  readonly host: string
}

/** A whole schedule. */
export interface Schedule {
  readonly subSeed: number
  readonly cls: FilterClass
  readonly vms: readonly VmPlan[]
  readonly steps: readonly Step[]
}

/** How big a schedule is. */
export interface ScheduleShape {
  /** Steps before the closing ones (site back, VMs on, a last checkpoint). */
  readonly steps: number
  /** Guest I/Os per VM in a step that runs I/O, at most. */
  readonly maxIos: number
  /** VMs: 2 or 3 (by default drawn from the sub-seed). */
  readonly vms?: 2 | 3
  /** How many of the hazards the schedule holds, drawn from the sub-seed (default: all of them). */
  readonly hazards?: number
}

interface SimVm {
  on: boolean
  host: string
}

/** Kinds a step may be drawn from, with weights. */
const WEIGHTS: readonly [StepKind, number][] = [
  ['burst', 3], ['power-off', 1], ['power-on', 3], ['migrate', 3], ['reboot-host', 2], ['crash-host', 2],
  ['close-crash', 1], ['vm-crash', 1], ['stun', 2], ['snapshot', 2], ['detach', 1], ['checkpoint', 1], ['site-down', 2], ['site-up', 2],
]

/**
 * The hazards every schedule holds at least once, at random places: transitions at the worst
 * moment for a filter that keeps state in flight.
 */
type Hazard = 'close-crash' | 'crash-mid-io' | 'outage' | 'migrate-reopen'

/** Generates the schedule of a sub-seed. */
export function generateSchedule(subSeed: number, cls: FilterClass, shape: ScheduleShape): Schedule {
  const rng = new Rng(subSeed)
  const n = shape.vms ?? (rng.float() < 0.5 ? 2 : 3)
  const vms: VmPlan[] = Array.from({ length: n }, (_, i) => ({ name: `vm${i + 1}`, host: HOSTS[i === 0 ? 0 : i === 1 ? 1 : rng.int(2)]! }))
  const sim = new Map<string, SimVm>(vms.map(v => [v.name, { on: true, host: v.host }]))
  const down = new Set<string>()
  const replication = cls === 'replication'
  const steps: Step[] = []
  const ios = () => 8 + rng.int(Math.max(1, shape.maxIos - 7))
  const during = (): { ios: number; at: number } => {
    // a third of the transitions are taken quiesced: back to back with the step before
    if (rng.float() < 0.3) return { ios: 0, at: 0 }
    const total = ios()
    return { ios: total, at: rng.int(total + 1) }
  }
  const onVms = () => vms.filter(v => sim.get(v.name)!.on).map(v => v.name)
  const offVms = () => vms.filter(v => !sim.get(v.name)!.on).map(v => v.name)
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!
  const other = (h: string) => (h === HOSTS[0] ? HOSTS[1] : HOSTS[0])
  const hostsWithOn = () => HOSTS.filter(h => vms.some(v => sim.get(v.name)!.on && sim.get(v.name)!.host === h))

  /** Appends a step of `kind` if it applies now; false when it does not. */
  const add = (kind: StepKind, o: { vm?: string; host?: string } = {}): boolean => {
    switch (kind) {
      case 'burst': {
        if (onVms().length === 0) return false
        steps.push({ kind, ios: ios(), at: 0 })
        return true
      }
      case 'power-off':
      case 'close-crash':
      case 'migrate':
      case 'vm-crash':
      case 'stun':
      case 'snapshot':
      case 'detach': {
        const vm = o.vm ?? (onVms().length > 0 ? pick(onVms()) : undefined)
        if (vm === undefined || !sim.get(vm)!.on) return false
        const s = sim.get(vm)!
        if (kind === 'power-off') {
          steps.push({ kind, vm, ...during() })
          s.on = false
        } else if (kind === 'close-crash') {
          steps.push({ kind, vm, host: s.host, ...during(), downMs: rng.int(300), cutSeed: rng.u32() })
          s.on = false
        } else if (kind === 'migrate') {
          steps.push({ kind, vm, host: other(s.host), ...during() })
          s.host = other(s.host)
        } else if (kind === 'stun') {
          const d = during()
          steps.push({ kind, vm, ios: Math.max(d.ios, 8), at: d.at, holdMs: 50 + rng.int(400) })
        } else if (kind === 'detach') {
          const total = ios()
          steps.push({ kind, vm, ios: total, at: rng.int(Math.max(1, total >> 1)), trim: rng.float() < 0.5 })
        } else steps.push({ kind, vm, ...during() })
        return true
      }
      case 'power-on': {
        const vm = o.vm ?? (offVms().length > 0 ? pick(offVms()) : undefined)
        if (vm === undefined || sim.get(vm)!.on) return false
        steps.push({ kind, vm, ios: 0, at: 0 })
        sim.get(vm)!.on = true
        return true
      }
      case 'reboot-host':
      case 'crash-host': {
        const candidates = hostsWithOn()
        const host = o.host ?? (candidates.length > 0 ? pick(candidates) : pick(HOSTS))
        if (kind === 'reboot-host') steps.push({ kind, host, ...during() })
        else steps.push({ kind, host, ...during(), downMs: rng.int(300), cutSeed: rng.u32() })
        return true
      }
      case 'site-down': {
        if (!replication) return false
        const up = vms.map(v => v.name).filter(v => !down.has(v))
        if (up.length === 0) return false
        const chosen = rng.float() < 0.6 ? up : rng.shuffle([...up]).slice(0, 1 + rng.int(up.length))
        for (const v of chosen) down.add(v)
        steps.push({ kind, vms: chosen, ios: 0, at: 0 })
        return true
      }
      case 'site-up': {
        if (down.size === 0) return false
        down.clear()
        steps.push({ kind, ios: 0, at: 0 })
        return true
      }
      case 'checkpoint':
        steps.push({ kind, ios: 0, at: 0 })
        return true
    }
  }

  const random = () => {
    const total = WEIGHTS.reduce((s, [, w]) => s + w, 0)
    for (let tries = 0; tries < 20; tries++) {
      let x = rng.float() * total
      let kind: StepKind = 'burst'
      for (const [k, w] of WEIGHTS) {
        if ((x -= w) < 0) {
          kind = k
          break
        }
      }
      if (add(kind)) return
    }
    add('checkpoint')
  }

  /** Every VM on again, then a checkpoint: what a hazard broke shows while it is fresh. */
  const settle = () => {
    if (down.size > 0) add('site-up')
    for (const vm of offVms()) add('power-on', { vm })
    add('checkpoint')
  }

  /** The hazard's steps; each brings a VM on first when it needs one, and ends with a checkpoint. */
  const hazard = (h: Hazard) => {
    const needOn = () => {
      if (onVms().length === 0) add('power-on')
    }
    const midIo = () => {
      const total = 16 + rng.int(Math.max(1, shape.maxIos - 15))
      return { ios: total, at: (total >> 2) + rng.int(total - (total >> 2)) }
    }
    switch (h) {
      case 'close-crash': {
        // a close with writes just completed, the host's power cut right after it
        needOn()
        const vm = pick(onVms())
        steps.push({ kind: 'close-crash', vm, host: sim.get(vm)!.host, ...midIo(), downMs: rng.int(300), cutSeed: rng.u32() })
        sim.get(vm)!.on = false
        settle()
        return
      }
      case 'crash-mid-io': {
        needOn()
        const host = pick(hostsWithOn())
        steps.push({ kind: 'crash-host', host, ...midIo(), downMs: rng.int(300), cutSeed: rng.u32() })
        settle()
        return
      }
      case 'outage': {
        // down for every disk, I/O queued, then a close followed by the loss of the daemon that took it
        const up = vms.map(v => v.name).filter(v => !down.has(v))
        if (up.length > 0) {
          for (const v of up) down.add(v)
          steps.push({ kind: 'site-down', vms: up, ios: 0, at: 0 })
        }
        needOn()
        add('burst')
        const vm = pick(onVms())
        const host = sim.get(vm)!.host
        const variant = rng.int(3)
        if (variant === 0) add('close-crash', { vm })
        else if (variant === 1) add('reboot-host', { host })
        else {
          add('migrate', { vm })
          if (rng.float() < 0.5) add('burst')
          add(rng.float() < 0.5 ? 'crash-host' : 'reboot-host', { host })
        }
        if (rng.float() < 0.5) random()
        settle()
        return
      }
      case 'migrate-reopen': {
        // state carried by a move, then writes, then a clean close and an open that is not a move's
        // (after a power cut, old bytes are a legitimate outcome: a crash would hide stale state)
        needOn()
        add('burst')
        const vm = pick(onVms())
        add('migrate', { vm })
        steps.push({ kind: 'burst', ios: shape.maxIos, at: 0 })
        if (rng.float() < 0.5) {
          add('power-off', { vm })
          add('power-on', { vm })
        } else add('reboot-host', { host: sim.get(vm)!.host })
        settle()
        return
      }
    }
  }

  const hazards: Hazard[] = rng.shuffle<Hazard>(['close-crash', 'crash-mid-io', 'migrate-reopen', ...(replication ? ['outage' as const] : [])]).slice(0, shape.hazards)
  // the hazards at random places among the random steps
  const slots = new Map<number, Hazard>()
  const length = Math.max(shape.steps, hazards.length)
  const positions = rng.shuffle(Array.from({ length }, (_, i) => i)).slice(0, hazards.length)
  hazards.forEach((h, i) => slots.set(positions[i]!, h))
  // every filter has state before the first transition
  add('burst')
  for (let i = 0; i < length; i++) {
    const h = slots.get(i)
    if (h !== undefined) hazard(h)
    else random()
  }
  // the end: the site back, every VM on, some I/O, a last comparison
  if (down.size > 0) add('site-up')
  for (const vm of offVms()) add('power-on', { vm })
  add('burst')
  add('checkpoint')
  return { subSeed, cls, vms, steps }
}

/** A step in a few words, for messages and evidence. */
export function describeStep(s: Step): string {
  const at = s.ios === 0 ? 'quiesced' : `after ${s.at} of ${s.ios} I/Os`
  switch (s.kind) {
    case 'burst':
      return `${s.ios} guest I/Os on each powered-on VM`
    case 'power-off':
      return `power off ${s.vm} (${at})`
    case 'power-on':
      return `power on ${s.vm}`
    case 'migrate':
      return `migrate ${s.vm} to ${s.host} (${at})`
    case 'reboot-host':
      return `clean restart of ${s.host} (${at})`
    case 'crash-host':
      return `power cut of ${s.host} (${at}), down ${s.downMs} ms, restarted`
    case 'close-crash':
      return `power off ${s.vm} and at once cut the power of ${s.host} (${at}), down ${s.downMs} ms, restarted`
    case 'vm-crash':
      return `${s.vm}'s worker dies (${at}), powered on again`
    case 'site-down':
      return `recovery site down for ${s.vms!.join(', ')}`
    case 'site-up':
      return 'recovery site back for every disk'
    case 'stun':
      return `stun ${s.vm} for ${s.holdMs} ms (${at})`
    case 'snapshot':
      return `snapshot ${s.vm} (${at})`
    case 'detach':
      return `policy off ${s.vm} after ${s.at} of ${s.ios} I/Os${s.trim === true ? ', a whole MiB trimmed meanwhile' : ''}, on again after half the rest`
    case 'checkpoint':
      return 'checkpoint: quiesce, flush, read back, compare replicas'
  }
}

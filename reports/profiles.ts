/**
 * Named threshold profiles. A report records its profile's name and numbers; `verifyReport`
 * checks that the numbers are those of the named profile, and the certify runner reads its
 * thresholds from here so both agree by construction.
 */

/** The numbers a profile fixes; every check's threshold comes from one of these. */
export interface ProfileThresholds {
  /** performance.iops: filtered IOPS ≥ this × the reference filter's IOPS. */
  readonly iopsRatioMin: number
  /** performance.latency: p99 ≤ baseline p99 × latencyP99Factor + latencyP99AddUs µs. */
  readonly latencyP99AddUs: number
  readonly latencyP99Factor: number
  /** isolation.disk-fault: VM B's p99 ≤ this × its baseline p99. */
  readonly isolationP99Factor: number
  /** isolation.target-fault: B's lag p99 ≤ max(targetLagMinMs, targetLagFactor × lag without the fault). */
  readonly targetLagMinMs: number
  readonly targetLagFactor: number
  /** cache.bounded: growth ≤ cacheBoundFactor × cacheMiB + cacheBoundSlackMiB. */
  readonly cacheBoundFactor: number
  readonly cacheBoundSlackMiB: number
  /** cacheMiB assumed when the policy schema has none. */
  readonly cacheDefaultMiB: number
  /** performance.latency: the paced load per VM. */
  readonly pacedIopsPerVm: number
  /** Functional checks: an I/O not completed within this is a hang. */
  readonly ioTimeoutMs: number
  /** lifecycle.uninstall-clean: the daemon stops within this. */
  readonly daemonStopMs: number
}

/** The `default` profile, the one the certification spec states. */
export const DEFAULT_PROFILE: Readonly<ProfileThresholds> = Object.freeze({
  iopsRatioMin: 0.8,
  latencyP99AddUs: 50,
  latencyP99Factor: 1.2,
  isolationP99Factor: 2,
  targetLagMinMs: 1000,
  targetLagFactor: 2,
  cacheBoundFactor: 1.25,
  cacheBoundSlackMiB: 4,
  cacheDefaultMiB: 16,
  pacedIopsPerVm: 2000,
  ioTimeoutMs: 2000,
  daemonStopMs: 5000,
})

/** Every known profile by name. */
export const PROFILES: Readonly<Record<string, Readonly<ProfileThresholds>>> = Object.freeze({
  default: DEFAULT_PROFILE,
})

/** The thresholds of a named profile, or undefined when no profile has that name. */
export function profileThresholds(name: string): Readonly<ProfileThresholds> | undefined {
  return Object.hasOwn(PROFILES, name) ? PROFILES[name] : undefined
}

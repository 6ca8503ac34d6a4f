/**
 * What each check of the catalogue does, how it fails and what commonly makes it fail, written
 * for vendors. `docs/checks.md` is generated from this map and the suites' checks
 * (suites/index.ts; `npm run docs:checks`, scripts/checks-doc.mjs); test/checks-doc.test.ts fails
 * when a check has no entry here, when an entry names no check, or when
 * docs/checks.md is not what the generator writes now. Plain data: it imports nothing.
 *
 * The text is Markdown (inline code, no headings). Numbers are the `default` profile's and the
 * workload sizes are given as `--quick` / full run.
 */

/** The prose of one check. */
export interface CheckDoc {
  /** What the check sets up and exercises, and what it judges. */
  readonly does: string
  /** What makes it fail, and what the message and evidence then show. */
  readonly fails: string
  /** Filter behaviour (or package mistakes) that commonly make it fail. */
  readonly causes: readonly string[]
}

/** Check id → its prose. */
export const CHECK_DOCS: Readonly<Record<string, CheckDoc>> = Object.freeze({
  // ---- package ----
  'package.descriptor': {
    does: "Validates `descriptor.json` against the published JSON Schema of descriptor version 1 (see [packages](packages.md#descriptorjson)): every required field present, each of the right type and pattern, no field the schema does not know. The harness decides it itself from the package alone; no code of the package runs.",
    fails: "The message lists every schema error as `<JSON pointer>: <what was expected>`, e.g. `/install/reboot: must be boolean` or `/vendor: must match ^[A-Za-z][A-Za-z0-9]{1,15}$`; the evidence has `code: DescriptorInvalid` and the errors. A package that fails it is refused: every check that needs the filter running is `skipped` with that reason. A `descriptor.json` that is not JSON at all is no check result: the run stops with exit code 2 (`PackageUnreadable`).",
    causes: [
      "A metadata field missing: `summary`, `releaseDate`, or one of the `install`, `upgrade`, `uninstall` objects (each needs both `maintenanceMode` and `reboot`).",
      "A field of your own at the top level (extra metadata, a typo): unknown fields are refused.",
      "`name` with capitals or underscores, `vendor` with a hyphen, `version` that is not full semver (`1.0`), `releaseDate` not `YYYY-MM-DD`.",
      "`descriptor.json` edited by hand after `iofcert package` (a `files` hash that is not 64 lowercase hex digits).",
    ],
  },
  'package.integrity': {
    does: "Checks every entry of the package for path safety (no absolute path, no `..`, no backslash, no link, device or duplicate entry) and that `files` lists exactly the package's files besides `descriptor.json`, the entry among them, each with its SHA-256. Decided by the harness from the package alone; unsafe entries are never extracted.",
    fails: "The message names the first problem: `integrity check failed: <file> is listed but missing` / `is present but not listed` / `is changed (SHA-256 differs)` (with how many more), `entry \"…\" is not listed in files`, `package path \"…\" is not allowed: …` or `package entry \"…\" is a symbolic link`. The evidence has the code (`IntegrityMismatch`, `EntryMissing`, `PathEscapes`, `LinkInPackage`, `UnsupportedEntry`) and, for hashes, every mismatch. The package is refused.",
    causes: [
      "Files changed, added or removed after packaging (a rebuilt `filter.js` copied into an unpacked package directory, an editor's backup file).",
      "A package built by another tool, with a hand-made `files` map or duplicate tar entries.",
      "Symbolic or hard links in the tarball, e.g. `node_modules/.bin/*` or a hard-linked `node_modules` (`iofcert package` refuses to build those; other tools do not).",
    ],
  },
  'package.signature': {
    does: "Verifies the descriptor's Ed25519 signature (over the canonical JSON of the descriptor without `signature`) with the public key it carries, and reports that key's fingerprint and the package's acceptance level. In a certification run the hosts trust the package's own key, so only the signature itself is judged.",
    fails: "`the package is unsigned, but acceptance level PartnerSupported requires an Ed25519 signature`, or `package signature is invalid: the signature does not match the descriptor (key …)` (also for a wrong algorithm or an undecodable key). Required only when the descriptor's `acceptanceLevel` is above `CommunitySupported`; an unsigned `CommunitySupported` package fails it without it counting against the verdict. When it passes, the message and evidence carry `keyFingerprint` and `acceptanceLevel`.",
    causes: [
      "An unsigned build (`iofcert package` without `--key`) of a package that declares `PartnerSupported` or higher.",
      "Any value of the descriptor changed after signing: a version bumped by hand, a file hash updated by a script. Reformatting whitespace does not matter; values do.",
      "A `publicKey` or `value` copied from another package or truncated.",
    ],
  },
  'package.abi': {
    does: "Loads the package's entry in the sandboxed subject process, in a short-lived worker under the filter import rules (bounded to 30 s), and checks its default export: `abiVersion` is 1, `name`, `vendor`, `version`, `class` and `abiVersion` equal the descriptor's, and `open` is a function. A package that failed verification is never loaded, and this check fails with that reason.",
    fails: "`the module does not load: …` with the loader's reason (an import a filter may not use, naming the specifier; a syntax error; an exception at module evaluation; no default export), or the list of mismatches, e.g. `module version \"1.0.1\" differs from the descriptor's \"1.0.0\"`, `abiVersion 2 is not supported (this harness implements ABI version 1)`, `the module has no open() function`. The package is refused.",
    causes: [
      "An import of `node:fs`, `node:worker_threads`, `node:net`, … by the filter or by a bundled dependency (see [what a filter may use](sandbox.md#what-a-filter-may-use)).",
      "A dependency that is not bundled in the package's `node_modules/`.",
      "The version bumped in `descriptor.json` but not in the module (or the reverse).",
      "Module-level code that needs what a filter does not get (environment variables, files) or never finishes (a top-level `await` on something that does not settle).",
      "An entry written as an ES module that loads as CommonJS: a `package.json` in the package with `\"type\": \"commonjs\"` (name the entry `.mjs`, or remove that file).",
    ],
  },
  'package.class-open': {
    does: "Checks that the descriptor's `class` is open to third parties: `replication` or `cache`. Decided by the harness from the descriptor alone.",
    fails: "`class encryption is not open to third parties; the open classes are replication, cache`, with the class and the open classes in the evidence. The package is refused.",
    causes: [
      "A reserved class (`encryption`, `datastoreIoControl`): only the platform's built-in filters have them.",
      "A recognised class that is not certifiable in this profile (`inspection`, `compression`, `dataProvider`, `dataCapture`).",
    ],
  },
  'package.policy-schema': {
    does: "Checks the module's `policySchema`, when it has one: it must compile as JSON Schema (draft 2020-12; unknown keywords are allowed as annotations) and the empty policy `{}` must validate once the schema's defaults are filled in. The resulting default policy is in the evidence. A module without a schema passes (the filter takes no parameters).",
    fails: "`policySchema must be a JSON Schema object`, `policySchema is not a valid JSON Schema: …`, or `the default policy does not validate against policySchema: / must have required property 'site'`. It also fails when the module did not load. The package is refused.",
    causes: [
      "A required property without a `default` (the harness and administrators may apply the filter without parameters).",
      "A default that breaks its own constraint (`default: 1` with `minimum: 2`).",
      "A `$ref` to a schema that is not inside `policySchema` itself.",
    ],
  },

  // ---- ordering ----
  'ordering.chain-position': {
    does: "Puts the filter on one disk with the platform's built-ins (encryption; storage I/O control with a limit it never reaches), the bundled reference filter of the other open class, and harness probe filters of the four recognised classes, which record every I/O they see. Two VMs run a seeded workload (1,000 / 4,000 I/Os at queue depth 8, up to 128 KiB, a 1 MiB hot set) on a 16 MiB region, one with encryption first (the default) and one with `allowCleartextFilters`, and read the region back. It then compares what the probes directly above and below the filter saw.",
    fails: "The message starts with the configuration (`encryption first (the default): …`) and says what broke: an I/O reached the layer below before the filter was given it; a write was passed down with another payload than the one given; an I/O completed above before it completed below; read bytes changed on their way up; an I/O succeeded below but failed above (or the reverse); the filter saw plaintext with encryption first, or ciphertext with encryption after it; or no guest write reached the filter's position at all. The evidence names the I/O (`id`, `op`, `offset`, `length`) and the checksums seen on each side.",
    causes: [
      "Modifying `io.data` of a write in place instead of passing it unchanged (non-transforming classes never change a payload).",
      "Rewriting a read's bytes in `done`.",
      "Turning an error from below into success, or failing an I/O that succeeded below.",
      "A cache that completes a read with bytes that differ from the disk's.",
    ],
  },
  'ordering.sequential-overwrite': {
    does: "Issues dependent writes at queue depth 1 (1,000 / 5,000, mostly 1–16 sectors, up to 64 KiB) into a 1 MiB region, so nearly every write overlaps earlier ones, with a flush after every 100. It then takes a snapshot of the disk (the filters get the `snapshot` event and the image is the quiesced disk) and compares it byte for byte with an oracle, and reads the region back through the filter.",
    fails: "`after N dependent writes at queue depth 1: … differs at offset X: it holds the bytes of write #a, which the guest issued before write #b (the last to cover it)`. The evidence has the offset, the expected and found bytes and both writes.",
    causes: [
      "A write-back cache that writes dirty blocks back out of order, so an older block lands after a newer one.",
      "Coalescing overlapping writes into one and keeping the wrong version of a sector.",
      "Not writing held writes back in the `snapshot` event.",
    ],
  },
  'ordering.read-after-write': {
    does: "Runs read → overwrite → re-read sequences (aligned, partial unaligned, and reads wider than the write) in 8 lanes over a 4 MiB region (1,000 / 5,000 sequences): every read issued after a write completed must return that write's bytes. The region is read back at the end.",
    fails: "A read returned other bytes than the last completed write to that range; the evidence has the I/O, the offset and the expected and found bytes.",
    causes: [
      "A cache that keeps the old block when a write to it passes through, or updates only whole blocks on a partial write.",
      "Serving a read from the cache while an overlapping write is still held by the filter.",
    ],
  },
  'ordering.flush-durability': {
    does: "On a file-backed disk, runs rounds (2 / 6) of a seeded workload (250 / 500 I/Os at queue depth 8, reads, writes and unmaps over 4 MiB), a flush, then more writes with no flush, and cuts the host's power: every other round loses every unflushed write, the others a seeded subset of the unflushed sectors. After the host restarts and the VM powers on, every sector must hold what the completed flush made durable, or one of the later writes to it.",
    fails: "`round r: after a power cut … and a restart, the sector at offset X holds neither what the completed flush made durable nor a later write`. The evidence has the round, the crash seed, how many sectors the power cut lost, the offset and the expected and found bytes.",
    causes: [
      "A filter that completes writes itself (write-back) and lets a flush complete before it has written them below and flushed.",
      "Completing a flush itself without passing it down.",
      "An `open` after the power cut that writes stale data from the sidecar back onto the disk.",
    ],
  },
  'ordering.completion': {
    does: "Inside the VM's worker, next to the filter chain, issues I/O at queue depths 1, 2, 4 … 128 (max(160, 4 × depth) / max(1,000, 16 × depth) I/Os at each) on a healthy drive and records every completion: each I/O must complete exactly once, successfully, within the I/O timeout (2 s).",
    fails: "`at queue depth D an I/O did not complete within the I/O timeout (2000 ms): read at offset …` (with `heldAt` naming the filter that held it), `… never completed, not even with ETIMEDOUT`, `… completed more than once`, or `… failed with EIO on a healthy drive`. The evidence has the I/O and the timings per depth.",
    causes: [
      "A queue that drains only when more I/O arrives: it deadlocks at queue depth 1, or when the guest stops issuing.",
      "A bounded internal queue or semaphore that blocks once the queue depth exceeds it.",
      "A `start` Promise that never settles on some path (an awaited daemon reply that never comes).",
      "`start` or `done` throwing under concurrency (the I/O fails with `EIO`).",
    ],
  },

  // ---- integrity ----
  'integrity.roundtrip': {
    does: "Two VMs on one host, each with a 64 MiB disk under the filter, first exercise the disk's last sector (write, read, unmap, read; a 4 KiB write ending at the last byte), then issue the same seeded I/O — same operations, offsets and lengths, each VM with its own data — 1,000 / 4,000 I/Os at queue depth 8, 512 B to 1 MiB, with reads, unmaps, flushes and I/O at the end of the disk. Every read is checked (a read racing an overlapping write may return, sector by sector, the old or the new bytes), then both whole disks are read back.",
    fails: "A read returned wrong bytes (VM, I/O, offset, expected and found bytes), a read of the last sector was wrong, or a guest I/O failed.",
    causes: [
      "Off-by-one at the end of the disk (`capacity`), or I/O larger than the filter's internal block size split wrongly.",
      "Unmaps completed by the filter, not passed down, or leaving cached data behind: a later read must return zeros.",
      "State keyed by offset alone, shared between disks.",
    ],
  },
  'integrity.guest-buffer': {
    does: "Inside the VM's worker, issues 1,000 / 5,000 I/Os at queue depth 8 (up to 64 KiB, a 1 MiB hot set) and checks that every write's payload is unchanged when it is passed down and when it completes, and that every read the filter passed down reaches the guest with exactly the bytes the disk returned. Reads the filter completes itself are counted, not judged here.",
    fails: "`the filter changed a write's payload before passing it down`, `the guest's write payload was changed by the time the write completed`, or `the filter changed the guest's buffer of a read it passed down`, with the I/O, the offset, the expected and found bytes and the number of violations.",
    causes: [
      "Using `io.data` as a scratch buffer (encrypting, compressing, zero-filling in place).",
      "Writing into a read's buffer in `start` before passing it down, or in `done`.",
    ],
  },
  'integrity.class-contract': {
    does: "For filters of a non-transforming class (every certifiable class): runs 1,000 / 4,000 I/Os, mostly writes and unmaps, at queue depth 8, verifying reads, then compares the quiesced disk over all 64 MiB with the no-filter oracle. Any attempt to replace a payload is reported. Skipped for encryption and compression filters.",
    fails: "`the filter replaced a payload, which only encryption and compression filters may do: …` (the framework's record of the violation, with the I/O), or the quiesced disk differs from the oracle at an offset (expected and found bytes).",
    causes: [
      "Returning `{ kind: 'pass', data }` from a replication or cache filter.",
      "Keeping the filter's own metadata on the guest's disk through `lower` (a journal in the last MiB) instead of the sidecar.",
      "Writing stale cached blocks back over newer data, or not passing unmaps down.",
    ],
  },

  // ---- isolation ----
  'isolation.no-cross-talk': {
    does: "Two VMs on one host, one disk each under the filter, share its daemon. In rounds (44 / 150) both write different data at the same eight ranges of a 4 MiB region at the same time and read back those and earlier ranges; both VMs are power-cycled halfway, and each whole region is verified after the power cycle and at the end.",
    fails: "`vmA read vmB's bytes at offset X of its disk a0 (vmB wrote them at the same offset of its own disk b0)`, or `… bytes it never wrote`, with the I/O, the offset and the expected and found bytes; or an I/O failed.",
    causes: [
      "Daemon or host-store state keyed by offset, or by VM, without the disk id.",
      "A daemon answering a request with another disk's data.",
    ],
  },
  'isolation.disk-fault': {
    does: "Two VMs, A and B, on one host. Faults are injected in the drive under A's filter, one phase each: `EIO` on writes, `ENOSPC` on writes, torn writes (half applied, then `EIO`), `EIO` on reads, and a drive slowed to 300 ms per I/O. During each phase A runs a paced load (400 IOPS, queue depth 4) and, after write phases, a flush with the fault still in place; B runs a paced 4 KiB load (400 IOPS) measured inside its own worker, with windows without faults interleaved for B's baseline. A's guest must get exactly the drive's error — never success, never another error, never `ETIMEDOUT`; a read that succeeds (a cache hit) must return the disk's bytes; the slow drive must fail nothing. B must see no error, and its p99 during the faults must stay within 2 × its baseline p99 (floored at 20 ms); a p99 over that is measured again, up to 3 times, before it counts.",
    fails: "`… VM A's write at offset X failed with EIO instead of the drive's ENOSPC: errors from below must reach the guest unchanged`, `… failed with ETIMEDOUT … — the filter held the I/O (a hang)`, `… VM A's guest was told N of M writes succeeded, and the flush after them too, although the drive failed every write …: the filter turned the error into success`, `VM B's I/O failed with …`, or `… VM B's p99 latency was X ms, above 2 × its baseline p99 …`. The evidence has the phase, the I/O and the measurements of every attempt.",
    causes: [
      "A write-back cache that acknowledges writes and loses the error of the later write-back instead of failing the next flush.",
      "Retrying a failed I/O until the framework's timeout turns it into `ETIMEDOUT`.",
      "Mapping errors (`ENOSPC` reported as `EIO`).",
      "One queue in the daemon for every disk, so that A's failing or slow I/O holds B's.",
    ],
  },
  'isolation.target-fault': {
    does: "Two VMs on one host, each with a replicated disk, write at 250 IOPS (queue depth 4). After a baseline window that measures B's replica lag (from a write's completion to the guest until it arrived at the site), the recovery site is made unreachable for A's disk only, for 10 s / 15 s, while both keep writing. B's guest must see no error, and B's lag p99 during the outage must stay within max(1 s, 2 × its lag without the fault); a write that never arrives within the catch-up bound counts as unbounded lag.",
    fails: "`VM B's write at offset X failed with … while VM A's recovery site was down`, or `while VM A's recovery site was down for N s, VM B's replica lag p99 was X ms (or unbounded …), above max(1000 ms, 2 × Y ms without the fault)`, with B's worst lags and the writes that never arrived.",
    causes: [
      "One shipping queue per host, where a failing write of A's disk blocks B's (head-of-line blocking).",
      "Retry and back-off state shared by all disks of a host.",
      "Failing guest writes when the site cannot be reached.",
    ],
  },
  'isolation.vm-crash': {
    does: "Two VMs on one host. B runs a verified paced 4 KiB load throughout. A writes rounds of 16 non-overlapping writes, each round followed by a flush; during round 3 / 10, once its first write has completed, A's worker is killed with writes in flight. B must see no error and no wrong bytes and stay on; the filter's daemon must still run with no fault recorded; for replication, every write B completed after the crash must reach the site. A then powers on: every 4 KiB block of its region must hold the last write completed before its last completed flush, or a later write — never other bytes — and A must serve I/O again.",
    fails: "`VM B's read at offset X failed with … after VM A's worker was killed`, `the filter's daemon on esx1 did not carry on after VM A's worker was killed: …`, `… writes VM B completed never reached the recovery site …: the filter stopped replicating B`, `after VM A's worker was killed and A powered on again, sector X of its disk holds …`, or A failed to power on (an `OpenFailed` from the filter).",
    causes: [
      "A daemon that throws or stops when an instance's link disappears mid-request.",
      "An `open` that cannot handle the state an unclean end left in the sidecar (and so fails the power-on).",
      "Recovery at `open` that writes stale data over the disk.",
    ],
  },

  // ---- exclusivity ----
  'exclusivity.host-conflict': {
    does: "On a host where the filter is active and a VM does I/O through it, a harness filter of the same class is installed: it must be refused with `FilterClassConflict` naming the installed filter, with the host's filters, daemons and state file unchanged and the VM's I/O unharmed. Then the same with the harness filter installed first and the filter under test second.",
    fails: "`… the host accepted … although … is installed`, `… was refused with <code>, not FilterClassConflict`, `… does not name the installed …`, `… the refused install changed the host's filters` (or daemons, or state file), or `… the running VM's I/O failed while the host handled the second … filter`.",
    causes: [
      "The one-filter-per-class rule is the framework's; with an unmodified harness this check fails when the filter's own I/O breaks while the host refuses the other filter, or when the filter cannot be installed at all.",
    ],
  },
  'exclusivity.policy-conflict': {
    does: "On a host with exclusivity per disk (so both the filter and a harness filter of its class can be installed), a disk runs under a policy naming the filter alone and gets verified I/O. A policy naming both filters of the class is then applied to it, with the VM powered on and powered off: it must be refused with `PolicyClassConflict`, the disk keeping its previous policy and filters. The VM powers on again and the data must verify.",
    fails: "`with the VM powered on: a policy naming two cache filters … was applied to the disk`, `… was refused with <code>, not PolicyClassConflict`, `… the refused policy changed the disk`, or wrong bytes after the refusal.",
    causes: [
      "The policy rule is the framework's; with an unmodified harness this check fails when the filter loses data across the power cycle or breaks while the refused policy is handled.",
    ],
  },
  'exclusivity.coexistence': {
    does: "Builds the fullest chain a disk can have: the built-in encryption (first), the built-in storage I/O control (a limit it never reaches), the filter, and the bundled reference filter of the other open class. Two VMs issue the same seeded I/O with their own data (1,000 / 4,000 I/Os at queue depth 8, up to 64 KiB, a 1 MiB hot set, reads, unmaps, flushes, the last sector), and both whole disks are read back.",
    fails: "A read returned wrong bytes or an I/O failed; the evidence has the VM, the I/O, the offset, the expected and found bytes and the chain.",
    causes: [
      "Assuming the filter sees plaintext: with encryption first it sees ciphertext.",
      "Assuming it is the only filter on the disk (its own metadata kept on the guest's disk through `lower`).",
    ],
  },

  // ---- lifecycle ----
  'lifecycle.install': {
    does: "Installs the package on a three-host cluster set up as a certification run's hosts (acceptance level `CommunitySupported`, trusting the package's key): once from its path and once, on a fresh cluster, from an `http://` URL on loopback. Each time every host must report the filter `INSTALLED` (or `PENDING_REBOOT` until a reboot, when the descriptor asks for one), no host may stay in maintenance mode, the query must show the descriptor's name, vendor, version and class, installing again must change nothing, and a VM under a policy naming the filter must verify its data. Then a copy of the package whose descriptor asks for maintenance mode and a reboot (re-signed with the harness's key) is installed on a cluster where esx3 has a powered-on VM: esx1 and esx2 must be `PENDING_REBOOT` with `VibRequiresHostReboot` and refuse a policy naming the filter until they reboot, esx3 must report `VibCannotPutHostInMaintenanceMode`; once esx3's VM is off, resolving installs and reboots every host and a guest verifies its data.",
    fails: "`install from its path failed on esx2: <issue> (<message>)`, `… expected … INSTALLED on every host …, got …`, `… stayed in maintenance mode …`, `… installing the installed filter again changed …`, or a guest's I/O or data failure, with the per-host outcomes in the evidence.",
    causes: [
      "The framework's lifecycle is judged with your package: on an unmodified harness a failure points at the package — a `daemon()` that throws or takes longer than 30 s (`HostOperationFailed`), a module that fails to load on a host (`VibInvalidFormat`), or a filter that cannot open a disk after a reboot.",
    ],
  },
  'lifecycle.install-failure': {
    does: "Four failure cases, each on a fresh three-host cluster: a URL answering 404 to esx1 only (`CannotAccessAgentVib` naming the URL); a URL nothing listens on (all three hosts; retried once a server listens there); corrupt downloads — bytes flipped for esx2 (`VibInvalidFormat` or `IntegrityMismatch`), one byte of the entry file changed for esx3 (`IntegrityMismatch` naming that file); and a copy that needs maintenance mode on a cluster where esx2 has a powered-on VM (`VibCannotPutHostInMaintenanceMode` naming the VM). Each failed host must be left exactly as it was (state file and files) and not in maintenance mode, the other hosts must install, issues must be recorded for the failed hosts only, and once the cause is removed `resolve` must install the filter everywhere.",
    fails: "The message names the case and the host: `… esx1 should have failed with CannotAccessAgentVib, but reported …`, `… esx3 failed but was changed: a failed operation must leave the host exactly as it was`, `… issues are recorded for …, expected one for each failed host`, or `resolveInstallationErrors failed on …`.",
    causes: [
      "The framework's lifecycle is judged with your package: on an unmodified harness a failure points at the package — its install failing on the healthy hosts, or on retry, for another reason than the injected one.",
    ],
  },
  'lifecycle.upgrade': {
    does: "Installs the `--upgrade-from` package on two hosts, gives each a VM whose disk uses it and lets the old version write, then upgrades to the package under test while both guests keep running verified I/O. Open instances close with `upgrade` and reopen under the new version. The upgrade must run on both hosts; the query must list only the new id, `INSTALLED`; the disks must run the new version with the VMs still on; the new daemon must run and the old one and its files be gone; each disk's sidecar must be the very file the old version wrote, not emptied; every byte must verify, and a replication filter's replica must equal the disk. When the new package asks for maintenance mode to upgrade, a copy without that flag is used (noted in the evidence). Skipped without `--upgrade-from`.",
    fails: "`during the upgrade from … to …: …` (a guest I/O that failed or read wrong bytes), `the upgrade to … did not run on …`, `the upgrade did not keep vm1/vm1-disk0's sidecar: …`, `after the upgrade vm1/vm1-disk0's sidecar is empty: …`, or `the --upgrade-from package cannot be installed, so nothing can be upgraded from it: …`.",
    causes: [
      "The new version not understanding the old version's sidecar and recreating it empty.",
      "`close('upgrade')` treated like detach (state thrown away).",
      "The new package not qualifying: another name, vendor or class, or a version that is not higher (`UpgradeNotApplicable`).",
      "I/O failing while instances close and reopen (a `close` or `open` that throws or exceeds its bound).",
    ],
  },
  'lifecycle.uninstall-in-use': {
    does: "Installs the package on two hosts with disks using it: two of a running VM on esx1, one of a running VM and one of a powered-off VM on esx2, all with verified I/O. Uninstall must be refused on each host with `FilterInUse` naming exactly that host's disks (the powered-off VM's included), leaving the host unchanged, the filter `INSTALLED` and available, its daemon running and the host out of maintenance mode; the guests then keep doing verified I/O.",
    fails: "`uninstall … while disks use it was not refused on …`, `… refused on … with <issue>, not FilterInUse`, `FilterInUse on esx2 names …, but the disks using … there are …`, `the refused uninstall stopped the daemon …`, or a guest's I/O or data failure.",
    causes: [
      "The refusal is the framework's; with an unmodified harness this check fails when the filter's I/O or data breaks before or after the refused uninstall.",
    ],
  },
  'lifecycle.uninstall-clean': {
    does: "Installs the package on one host, runs verified I/O on two disks, removes the policy from both (instances close with `detach`, `detach` runs, sidecars are deleted), then uninstalls (powering the VM off first when the descriptor's `uninstall` asks for maintenance mode). The filter must be gone, the host out of maintenance mode; the daemon's `stop()` must finish within 5 s without error, and one turn later its worker must hold no active resource (timer, socket, handle); every file the install made or the filter wrote on the host must be gone, no sidecar of the filter left in the datastore, and the query must show it on no host.",
    fails: "`the daemon's stop() did not finish within 5000 ms`, `the daemon's stop() failed: …`, `the daemon left N active resource(s) in its worker after stop() returned: 1 × Timeout, …`, `after uninstall N file(s) the install made or the filter wrote are still on the host: …`, with the stop report in the evidence.",
    causes: [
      "A `setInterval` or `setTimeout` of the daemon not cleared in `stop()`.",
      "Replica targets not closed in `stop()`.",
      "A `stop()` that waits for a backlog that never drains, or throws.",
    ],
  },
  'lifecycle.reboot': {
    does: "A VM with two disks under the filter writes (500 / 2,000 I/Os each), then writes a little more without a flush; the host shuts down cleanly (instances close with `host-shutdown`, daemons stop) and restarts from its directory. A sidecar the filter held data in must not be emptied at shutdown and must be unchanged between shutdown and boot; the daemon must start again without a fault; the VM must power on; everything written before the restart — flushed or not — must verify; new I/O must verify; a replication filter's replica must equal the disk once quiesced.",
    fails: "`the filter discarded …'s sidecar when the host shut down …`, `after the reboot the host recorded a fault of …: …`, `after the reboot vm1 could not power on: …`, or wrong bytes after the restart.",
    causes: [
      "`close('host-shutdown')` truncating or deleting the sidecar.",
      "`daemon()` failing when its host store already holds state.",
      "Writes the filter holds (write-back) not written below in `close`: a clean power-off writes back the drive, not the filter.",
    ],
  },
  'lifecycle.crash': {
    does: "A file-backed disk under the filter; a child process runs the host and a seeded workload of batches (48 non-overlapping writes at queue depth 8, each batch followed by a flush) and is killed with `SIGKILL` once batch k (3–5 / 8–10) has completed. The cluster restarts from its directory, replaying the power cut (unflushed writes lost), and the VM powers on: every sector must hold what the last completed flush made durable, or a later write; the filter must reopen and serve new verified I/O on an untouched stretch; a replication filter's replica (kept by the site across the crash) must equal the disk once quiesced.",
    fails: "`after the power cut the filter did not reopen the disk: …`, `after the power cut and a restart, the sector at offset X holds neither what the flush completed after batch b made durable nor a later write`, `after the crash the host recorded a fault of the filter: …`, `the crash workload did not reach batch k within 90 s`, or a replica that differs from the disk.",
    causes: [
      "An `open` that assumes the previous close was clean and throws on the state an unclean end left.",
      "Sidecar state relied upon without `sync()`.",
      "A replication filter that does not resynchronise the regions that may differ after an unclean end.",
      "Acknowledging a flush before held writes are durable below.",
    ],
  },
  'lifecycle.attach-detach': {
    does: "On a VM that stays powered on (an 8 MiB disk), applies and removes the policy 200 times (also with `--quick`); each cycle attaches and opens the filter, writes and reads back one 4 KiB block through it, then closes (`detach`) and detaches it. After 20 warm-up cycles the VM's worker is read every 2 cycles after a full GC: heap used + external + array buffers, and its live handles by type. The lowest reading of the last 60 cycles may exceed the lowest of the first 60 by at most 8 MiB, and no type of handle may be more numerous throughout the last 60 cycles than it ever was in the first 60. The VM must stay on and the disk hold what was written.",
    fails: "`the VM worker's memory … grew by X MiB between the first and the last 60 of 180 apply/remove cycles (~Y KiB per cycle), above the 8 MiB bound: something is kept per attach or open`, or `the VM worker's live handles grew over 180 apply/remove cycles (Timeout: at most 1 early on, at least 40 at the end): a timer or handle is left per attach or open`, with every reading in the evidence.",
    causes: [
      "Module-scope maps or caches keyed by disk or instance that are never cleared in `close`/`detach` (the module is evaluated once for the VM's life and outlives its instances).",
      "Timers started in `open` or `attach` and not cleared in `close`.",
    ],
  },

  // ---- events ----
  'events.snapshot': {
    does: "Dependent writes at queue depth 8 (1,200 / 5,000) each put a generation-stamped 4 KiB block into one of 512 slots; while they run, snapshots are taken (3 / 8): guest I/O is held, the filters get `snapshot`, the drive is written back and the image captured. Each image must be crash-consistent: every slot holds one whole write's block, no older than the last write to it completed to the guest before the snapshot began, and none issued after it ended. The disk must end with every slot's last write.",
    fails: "`snapshot n is not crash-consistent: slot s (offset X) holds generation g, but generation h, written there and completed to the guest at +t ms — before the snapshot began at +u ms — is missing: the filter acknowledged a write it had not made durable below it`, `… holds bytes no single write put there (torn or mixed data)`, or `… holds generation g …, a write issued after the snapshot ended`.",
    causes: [
      "A write-back filter that does not write its held writes below in its `snapshot` handler.",
      "Completing a write before passing it down and writing it later.",
    ],
  },
  'events.stun': {
    does: "After some verified I/O, stuns the disk 2 / 4 times for 300 ms / 1 s: guest I/O is held and drained, the filters get `stun`, and from then until unstun the drive records any I/O of the filter's own that reaches it. 32 guest I/Os issued during the stun must wait and complete after unstun with the right data; verified I/O follows each cycle.",
    fails: "`while the disk was stunned (cycle c, 300 ms), N I/Os of the filter's own reached the drive — first a write at offset X: a stunned disk must see no I/O (stop timers and background work on 'stun', resume on 'unstun')`, or a held guest I/O that failed or returned wrong bytes.",
    causes: [
      "Background work driven by timers (a write-back flusher, a replication resync or seeding copy, a scrubber) that keeps issuing `lower` I/O after `stun`.",
      "Ignoring the `stun`/`unstun` events.",
    ],
  },
  'events.migration': {
    does: "On a two-host cluster, a VM's disk under the filter gets verified I/O and a flush, then two power cycles on the same host show whether the sidecar is stable when nothing is written. The VM moves to esx2 while quiesced (instances close with `migrate` and reopen in a new worker on esx2 with the same sidecar), then back to esx1 under I/O. The sidecar must survive each move (byte for byte when it was stable across a power cycle, otherwise present and not emptied), the data must verify on each host, and no `open` or `close` may fault.",
    fails: "`the filter's sidecar for disk … did not survive the move from esx1 to esx2: it was deleted` (or `emptied`, or `its bytes changed at offset …`), `the filter faulted while closing or reopening across the moves: …`, or wrong bytes on the new host.",
    causes: [
      "`close('migrate')` treated like detach (clearing the sidecar).",
      "State kept only in module scope or in one host's daemon or host store, which the target host does not have.",
    ],
  },

  // ---- replication ----
  'replication.write-order': {
    does: "One VM with a replicated disk (`rpoSeconds` 2, or the schema's minimum). The recovery site records every write's arrival. The guest issues dependent writes at queue depth 1 (400 / 2,000 over 1 MiB), then writes at queue depth 16 that keep overwriting one another (1,200 / 6,000 over 2 MiB; never two overlapping in flight), and flushes. The arrivals are then replayed in order against the guest's write log: after each one, the replica must be crash-consistent — if any part of a write W is at the site, every write that completed to the guest before W was issued is there too, or overwritten by later writes.",
    fails: "`the replica was not crash-consistent after arrival #k at +t ms: write #a (… bytes at offset …, issued at +u ms) was applied, but write #b (…), which completed to the guest at +v ms — before #a was issued — was not (it never arrived)`, `… received bytes no guest write put there …`, or `no write reached the recovery site within … ms after the guest's flush`.",
    causes: [
      "Several site writes of one disk in flight at once, or retries, that apply out of order.",
      "Shipping writes in another order than they completed to the guest (for example one queue per region or per size, or posting from `start` for some writes and from `done` for others).",
      "Batching or coalescing that reorders writes, or re-sends an old write after newer ones.",
    ],
  },
  'replication.consistency': {
    does: "Three rounds of writes at queue depth 8 (1,200 / 5,000 in all, up to 64 KiB over 16 MiB), each followed by a flush; once the guest has quiesced, the replica must equal the disk within the catch-up bound (3 × `rpoSeconds` + 3 s).",
    fails: "`N ms after the guest quiesced (flush, no more writes), the replica still differs from the disk at offset X, last written by write #n (…)`, with the expected and found bytes and the writes that never arrived.",
    causes: [
      "Writes dropped (a full backlog discarded without a resynchronisation).",
      "The last writes kept in a batch that is sent only when more writes come.",
    ],
  },
  'replication.rpo': {
    does: "The standard replication load on one VM: 4 KiB random writes over the whole disk at queue depth 8, paced at 2,000 IOPS, for 3 s / 15 s, with `rpoSeconds` 2 (or the schema's minimum). A write's lag runs from its completion to the guest until the site's `write()` for it resolved; a write that never arrives counts as infinite. The p99 lag must be ≤ `rpoSeconds`. The lag over time is charted in the report.",
    fails: "`replica lag p99 is X ms, above the policy's RPO of 2 s (N writes at M IOPS; p50 … ms)` or `… unbounded (more than 1% of the writes never reached the site)`, with the worst lags in the evidence.",
    causes: [
      "Shipping on a timer as long as the RPO (every write then waits up to `rpoSeconds` plus the shipping time).",
      "Ignoring the policy's `rpoSeconds` (using a default of your own).",
      "One awaited site write per guest write, which cannot keep up with 2,000 IOPS (coalesce adjacent writes).",
    ],
  },
  'replication.target-outage': {
    does: "Writes at 500 IOPS (queue depth 8, over 8 MiB) for 1 s / 3 s, then the recovery site is down for the disk for 5 s (its calls reject promptly with `ENODEV`), then back for 1 s / 3 s. No guest write may fail; once the guest has quiesced the replica must catch up within the bound and equal the disk, and the replay of every arrival across the outage must be crash-consistent.",
    fails: "`a guest write failed with … while the recovery site was down (+t ms into the outage): an unreachable site must not fail the guest's I/O`, `the replica did not catch up after the site returned: … it still differs from the disk at offset X`, or a write-order failure as in `replication.write-order`.",
    causes: [
      "Failing guest writes (or holding them until `ETIMEDOUT`) while the site is down.",
      "Dropping writes the site refused instead of retrying them.",
      "Retrying a refused write after newer writes were sent.",
    ],
  },

  // ---- cache ----
  'cache.coherence': {
    does: "With `cacheMiB` 16: a block-aligned hot set (1,000 / 5,000 I/Os in whole 4 KiB blocks at queue depth 16 over 256 KiB, many reads racing overlapping writes and unmaps), the same unaligned (500 / 2,000 I/Os over a 512 KiB hot set), and read → overwrite/unmap → re-read sequences over blocks the cache holds. A read racing an overlapping write or unmap may return, sector by sector, the old or the new bytes; any other read must return what the last completed write or unmap left (zeros for an unmap).",
    fails: "`… a read returned wrong bytes at offset X (neither the old nor the new data of a concurrent write)` or a read after a completed write/unmap with stale bytes, with the I/O, the offset and the expected and found bytes.",
    causes: [
      "Filling the cache with a read's data after a concurrent write to the same block has completed (the fill installs stale data).",
      "Not invalidating cached blocks on unmap.",
      "Partial-block writes applied to the disk but not to the cached block (or the reverse).",
    ],
  },
  'cache.bounded': {
    does: "Two VMs on one host run the same seeded workload, one without the filter and one with it (`cacheMiB` 16 when the schema declares `cacheMiB`, otherwise 16 MiB is assumed): fill the 64 MiB disk, read it all, then 1,000 / 5,000 hot/cold reads (4–64 KiB, 70 % in an 8 MiB hot set). Each VM worker's memory — heap used + external + array buffers, after a full GC — is read before and after. The filtered VM's growth beyond the baseline's must be ≤ 1.25 × `cacheMiB` + 4 MiB.",
    fails: "`with cacheMiB 16 the filter grew the VM worker's memory by X MiB more than the same workload without it; the bound is 1.25 × 16 + 4 = 24 MiB`, with heap, external and array-buffer growth of both sides in the evidence.",
    causes: [
      "Ignoring `cacheMiB` (a fixed or unbounded cache).",
      "Bounding the number of entries, not their bytes, or not counting per-entry overhead.",
      "Keeping copies (a buffer per hit, a write-back buffer beside the cache) outside the bound.",
    ],
  },
  'cache.benefit': {
    does: "Two VMs, without and with the filter; a 4 MiB hot set is written, the drive under both gets 1 ms of extra latency per read, and the hot set is read twice to warm up. Then 1,000 / 4,000 random 4 KiB reads of the hot set at queue depth 4 run on both sides in interleaved halves. A filter that completed none of them itself is not a read cache: the check is skipped. Otherwise the filtered side must take at most 0.9 × the baseline's time.",
    fails: "`hot-set reads were not faster with the filter: X ms against Y ms without it (at most 0.9 × that counts as faster), for N 4 KiB reads of a 4 MiB hot set (the filter completed M of them itself)`. Not required: it never makes a run `not-ready`.",
    causes: [
      "Admitting blocks to the cache only after several misses, so the warm-up leaves it cold.",
      "A hit path that is slower than the drive (a daemon round trip, a copy through the sidecar, a timer).",
    ],
  },

  // ---- nemesis ----
  'nemesis.schedules': {
    does: "Runs 3 / 16 seeded schedules, each on a fresh two-host cluster with two or three VMs whose 4 MiB file-backed disks carry the filter (`rpoSeconds` 2, `cacheMiB` 2, when the schema declares them). Each step runs guest I/O on every powered-on VM (writes, reads, unmaps — now and then of a whole MiB — and flushes, up to 48 I/Os each at queue depth 8) and takes one transition at a seeded point in it, or quiesced, back to back with the step before: a power-off or power-on, a migration to the other host, a clean host restart, a host power cut (unflushed writes lost, daemons killed) and restart, a power-off followed at once by its host's power cut, the VM's worker dying, the recovery site down or back (replication filters), a stun, a snapshot, or the policy taken off and applied again (a whole MiB trimmed meanwhile, now and then). Every schedule holds the hazards — a close right before a power cut, a power cut mid-I/O, a migration followed by writes and a close and open of another kind, and, for replication filters, a close while the site is down followed by the loss of the daemon that held the backlog — each followed by a checkpoint (the guests quiesce and flush). After every step each running VM's disk is read back — in 4 KiB reads right after an open, so a cache serves what it holds — and judged sector by sector against a model of the guest's writes: a sector holds the last write there that completed; after a power cut, what the last completed flush or clean close covered there, or a write since; a write whose outcome the guest never learnt (its VM went down around it) may or may not be there. Every guest read is judged the same way when it completes. Guest I/O may fail only when its own VM goes down around it; a failed `open`, `close` or event call of the filter fails the check, and so does a snapshot taken under I/O that lacks a write completed before it began. The sub-seeds come from the check's seed, so a `--quick` run's schedules are the first three of a full run's.",
    fails: "`schedule i of n (sub-seed S), during step k of m (<the step>): <what broke>` (or `after step k`), e.g. `after vm1 powered on: a read of vm1-disk0 at offset X returned write #a (…, issued in step j) — older than write #b (…, completed at +t ms), which the disk must hold there`, `… returned zeros (never written) — not write #b …`, `… the sector's bytes changed without a write (one of the two reads was served from stale state)`, `a guest write of N bytes at offset X on vm2-disk0 failed with EIO while its recovery site was down`, or `the filter failed close() on vm1's vm1-disk0: …`. The evidence has the invariant, the step, the sub-seed, the VMs' placement, the whole schedule with every step's parameters, the steps as they ran with their start and end times (ms from the schedule's start), the sector's last writes, the schedules that passed before it and — in a full run — the schedule shrunk to the fewest steps that still fail the same way. The check's rerun line (`--grep '^nemesis\\.schedules$' --seed N`, with `--quick` when the run had it) replays the same schedules.",
    causes: [
      "State saved at one kind of close and trusted at an open that follows another kind (a warm cache carried by a migration and loaded again after a power-off), after the disk changed.",
      "Writes completed to the guest but held in memory, not written back at `close('migrate')` or `close('host-shutdown')`, or not covered by a completed flush.",
      "A cache kept or filled across a reopen without checking that it still matches the disk.",
      "Failing guest I/O while the recovery site is down, during a stun or around a snapshot.",
    ],
  },
  'nemesis.replica': {
    does: "Schedules like those of `nemesis.schedules` (3 / 16, other sub-seeds) run on a replication filter with its replicas judged too. The recovery site records, for every write it takes, which guest write each sector carries. Write order is judged in epochs: an epoch of a disk begins where its replica was seen equal to the disk (a checkpoint, or the start), and after every step every arrival of the epoch is replayed — if part of a guest write W is at the site, every write that completed to the guest before W was issued must be wholly there (or overwritten there by a later write), and nothing older than what the epoch began with may land again. A filter that lost track of what the site holds is entitled to copy regions again, which is no prefix of anything: from a power cut of the host its disk ran on (or whose daemon may have held its backlog), its VM's worker dying, a close while its site was down, or its policy taken off and applied again, until the next checkpoint, the epoch's order is not judged. At every checkpoint (the guests quiesced and flushed), the replica of each disk whose VM is on and whose site is up must equal the disk within 3 × `rpoSeconds` + 3 s — also after a power cut that followed a close, and after the site came back from an outage during which a VM closed and a host lost power or restarted.",
    fails: "`schedule i of n (sub-seed S), after step k of m (checkpoint: …): X ms after the guests quiesced, with its site up, vm1-disk0's replica still differs from the disk at offset Y (last written by write #a …); since it last equalled the disk: step j: closed (power-off) while its site was down; step j: esx1 lost power …`, or `… vm2-disk0's replica was not a prefix of the write order at +t ms (arrival #n, during step j): write #a (…) was applied, but write #b (…), which completed to the guest before the first was issued, was not`, or `… went back in time …`. The evidence is that of `nemesis.schedules`, with the arrival, the writes involved and the events since the replica last equalled the disk.",
    causes: [
      "Marking the replica complete at close (a clean flag in the sidecar) while the daemon still holds writes of the disk: a power cut right after the close loses them, and the next open never copies them again.",
      "Leaving the backlog of a disk closed during an outage to the daemon's memory and marking the replica complete: a daemon restart or power cut before the site returns forgets it.",
      "Taking the replica of a newly protected disk for empty (skipping chunks of zeros) when the site still holds a replica from an earlier protection of the disk.",
      "A daemon that keeps shipping a disk's old backlog from the host it left after the disk reopened elsewhere and copied its regions.",
    ],
  },

  // ---- performance ----
  'performance.iops': {
    does: "On the standard device (file-backed images), keeps three sides warm — no filter, the bundled reference filter of the class (`cache` for cache filters, `cdp` for replication filters), and the filter — waits until each has finished the work it starts on its own once built (a replication filter's first copy of its disk to the site; at most 60 s), and then measures each standard workload (4 KiB random read, 4 KiB random write, 4 KiB 70/30 random mix, 64 KiB sequential write) at queue depth 32 in rounds: each round runs one short slice of every side, in a random order, on the same offsets. A slice lasts until its side's background work (a daemon still shipping) has drained, and that time counts. At scheduled looks the filter/reference IOPS ratio is estimated with a 95 % interval (over all looks): a workload passes when the interval lies wholly at or above 0.8, fails when it lies wholly below, and passes marked `marginal` when it still straddles the bound once the sampling budget is spent. Runs alone, after every other check.",
    fails: "`below the IOPS bound: 4k-randwrite: 0.62 of the reference, 95 % interval [0.58, 0.66] in 14 slices, wholly below the bound 0.8`, or I/O errors during a slice. The evidence has each workload's slices, drain times, spreads and a note on the machine's noise.",
    causes: [
      "Work per I/O on the hot path: a Promise or `await` in `start` for I/O that simply passes (return `PASS` synchronously), allocations or payload copies, a log line per I/O.",
      "A daemon message per write without batching, or a daemon that cannot ship at saturation (its drain time counts against the filter).",
      "A global lock that serialises all I/O.",
    ],
  },
  'performance.latency': {
    does: "Two sides, no filter and the filter, with 2 VMs each on the standard device, each first left to finish the work it starts on its own once built (a replication filter's first copy); each standard workload is paced at 2,000 IOPS per VM and measured in rounds, each round one slice of each side in a random order. The quantity judged is, round by round, the filter slice's p99 minus the limit its no-filter slice sets (that slice's p99 × 1.2 + 50 µs); its Hodges–Lehmann estimate and exact signed-rank 95 % interval (over all looks) decide: a workload passes when the interval lies wholly below 0, fails when wholly above, and passes marked `marginal` when it still straddles 0 once the budget is spent. The report also gives each side's p99 over all its slices (merged histograms) with a bootstrap interval. Runs alone, after every other check.",
    fails: "`4k-randread: p99 X µs against the limit Y µs (baseline p99 Z µs × 1.2 + 50 µs); excess per round +N µs, 95 % interval [a, b] µs in n slices, wholly over the limit`, or I/O errors during a slice.",
    causes: [
      "A daemon request awaited in the I/O path (a round trip between threads per I/O).",
      "Heavy synchronous work per I/O in `start` or `done` (hashing or copying every payload).",
      "Holding writes for a batch timer before passing them down.",
    ],
  },
  'performance.scaling': {
    does: "Runs the filter with 1, 2 and 4 VMs (4 KiB 70/30 random mix, queue depth 32, on the standard device), in slices in a random order (3 / 5 per VM count), and reports the median aggregate IOPS of each count: the curve is shown in the report. Not required and not judged against a bound.",
    fails: "Only when I/O fails during a slice: `N I/O errors with 4 VMs (…)`. Not required: it never makes a run `not-ready`.",
    causes: [
      "Errors when several VMs share the filter's daemon (state not kept per disk).",
    ],
  },
})

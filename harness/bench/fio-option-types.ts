/** How fio reads an option's value (from the "type:" line of `fio --cmdhelp=<name>`). */
export type FioOptionType =
  /** A bare word or 0/1 (`time_based`, `norandommap`). */
  | 'flag'
  /** 0 or 1; a bare word is an error in fio. */
  | 'bool'
  | 'int'
  | 'str'
  /** A byte count with an optional k/m/g/t/p suffix. */
  | 'size'
  /** A byte count, or a percentage of the device (`size`, `offset`). */
  | 'sizePercent'
  /** A duration with an optional us/ms/s/m/h/d suffix. */
  | 'time'
  /** One to three `lo-hi` ranges, for reads, writes and trims. */
  | 'range'
  /** Floating point values separated by ':'. */
  | 'floatList'

/** One fio job option as fio itself documents it. */
export interface FioOptionInfo {
  readonly name: string
  readonly aliases: readonly string[]
  readonly type: FioOptionType
  readonly help: string
  readonly defaultValue?: string
  /** The accepted words, for options that take one of a fixed set. */
  readonly values?: readonly string[]
}

/** An option that only exists once a job's `ioengine` is one of `engines`. */
export interface FioEngineOptionInfo extends FioOptionInfo {
  readonly engines: readonly string[]
}

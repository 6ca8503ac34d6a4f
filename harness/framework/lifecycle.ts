/** The install lifecycle's operations, kept at this path for its importers: see `lifecycle/index.ts`. */
export * from './lifecycle/operations.js'

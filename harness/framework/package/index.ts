/**
 * Filter packages: descriptor, build, keys, verification and module loading.
 */
export * from './descriptor.js'
export { canonicalJson } from '../../base/canonical-json.js'
export { fingerprint, generateKeyPair, readPrivateKey, signDescriptor, verifyDescriptorSignature, type KeyPairFiles, type SignatureCheck } from './keys.js'
export { buildPackage, describeSize, type BuildOptions, type BuiltPackage, type PackageSize } from './build.js'
export { MANIFEST_FILE, selectFiles, type BundledPackage, type FileSelection } from './bundle.js'
export { PACKAGE_REFUSED, preflightPackage } from './preflight.js'
export { DESCRIPTOR_FILE, pathProblem, type RefusedEntry } from './paths.js'
export * from './verify.js'
export {
  DEFAULT_PACKAGE_LIMITS, packageLimits, readTarStream,
  type PackageLimitName, type PackageLimits, type TarBodySink, type TarEntry, type TarReadOptions, type TarReadResult, type TarVisitor,
} from './tarball.js'
export * from './load.js'

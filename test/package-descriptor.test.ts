import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isIofError } from '../harness/framework/errors.js'
import {
  ACCEPTANCE_LEVELS, ALL_CLASSES, DESCRIPTOR_SCHEMA, OPEN_CLASSES, RESERVED_CLASSES,
  canonicalJson, classOpen, filterId, levelAtLeast, validateDescriptor,
} from '../harness/framework/package/index.js'
import { metadata } from './package-fixtures.js'

const HASH = 'a'.repeat(64)
const full = (overrides: Record<string, unknown> = {}) => ({ ...metadata(), files: { 'filter.js': HASH }, ...overrides })

function errorsOf(json: unknown): readonly string[] {
  const v = validateDescriptor(json)
  assert.equal(v.ok, false, 'expected the descriptor to be refused')
  return v.errors
}

describe('descriptor schema', () => {
  it('accepts the descriptor of the spec', () => {
    const v = validateDescriptor(full())
    assert.equal(v.ok, true, JSON.stringify(v.errors))
  })

  it('names the field and what was expected in each error', () => {
    const bad = full({ install: { maintenanceMode: false, reboot: 'no' }, name: 'Bad_Name', releaseDate: '2026-13-40' })
    delete (bad as Record<string, unknown>).vendor
    const errors = errorsOf(bad)
    assert.ok(errors.includes('/install/reboot: must be boolean'), errors.join('\n'))
    assert.ok(errors.includes('/vendor: is required'), errors.join('\n'))
    assert.ok(errors.some(e => e.startsWith('/name: must match ')), errors.join('\n'))
    assert.ok(errors.some(e => e.startsWith('/releaseDate: must be a date')), errors.join('\n'))
  })

  it('reports unknown fields, bad enums, bad hashes and a bad signature by their paths', () => {
    const errors = errorsOf(full({
      colour: 'red',
      acceptanceLevel: 'Trusted',
      files: { 'filter.js': 'not-a-hash', 'descriptor.json': HASH },
      signature: { algorithm: 'rsa', publicKey: 'AAAA', value: 'AAAA' },
      entry: 'filter.ts',
      version: '1.2',
    }))
    for (const field of ['/colour', '/acceptanceLevel', '/files/filter.js', '/files/descriptor.json', '/signature/algorithm', '/entry', '/version']) {
      assert.ok(errors.some(e => e.startsWith(`${field}: `)), `no error names ${field}:\n${errors.join('\n')}`)
    }
    assert.ok(errors.some(e => e.startsWith('/acceptanceLevel: must be one of "VMwareCertified"')))
  })

  it('accepts every one of the eight classes: openness is a separate rule', () => {
    for (const cls of ALL_CLASSES) assert.equal(validateDescriptor(full({ class: cls })).ok, true, cls)
    assert.equal(validateDescriptor(full({ class: 'antivirus' })).ok, false)
  })

  it('publishes the same classes and levels the code uses', () => {
    const props = (DESCRIPTOR_SCHEMA as { properties: Record<string, { enum?: unknown[] }> }).properties
    assert.deepEqual(props.class?.enum, [...ALL_CLASSES])
    assert.deepEqual(props.acceptanceLevel?.enum, [...ACCEPTANCE_LEVELS])
  })

  it('accepts .mjs entries and entries in subdirectories', () => {
    assert.equal(validateDescriptor(full({ entry: 'dist/filter.mjs', files: { 'dist/filter.mjs': HASH } })).ok, true)
  })

  it('judges only the metadata when asked, ignoring files and signature', () => {
    assert.equal(validateDescriptor(metadata()).ok, false)
    assert.equal(validateDescriptor(metadata({ files: 'junk', signature: 7 }), { metadataOnly: true }).ok, true)
    assert.deepEqual(validateDescriptor(metadata({ abiVersion: '1' }), { metadataOnly: true }).errors, ['/abiVersion: must be integer'])
  })
})

describe('classes, levels and ids', () => {
  it('opens exactly replication and cache; reserves encryption and datastoreIoControl', () => {
    assert.deepEqual([...OPEN_CLASSES], ['replication', 'cache'])
    assert.deepEqual([...RESERVED_CLASSES], ['encryption', 'datastoreIoControl'])
    assert.equal(ALL_CLASSES.length, 8)
    classOpen('replication')
    classOpen('cache')
  })

  it('refuses a closed class with an error naming it and the open classes', () => {
    for (const cls of ['encryption', 'inspection']) {
      assert.throws(() => classOpen(cls), (err: unknown) => {
        assert.ok(isIofError(err, 'ClassNotOpen'))
        assert.match(err.message, new RegExp(`\\b${cls}\\b`))
        assert.match(err.message, /replication, cache/)
        return true
      })
    }
  })

  it('orders acceptance levels most trusted first', () => {
    assert.equal(levelAtLeast('VMwareCertified', 'PartnerSupported'), true)
    assert.equal(levelAtLeast('PartnerSupported', 'PartnerSupported'), true)
    assert.equal(levelAtLeast('CommunitySupported', 'PartnerSupported'), false)
    assert.equal(levelAtLeast('VMwareAccepted', 'VMwareCertified'), false)
  })

  it('forms the filter id from vendor, name and version', () => {
    assert.equal(filterId({ vendor: 'ACME', name: 'cdp', version: '1.2.0' }), 'ACME_cdp_1.2.0')
  })
})

describe('canonicalJson', () => {
  it('sorts keys at every depth and leaves no whitespace', () => {
    assert.equal(canonicalJson({ b: [{ z: 1, a: 'x y' }], a: { d: true, c: null } }), '{"a":{"c":null,"d":true},"b":[{"a":"x y","z":1}]}')
  })

  it('sorts integer-like keys as strings, which object rebuilding cannot do', () => {
    assert.equal(canonicalJson({ 2: 'b', 10: 'a', x: 0 }), '{"10":"a","2":"b","x":0}')
  })

  it('gives the same text whatever the insertion order, and skips undefined members', () => {
    assert.equal(canonicalJson({ a: 1, b: undefined, c: 2 }), canonicalJson({ c: 2, a: 1 }))
  })

  it('refuses values JSON cannot hold', () => {
    assert.throws(() => canonicalJson({ a: Number.NaN }), TypeError)
    assert.throws(() => canonicalJson({ a: 1n }), TypeError)
  })
})

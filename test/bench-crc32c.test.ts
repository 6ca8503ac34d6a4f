import { test } from 'node:test'
import assert from 'node:assert/strict'
import { crc32c } from '../harness/bench/crc32c.js'

test('crc32c matches the standard check value and known vectors', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283)
  assert.equal(crc32c(new Uint8Array(0)), 0)
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa, 'RFC 3720 B.4: 32 bytes of zeros')
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, 'RFC 3720 B.4: 32 bytes of ones')
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e, 'RFC 3720 B.4: incrementing')
})

test('crc32c can be continued over pieces and sub-ranges', () => {
  const data = Uint8Array.from({ length: 4099 }, (_, i) => (i * 31) & 0xff)
  const whole = crc32c(data)
  for (const cut of [0, 1, 7, 8, 9, 1000, 4098]) assert.equal(crc32c(data, crc32c(data, 0, 0, cut), cut), whole, `cut at ${cut}`)
  assert.equal(crc32c(data, 0, 10, 20), crc32c(data.subarray(10, 20)))
})

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withCluster, testFilter } from './helpers/cluster.js'

test('a line a filter logs as its disk closes is never lost at power-off, however much it logged before', async () => {
  await withCluster({}, async c => {
    await c.installModule(testFilter('close-logger'))
    c.createPolicy({ name: 'p', rules: [{ filter: 'close-logger@CACHE' }] })
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: 1 << 20, policy: 'p' })
    const rounds = 8
    for (let i = 0; i < rounds; i++) {
      await vm.powerOn()
      // more I/O than the logger's per-second bound: the filter has used up its lines when it closes
      for (let k = 0; k < 300; k++) assert.ok((await vm.submit('d', { op: 'write', offset: k * 512, length: 4096, data: new Uint8Array(4096).fill(i) })).ok)
      // the log line goes out in the very turn the close returns: nothing else runs after it
      await vm.powerOff()
      const closes = vm.logs.filter(l => l.msg.startsWith('closed (power-off)'))
      assert.equal(closes.length, i + 1, `power-off ${i + 1}: ${closes.length} close lines in ${JSON.stringify(vm.logs.map(l => l.msg))}`)
      assert.match(closes[i]!.msg, /300×4096/)
    }
  })
})

'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { setup } = require('../testing/setup')
const { promisify } = require('../testing/fake-wx')

/** counted wraps wx.getWeRunData as a decrypt getter that counts its calls. */
function counted (wx) {
  const getWeRunData = promisify(wx.getWeRunData)
  const getter = () => { getter.calls++; return getWeRunData() }
  getter.calls = 0
  return getter
}

test('decrypt: logs in, sends only the contract fields, resolves with data', async (t) => {
  const { client, wx, stub } = await setup(t)
  const getter = counted(wx)
  const data = await client.decrypt(getter)
  assert.equal(data.stepInfoList[0].step, 4321)
  assert.equal(data.watermark.appid, 'wxstubappid')
  assert.equal(getter.calls, 1)
  assert.equal(wx.calls.login, 1)
  const sent = stub.log.find(e => e.path === '/decrypt')
  assert.deepEqual(Object.keys(sent.body).sort(), ['encryptedData', 'iv'], 'errMsg and cloudID of the wx result are not sent')
  assert.equal(sent.authorization, 'Bearer ' + client.getSkey())
})

test('decrypt: rawData and signature are passed on; a plain value getter works', async (t) => {
  const { client, wechat, stub } = await setup(t)
  await client.login()
  const d = Object.assign(wechat.encrypt('alice'), { rawData: '{"nickName":"a"}', signature: 'abc' })
  await client.decrypt(() => d)
  const sent = stub.log.find(e => e.path === '/decrypt')
  assert.equal(sent.body.rawData, '{"nickName":"a"}')
  assert.equal(sent.body.signature, 'abc')
})

test('decrypt: 409 stale_session_key re-logs in, calls the getter again, retries once', async (t) => {
  const { client, wx, wechat, stub } = await setup(t)
  await client.login()
  const oldSkey = client.getSkey()
  // Something else called wx.login: WeChat's session_key moved on, the server's did not.
  wechat.rotate('alice')
  const getter = counted(wx)

  const data = await client.decrypt(getter)

  assert.equal(data.stepInfoList[0].step, 4321)
  assert.equal(getter.calls, 2, 'fresh data fetched after the re-login')
  assert.equal(wx.calls.login, 2, 'one re-login')
  assert.deepEqual(stub.log.filter(e => e.path === '/decrypt').map(e => e.status), [409, 200])
  assert.notEqual(client.getSkey(), oldSkey, 'the re-login replaced the skey')
})

test('decrypt: a second 409 rejects stale_session_key, never loops', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.respond('/decrypt', () => stub.error(409, 'stale_session_key', 'cannot decrypt'))
  const getter = counted(wx)
  await assert.rejects(client.decrypt(getter), { code: 'stale_session_key', status: 409, message: 'cannot decrypt' })
  assert.equal(getter.calls, 2)
  assert.equal(stub.count('/decrypt'), 2)
  assert.equal(wx.calls.login, 2)
})

test('decrypt: 401 session_expired re-logs in, fetches fresh data, retries once', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.expireAll()
  const getter = counted(wx)
  const data = await client.decrypt(getter)
  assert.equal(data.stepInfoList[0].step, 4321)
  assert.equal(getter.calls, 2)
  assert.equal(wx.calls.login, 2)
  assert.deepEqual(stub.log.filter(e => e.path === '/decrypt').map(e => e.code || e.status), ['session_expired', 200])
})

test('decrypt: two concurrent decrypts hitting a stale key share one re-login', async (t) => {
  const { client, wx, wechat } = await setup(t)
  await client.login()
  wechat.rotate('alice')
  const g1 = counted(wx)
  const g2 = counted(wx)
  const [a, b] = await Promise.all([client.decrypt(g1), client.decrypt(g2)])
  assert.equal(a.stepInfoList[0].step, 4321)
  assert.equal(b.stepInfoList[0].step, 4321)
  assert.equal(wx.calls.login, 2, 'one shared re-login')
  assert.equal(g1.calls + g2.calls, 4)
})

test('decrypt: 400 invalid_request is not retried', async (t) => {
  const { client, stub } = await setup(t)
  let calls = 0
  await assert.rejects(client.decrypt(() => { calls++; return { encryptedData: '***', iv: 'x' } }), { code: 'invalid_request', status: 400 })
  assert.equal(calls, 1)
  assert.equal(stub.count('/decrypt'), 1)
})

test('decrypt: the getter\'s own failure rejects unchanged, nothing is sent', async (t) => {
  const { client, wx, stub } = await setup(t)
  wx.werunDenied = true
  await assert.rejects(client.decrypt(promisify(wx.getWeRunData)), { errMsg: 'getWeRunData:fail auth deny' })
  assert.equal(stub.count('/decrypt'), 0)
  const boom = new Error('boom')
  await assert.rejects(client.decrypt(() => { throw boom }), boom)
})

test('decrypt: a getter result without encryptedData and iv rejects TypeError', async (t) => {
  const { client, stub } = await setup(t)
  await assert.rejects(client.decrypt(() => ({ cloudID: 'x' })), TypeError)
  await assert.rejects(client.decrypt('not a function'), TypeError)
  assert.equal(stub.count('/decrypt'), 0)
})

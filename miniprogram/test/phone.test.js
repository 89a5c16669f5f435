'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { setup } = require('../testing/setup')

/** agreed is the getPhoneNumber button's event when the user agreed. */
function agreed (wechat, phone) {
  return { type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code: wechat.issuePhoneCode('alice', phone) } }
}

test('getPhoneNumber: logs in, POST /phonenumber {code} with the skey, resolves with data', async (t) => {
  const { client, wx, wechat, stub } = await setup(t)
  const e = agreed(wechat, '13912345678')
  const phone = await client.getPhoneNumber(e)
  assert.deepEqual(phone, { phoneNumber: '13912345678', purePhoneNumber: '13912345678', countryCode: '86', watermark: { appid: 'wxstubappid', timestamp: 1700000000 } })
  assert.equal(wx.calls.login, 1)
  const sent = stub.log.find(e => e.path === '/phonenumber')
  assert.equal(sent.method, 'POST')
  assert.deepEqual(sent.body, { code: e.detail.code })
  assert.equal(sent.authorization, 'Bearer ' + client.getSkey())
})

test('getPhoneNumber: a user who declined rejects phone_denied, nothing is sent', async (t) => {
  const { client, wx, stub } = await setup(t)
  const declined = [
    { detail: { errMsg: 'getPhoneNumber:fail user deny' } },
    { detail: { errMsg: 'getPhoneNumber:fail:user cancel', errno: 1400001 } },
    { detail: { errMsg: 'getPhoneNumber:fail no permission' } },
    { detail: {} }
  ]
  for (const e of declined) {
    const err = await client.getPhoneNumber(e).then(() => null, x => x)
    assert.ok(err instanceof Error)
    assert.equal(err.name, 'WxSessionError')
    assert.equal(err.code, 'phone_denied')
    if (e.detail.errMsg) {
      assert.equal(err.message, e.detail.errMsg)
      assert.equal(err.errMsg, e.detail.errMsg)
    }
    assert.equal(err.errno, e.detail.errno)
  }
  assert.equal(stub.log.length, 0, 'no request, not even a login')
  assert.equal(wx.calls.login, 0)
  await assert.rejects(client.getPhoneNumber(), TypeError)
})

test('getPhoneNumber: 401 session_expired logs in once and retries once with the same code', async (t) => {
  const { client, wx, wechat, stub } = await setup(t)
  await client.login()
  stub.expireAll()
  const e = agreed(wechat)
  const phone = await client.getPhoneNumber(e)
  assert.equal(phone.phoneNumber, '13800138000')
  assert.equal(wx.calls.login, 2)
  assert.deepEqual(stub.log.filter(x => x.path === '/phonenumber').map(x => x.code || x.status), ['session_expired', 200])
  assert.ok(stub.log.filter(x => x.path === '/phonenumber').every(x => x.body.code === e.detail.code))
})

test('getPhoneNumber: a refusal after the call\'s own login is not followed by another login', async (t) => {
  const { client, wx, wechat, stub } = await setup(t)
  stub.respond('/phonenumber', () => stub.error(401, 'session_expired', 'always'))
  await assert.rejects(client.getPhoneNumber(agreed(wechat)), { code: 'session_expired' })
  assert.equal(wx.calls.login, 1)
  assert.equal(stub.count('/phonenumber'), 1)
})

test('getPhoneNumber: 400 invalid_phone_code and 429 rate_limited reject with their code, no retry', async (t) => {
  const { client, wx, wechat, stub } = await setup(t)
  await client.login()
  const e = agreed(wechat)
  await client.getPhoneNumber(e)
  // The code is single-use: the server refuses it the second time.
  await assert.rejects(client.getPhoneNumber(e), { code: 'invalid_phone_code', status: 400 })
  stub.respond('/phonenumber', () => stub.error(429, 'rate_limited', 'slow down', { 'Retry-After': '60' }))
  await assert.rejects(client.getPhoneNumber(agreed(wechat)), { code: 'rate_limited', status: 429, retryAfter: 60 })
  assert.equal(wx.calls.login, 1)
  assert.equal(stub.count('/phonenumber'), 3)
})

test('getPhoneNumber: the code is also found where Skyline has been seen to put it (e.detail.detail.code, e.code)', async (t) => {
  const { client, wechat, stub } = await setup(t)
  await client.getPhoneNumber({ detail: { detail: { code: wechat.issuePhoneCode('alice'), errMsg: 'getPhoneNumber:ok' } } })
  await client.getPhoneNumber({ code: wechat.issuePhoneCode('alice'), errMsg: 'getPhoneNumber:ok' })
  assert.deepEqual(stub.log.filter(x => x.path === '/phonenumber').map(x => x.status), [200, 200])
})

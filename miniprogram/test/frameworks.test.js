'use strict'

// createClient({ wx: Taro }) and createClient({ wx: uni }): the client with
// API objects shaped as Taro's and uni-app's are on WeChat (testing/fake-wx.js
// taroOf, uniOf). Taro's login/checkSession/request call fail and also reject
// the promise they return; the client must leave no unhandled rejection.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { createWeChat, createFakeWx, taroOf, uniOf } = require('../testing/fake-wx')
const { startStub } = require('../testing/stub-server')
const { createClient, closedURL } = require('../testing/setup')

/** unhandled collects the unhandled rejections raised while the test runs. */
function unhandled (t) {
  const seen = []
  const onRejection = (reason) => seen.push(reason)
  process.on('unhandledRejection', onRejection)
  t.after(() => process.off('unhandledRejection', onRejection))
  return async () => {
    // Unhandled rejections are reported after the microtask queue drains.
    await new Promise(resolve => setImmediate(resolve))
    await new Promise(resolve => setTimeout(resolve, 20))
    return seen
  }
}

for (const [name, wrap] of [['Taro', taroOf], ['uni', uniOf]]) {
  test(name + ': the whole flow works with createClient({ wx: ' + name + ' })', async (t) => {
    const check = unhandled(t)
    const wechat = createWeChat()
    const stub = await startStub({ wechat })
    t.after(() => stub.close())
    const api = wrap(createFakeWx({ wechat, user: 'alice', appId: 'wxframeworkapp' }))
    const client = createClient({ baseURL: stub.url, wx: api })

    const s = await client.ensureSession()
    assert.equal(s.openid, 'openid-alice')
    const echo = await client.request({ url: '/echo', method: 'POST', data: { a: 1 } })
    assert.deepEqual(echo.body, { a: 1 })
    stub.expireAll()
    await client.request({ url: '/echo' })
    assert.equal(api.calls.login, 2, 'one re-login')
    const data = await client.decrypt(() => wechat.encrypt('alice'))
    assert.equal(data.stepInfoList[0].step, 4321)
    const phone = await client.getPhoneNumber({ detail: { code: wechat.issuePhoneCode('alice') } })
    assert.equal(phone.countryCode, '86')
    await client.logout()
    assert.equal(client.getSkey(), null)
    assert.ok(stub.log.every(e => e.appid === 'wxframeworkapp'), 'X-WX-AppID through ' + name + '.getAccountInfoSync')
    assert.deepEqual(await check(), [])
  })

  test(name + ': failures reject the client\'s promise once and leave no unhandled rejection', async (t) => {
    const check = unhandled(t)
    const wechat = createWeChat()
    const stub = await startStub({ wechat })
    t.after(() => stub.close())
    const fake = createFakeWx({ wechat, user: 'alice' })
    const api = wrap(fake)

    // wx.login fails.
    fake.failLogin = 'login:fail offline'
    const client = createClient({ baseURL: stub.url, wx: api })
    await assert.rejects(client.login(), { code: 'login_failed', message: 'login:fail offline' })
    fake.failLogin = null

    // wx.checkSession fails: ensureSession logs in again.
    await client.login()
    fake.sessionValid = false
    await client.ensureSession()
    assert.equal(fake.calls.login, 3)

    // wx.request fails (nothing listens there).
    const offline = createClient({ baseURL: await closedURL(), wx: api })
    await assert.rejects(offline.request({ url: '/echo' }), { code: 'network_error' })
    await assert.rejects(offline.login(), { code: 'login_failed' })

    assert.deepEqual(await check(), [], 'no unhandled rejection')
  })
}

'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { setup, closedURL, createClient } = require('../testing/setup')
const { createWeChat, createFakeWx } = require('../testing/fake-wx')

test('createClient refuses a missing wx or baseURL', () => {
  const wx = createFakeWx({ wechat: createWeChat() })
  assert.throws(() => createClient({ baseURL: 'https://api.example.com' }), TypeError)
  assert.throws(() => createClient({ wx }), TypeError)
  assert.throws(() => createClient({ wx, baseURL: 'api.example.com' }), TypeError)
})

test('first login: wx.login, POST /login with the code, session stored, body resolved', async (t) => {
  const { client, wx, stub } = await setup(t)
  assert.equal(client.getSkey(), null)

  const body = await client.login()

  assert.equal(wx.calls.login, 1, 'wx.login calls')
  assert.equal(stub.count('/login'), 1, 'POST /login calls')
  assert.match(stub.log[0].body.code, /^code-1-alice$/, 'the code wx.login gave is sent')
  assert.equal(stub.log[0].authorization, undefined, 'no skey on /login')
  assert.equal(typeof body.skey, 'string')
  assert.equal(body.openid, 'openid-alice')
  assert.equal(body.expires_in, 86400)

  const stored = wx.getStorageSync('wxsession:session')
  assert.equal(stored.skey, body.skey)
  assert.equal(stored.openid, 'openid-alice')
  assert.ok(Math.abs(stored.expiresAt - (Date.now() + 86400 * 1000)) < 5000, 'expiresAt derived from expires_in')
  assert.equal(client.getSkey(), body.skey)
  assert.deepEqual(client.getSession(), { skey: body.skey, openid: 'openid-alice', expiresAt: stored.expiresAt })
})

test('login: concurrent calls share one wx.login and one POST /login', async (t) => {
  const { client, wx, stub } = await setup(t)
  const bodies = await Promise.all([client.login(), client.login(), client.login()])
  assert.equal(wx.calls.login, 1)
  assert.equal(stub.count('/login'), 1)
  assert.equal(bodies[0].skey, bodies[2].skey)
  // Once settled, login() logs in afresh.
  const again = await client.login()
  assert.equal(wx.calls.login, 2)
  assert.notEqual(again.skey, bodies[0].skey)
  assert.equal(client.getSkey(), again.skey)
})

test('login: storageKey option chooses where the session is kept', async (t) => {
  const { client, wx } = await setup(t, { client: { storageKey: 'my:key' } })
  const body = await client.login()
  assert.equal(wx.getStorageSync('my:key').skey, body.skey)
  assert.equal(wx.getStorageSync('wxsession:session'), '')
})

test('wx.login failure rejects login_failed and never calls the server', async (t) => {
  const { client, wx, stub } = await setup(t)
  wx.failLogin = 'login:fail system error'
  await assert.rejects(client.login(), { name: 'WxSessionError', code: 'login_failed', message: 'login:fail system error' })
  assert.equal(stub.log.length, 0)
  // A request without a session needs that login, so it fails the same way.
  await assert.rejects(client.request({ url: '/echo' }), { code: 'login_failed' })
  assert.equal(stub.log.length, 0)
  assert.equal(wx.calls.login, 2)
})

test('wx.login success without a code rejects login_failed', async (t) => {
  const { stub } = await setup(t)
  const wx = createFakeWx({ codeSource: () => '' })
  const client = createClient({ baseURL: stub.url, wx })
  await assert.rejects(client.login(), { code: 'login_failed' })
  assert.equal(stub.log.length, 0)
})

test('login: 401 invalid_code rejects invalid_code once, without looping', async (t) => {
  const { stub } = await setup(t)
  const wx = createFakeWx({ codeSource: () => 'not-a-real-code' })
  const client = createClient({ baseURL: stub.url, wx })
  await assert.rejects(client.request({ url: '/echo' }), {
    code: 'invalid_code',
    status: 401,
    message: 'the code is invalid or was already used'
  })
  assert.equal(wx.calls.login, 1)
  assert.equal(stub.count('/login'), 1)
  assert.equal(stub.count('/echo'), 0)
  assert.equal(client.getSkey(), null)
})

test('login: server errors reject with their code and status', async (t) => {
  const cases = [
    { status: 403, code: 'code_blocked' },
    { status: 502, code: 'wechat_unavailable' },
    { status: 503, code: 'store_unavailable' },
    { status: 429, code: 'rate_limited', headers: { 'Retry-After': '7' }, retryAfter: 7 }
  ]
  for (const c of cases) {
    await t.test(c.code, async (t) => {
      const { client, stub, wx } = await setup(t)
      stub.respond('/login', () => stub.error(c.status, c.code, 'nope', c.headers))
      const want = { code: c.code, status: c.status, message: 'nope' }
      if (c.retryAfter) want.retryAfter = c.retryAfter
      await assert.rejects(client.login(), want)
      assert.equal(wx.calls.login, 1)
      assert.equal(client.getSkey(), null)
    })
  }
})

test('login: server unreachable rejects login_failed, the network_error as cause', async () => {
  const wx = createFakeWx({ wechat: createWeChat() })
  const client = createClient({ baseURL: await closedURL(), wx })
  const err = await client.login().then(() => null, e => e)
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'login_failed')
  assert.equal(err.cause.code, 'network_error')
  assert.match(err.message, /ECONNREFUSED/)
})

test('login: a 200 without an skey rejects login_failed', async (t) => {
  const { client, stub } = await setup(t)
  stub.respond('/login', () => ({ status: 200, body: { openid: 'x' } }))
  await assert.rejects(client.login(), { code: 'login_failed', status: 200 })
  assert.equal(client.getSkey(), null)
})

test('login: a refused login does not stick: the next login() runs wx.login again and succeeds', async (t) => {
  const refusals = [
    { name: 'rate_limited', status: 429, code: 'rate_limited', headers: { 'Retry-After': '1' } },
    { name: 'invalid_code', status: 401, code: 'invalid_code' },
    { name: 'code_blocked', status: 403, code: 'code_blocked' },
    { name: 'wechat_unavailable', status: 502, code: 'wechat_unavailable' },
    { name: 'store_unavailable', status: 503, code: 'store_unavailable' },
    { name: '200 without skey', status: 200, code: 'login_failed', body: { openid: 'openid-alice' } }
  ]
  for (const r of refusals) {
    await t.test(r.name, async (t) => {
      const { client, wx, stub } = await setup(t)
      let refused = false
      stub.respond('/login', () => {
        if (refused) return undefined // the contract's answer from now on
        refused = true
        return r.body ? { status: r.status, body: r.body } : stub.error(r.status, r.code, 'refused', r.headers)
      })
      await assert.rejects(client.login(), { code: r.code, status: r.status })
      assert.equal(wx.calls.login, 1)

      const body = await client.login()
      assert.equal(wx.calls.login, 2, 'wx.login ran again')
      assert.equal(stub.count('/login'), 2)
      assert.equal(client.getSkey(), body.skey)
      // And every other entry point works again too.
      const echo = await client.request({ url: '/echo' })
      assert.equal(echo.openid, 'openid-alice')
      assert.equal(wx.calls.login, 2)
    })
  }
})

test('login: a refused login does not stick for request(), ensureSession() and decrypt() either', async (t) => {
  const { client, wx, stub } = await setup(t)
  let refusals = 3
  stub.respond('/login', () => refusals-- > 0 ? stub.error(503, 'store_unavailable', 'down') : undefined)
  await assert.rejects(client.request({ url: '/echo' }), { code: 'store_unavailable' })
  await assert.rejects(client.ensureSession(), { code: 'store_unavailable' })
  await assert.rejects(client.decrypt(() => ({ encryptedData: 'x', iv: 'y' })), { code: 'store_unavailable' })
  assert.equal(wx.calls.login, 3, 'each call ran its own wx.login')
  const s = await client.ensureSession()
  assert.equal(s.skey, client.getSkey())
  assert.equal(wx.calls.login, 4)
})

test('login: a call that joins a login in flight that fails rejects with it and starts no other', async (t) => {
  const { client, wx, stub } = await setup(t)
  stub.respond('/login', () => stub.error(502, 'wechat_unavailable', 'down'))
  const results = await Promise.allSettled([client.login(), client.request({ url: '/echo' }), client.ensureSession(), client.getPhoneNumber({ detail: { code: 'c' } })])
  assert.deepEqual(results.map(r => r.status), ['rejected', 'rejected', 'rejected', 'rejected'])
  assert.ok(results.every(r => r.reason.code === 'wechat_unavailable'))
  assert.equal(wx.calls.login, 1, 'one shared login, not repeated')
  assert.equal(stub.count('/echo') + stub.count('/phonenumber'), 0)
})

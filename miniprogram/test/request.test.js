'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { setup, closedURL } = require('../testing/setup')
const { HANG } = require('../testing/stub-server')

test('request: logs in first when no session, sends the skey, resolves with the body', async (t) => {
  const { client, wx, stub } = await setup(t)
  const body = await client.request({ url: '/echo' })
  assert.equal(wx.calls.login, 1)
  assert.deepEqual(stub.log.map(e => e.path), ['/login', '/echo'])
  assert.equal(stub.log[1].authorization, 'Bearer ' + client.getSkey())
  assert.equal(body.openid, 'openid-alice')
  assert.equal(body.method, 'GET')
  // The session is reused: no second login.
  await client.request({ url: '/echo' })
  assert.equal(wx.calls.login, 1)
})

test('request: concurrent first requests wait for one login', async (t) => {
  const { client, wx, stub } = await setup(t)
  const bodies = await Promise.all([1, 2, 3].map(() => client.request({ url: '/echo' })))
  assert.equal(wx.calls.login, 1)
  assert.equal(stub.count('/login'), 1)
  assert.equal(bodies.length, 3)
})

test('request: passes wx.request options through', async (t) => {
  const { client, stub } = await setup(t)
  await client.login()
  const skey = client.getSkey()

  const got = await client.request({ url: 'echo', data: { page: 2 }, header: { 'X-App': 'demo', authorization: 'Bearer forged' } })
  assert.equal(got.path, '/echo', 'relative url without a slash')
  assert.deepEqual(got.query, { page: '2' }, 'GET data as query string')
  assert.equal(got.headers['x-app'], 'demo', 'caller headers kept')
  assert.equal(got.headers.authorization, 'Bearer ' + skey, 'the client owns Authorization')

  const posted = await client.request({ url: '/echo', method: 'POST', data: { item: 'tea', qty: 1 } })
  assert.equal(posted.method, 'POST')
  assert.deepEqual(posted.body, { item: 'tea', qty: 1 })

  const abs = await client.request({ url: stub.url + '/echo?x=1', method: 'PUT' })
  assert.equal(abs.method, 'PUT')
  assert.deepEqual(abs.query, { x: '1' })
})

test('request: five concurrent requests on an expired session share exactly one wx.login, all succeed', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  const oldSkey = client.getSkey()
  stub.expireAll()
  // Answer the first refusals at different times, as a real server would.
  let n = 0
  stub.respond('/echo', (ctx) => {
    if (ctx.headers.authorization === 'Bearer ' + oldSkey) return new Promise(resolve => setTimeout(resolve, 3 * n++))
  })

  const bodies = await Promise.all([0, 1, 2, 3, 4].map(i => client.request({ url: '/echo', data: { i } })))

  assert.equal(wx.calls.login, 2, 'one login at start, one shared re-login')
  assert.equal(stub.count('/login'), 2)
  assert.equal(stub.count('/echo'), 10, 'each request sent twice: refused, then retried')
  const refused = stub.log.filter(e => e.path === '/echo' && e.status === 401)
  assert.equal(refused.length, 5)
  assert.ok(refused.every(e => e.code === 'session_expired'))
  assert.deepEqual(bodies.map(b => b.query.i), ['0', '1', '2', '3', '4'])
  assert.notEqual(client.getSkey(), oldSkey)
  assert.ok(bodies.every(b => b.headers.authorization === 'Bearer ' + client.getSkey()))
})

test('request: 401 session_required also triggers one re-login and a retry', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  let first = true
  stub.respond('/echo', () => {
    if (first) { first = false; return stub.error(401, 'session_required', 'no skey') }
  })
  const body = await client.request({ url: '/echo' })
  assert.equal(body.openid, 'openid-alice')
  assert.equal(wx.calls.login, 2)
  assert.equal(stub.count('/echo'), 2)
})

test('request: a retry refused again rejects session_expired, never loops', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.respond('/echo', () => stub.error(401, 'session_expired', 'always expired'))
  await assert.rejects(client.request({ url: '/echo' }), { code: 'session_expired', status: 401, message: 'always expired' })
  assert.equal(wx.calls.login, 2, 'one re-login only')
  assert.equal(stub.count('/echo'), 2, 'one retry only')
})

test('request: errors that are not session errors reject with their code, no re-login', async (t) => {
  const cases = [
    { status: 400, code: 'invalid_request' },
    { status: 401, code: 'invalid_code' },
    { status: 403, code: 'code_blocked' },
    { status: 404, code: 'not_found' },
    { status: 405, code: 'method_not_allowed' },
    { status: 409, code: 'stale_session_key' },
    { status: 413, code: 'payload_too_large' },
    { status: 500, code: 'internal' }
  ]
  for (const c of cases) {
    await t.test(c.code, async (t) => {
      const { client, wx, stub } = await setup(t)
      await client.login()
      const skey = client.getSkey()
      stub.respond('/echo', () => stub.error(c.status, c.code, 'msg for ' + c.code))
      const err = await client.request({ url: '/echo' }).then(() => null, e => e)
      assert.ok(err instanceof Error, 'rejects with an Error')
      assert.equal(err.code, c.code)
      assert.equal(err.status, c.status)
      assert.equal(err.message, 'msg for ' + c.code)
      assert.deepEqual(err.data, { error: c.code, message: 'msg for ' + c.code })
      assert.equal(wx.calls.login, 1, 'no re-login')
      assert.equal(stub.count('/echo'), 1, 'no retry')
      assert.equal(client.getSkey(), skey, 'session kept')
    })
  }
})

test('request: the real 404 of an unknown route rejects not_found', async (t) => {
  const { client } = await setup(t)
  await assert.rejects(client.request({ url: '/nope' }), { code: 'not_found', status: 404 })
})

test('request: 429 rejects rate_limited with retryAfter from Retry-After', async (t) => {
  const { client, stub } = await setup(t)
  stub.respond('/echo', () => stub.error(429, 'rate_limited', 'slow down', { 'Retry-After': '3' }))
  await assert.rejects(client.request({ url: '/echo' }), { code: 'rate_limited', status: 429, retryAfter: 3 })
})

test('request: an error body that is not the contract\'s rejects http_error', async (t) => {
  const { client, stub } = await setup(t)
  stub.respond('/echo', () => ({ status: 502, body: '<html>Bad Gateway</html>' }))
  await assert.rejects(client.request({ url: '/echo' }), { code: 'http_error', status: 502, message: 'HTTP 502', data: '<html>Bad Gateway</html>' })
})

test('request: 2xx bodies of any kind resolve as they came', async (t) => {
  const { client, stub } = await setup(t)
  stub.respond('/echo', () => ({ status: 201, body: 'plain text' }))
  assert.equal(await client.request({ url: '/echo', method: 'POST' }), 'plain text')
  stub.respond('/echo', () => ({ status: 204 }))
  assert.equal(await client.request({ url: '/echo', method: 'DELETE' }), '')
})

test('request: network failure rejects network_error', async (t) => {
  const { client, wx } = await setup(t)
  await client.login()
  const dead = await closedURL()
  const err = await client.request({ url: dead + '/echo' }).then(() => null, e => e)
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'network_error')
  assert.equal(err.status, undefined)
  assert.match(err.errMsg, /^request:fail/)
  assert.equal(wx.calls.login, 1, 'a network error is not a session error')
})

test('request: a timeout rejects network_error', async (t) => {
  const { client, stub } = await setup(t, { client: { timeout: 200 } })
  await client.login()
  stub.respond('/echo', () => HANG)
  const started = Date.now()
  await assert.rejects(client.request({ url: '/echo' }), { code: 'network_error', errMsg: 'request:fail timeout' })
  assert.ok(Date.now() - started < 2000)
  // A per-request timeout overrides the client's.
  const started2 = Date.now()
  await assert.rejects(client.request({ url: '/echo', timeout: 50 }), { code: 'network_error' })
  assert.ok(Date.now() - started2 < 190)
})

test('request: a re-login that fails rejects with the login\'s error, and the dead skey is forgotten', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.expireAll()
  wx.failLogin = 'login:fail network down'
  await assert.rejects(client.request({ url: '/echo' }), { code: 'login_failed' })
  assert.equal(client.getSkey(), null, 'the refused skey is not kept')
  assert.equal(stub.count('/echo'), 1)
  // Next time the request logs in first instead of sending the dead skey.
  wx.failLogin = null
  const body = await client.request({ url: '/echo' })
  assert.equal(body.openid, 'openid-alice')
  assert.equal(stub.count('/echo'), 2)
})

test('request: needs options.url', async (t) => {
  const { client } = await setup(t)
  await assert.rejects(client.request({}), TypeError)
})

test('request: an API Gateway authorizer denial (403 Forbidden) counts as an expired session: one re-login, one retry', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  const oldSkey = client.getSkey()
  // The app's own route sits behind the validate authorizer: the gateway
  // answers for it when the authorizer refuses the skey.
  stub.respond('/echo', (ctx) => {
    if (ctx.headers.authorization === 'Bearer ' + oldSkey) return { status: 403, body: { message: 'Forbidden' } }
  })
  const body = await client.request({ url: '/echo' })
  assert.equal(body.openid, 'openid-alice')
  assert.equal(wx.calls.login, 2)
  assert.notEqual(client.getSkey(), oldSkey)
})

test('request: a 403 that is not the gateway denying the skey is not retried', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.respond('/echo', () => stub.error(403, 'code_blocked', 'no'))
  await assert.rejects(client.request({ url: '/echo' }), (err) => err.code === 'code_blocked' && err.status === 403)
  assert.equal(wx.calls.login, 1)
})

test('request: a gateway denial that persists after the re-login rejects as session_expired, without looping', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.respond('/echo', () => ({ status: 403, body: { message: 'Forbidden' } }))
  await assert.rejects(client.request({ url: '/echo' }), (err) => err.code === 'session_expired' && err.status === 403)
  assert.equal(wx.calls.login, 2)
  assert.equal(stub.count('/echo'), 2)
})

test('request: at most one login per call when the skey keeps being refused (an authorizer that denies everything)', async (t) => {
  const denials = [
    { name: 'gateway 403 Forbidden', answer: () => ({ status: 403, body: { message: 'Forbidden' } }) },
    { name: '401 session_expired', answer: (stub) => stub.error(401, 'session_expired', 'always expired') },
    { name: '401 session_required', answer: (stub) => stub.error(401, 'session_required', 'never a session') }
  ]
  for (const d of denials) {
    await t.test(d.name + ', no session yet: the login the call made is the only one', async (t) => {
      const { client, wx, stub } = await setup(t)
      stub.respond('/echo', () => d.answer(stub))
      await assert.rejects(client.request({ url: '/echo' }), (err) => err.code === 'session_expired' || err.code === 'session_required')
      assert.equal(wx.calls.login, 1, 'one login, not two')
      assert.equal(stub.count('/echo'), 1, 'no retry with an skey just made')
      // Later calls are refused the same way, each with at most one login: no loop.
      for (let i = 0; i < 3; i++) {
        const logins = wx.calls.login
        await assert.rejects(client.request({ url: '/echo' }))
        assert.ok(wx.calls.login - logins <= 1, 'call ' + i + ': ' + (wx.calls.login - logins) + ' logins')
      }
    })
    await t.test(d.name + ', stored session: one re-login, one retry', async (t) => {
      const { client, wx, stub } = await setup(t)
      await client.login()
      stub.respond('/echo', () => d.answer(stub))
      await assert.rejects(client.request({ url: '/echo' }))
      assert.equal(wx.calls.login, 2, 'one re-login')
      assert.equal(stub.count('/echo'), 2, 'one retry')
    })
  }
})

test('request: a request that joins a login in flight and is refused does not log in again', async (t) => {
  const { client, wx, stub } = await setup(t)
  stub.respond('/echo', () => ({ status: 403, body: { message: 'Forbidden' } }))
  const launching = client.ensureSession()
  await assert.rejects(client.request({ url: '/echo' }), { code: 'session_expired', status: 403 })
  await launching
  assert.equal(wx.calls.login, 1)
  assert.equal(stub.count('/echo'), 1)
})

test('decrypt: at most one login per call: no session and 409 stale_session_key every time', async (t) => {
  const { client, wx, stub } = await setup(t)
  stub.respond('/decrypt', () => stub.error(409, 'stale_session_key', 'cannot decrypt'))
  let calls = 0
  await assert.rejects(client.decrypt(() => { calls++; return { encryptedData: 'e', iv: 'i' } }), { code: 'stale_session_key', status: 409 })
  assert.equal(wx.calls.login, 1)
  assert.equal(calls, 1)
  assert.equal(stub.count('/decrypt'), 1)
})

test('request: a re-login refused by the server rejects with its code and is not repeated', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.expireAll()
  stub.respond('/login', () => stub.error(429, 'rate_limited', 'slow down', { 'Retry-After': '2' }))
  await assert.rejects(client.request({ url: '/echo' }), { code: 'rate_limited', retryAfter: 2 })
  assert.equal(wx.calls.login, 2, 'the first login and one re-login')
  assert.equal(stub.count('/login'), 2)
  assert.equal(stub.count('/echo'), 1)
})

test('request: responseType arraybuffer: 2xx bodies resolve as ArrayBuffer, error bodies are decoded (UTF-8 JSON)', async (t) => {
  const { client, wx, stub } = await setup(t)
  const first = await client.request({ url: '/echo', responseType: 'arraybuffer' })
  assert.equal(Object.prototype.toString.call(first), '[object ArrayBuffer]')
  assert.equal(JSON.parse(Buffer.from(first).toString('utf8')).openid, 'openid-alice')

  // 401 session_expired arrives as bytes and is recognised: one re-login, one retry.
  const oldSkey = client.getSkey()
  stub.expireAll()
  const again = await client.request({ url: '/echo', responseType: 'arraybuffer' })
  assert.equal(JSON.parse(Buffer.from(again).toString('utf8')).headers.authorization, 'Bearer ' + client.getSkey())
  assert.notEqual(client.getSkey(), oldSkey)
  assert.equal(wx.calls.login, 2)

  // The gateway's denial too.
  const denied = client.getSkey()
  stub.respond('/echo', (ctx) => ctx.headers.authorization === 'Bearer ' + denied ? { status: 403, body: { message: 'Forbidden' } } : undefined)
  await client.request({ url: '/echo', responseType: 'arraybuffer' })
  assert.equal(wx.calls.login, 3)

  // Other errors keep their code, message (multi-byte UTF-8 included) and body.
  const message = '请稍后再试 — 太频繁了 🐢'
  stub.respond('/echo', () => stub.error(429, 'rate_limited', message, { 'Retry-After': '5' }))
  await assert.rejects(client.request({ url: '/echo', responseType: 'arraybuffer' }), {
    code: 'rate_limited', status: 429, message, retryAfter: 5, data: { error: 'rate_limited', message }
  })
  // A non-JSON error body comes through as its text.
  stub.respond('/echo', () => ({ status: 502, body: '<html>Bad Gateway</html>' }))
  await assert.rejects(client.request({ url: '/echo', responseType: 'arraybuffer' }), { code: 'http_error', status: 502, data: '<html>Bad Gateway</html>' })
})

test('request: X-WX-AppID from wx.getAccountInfoSync on every request, login included', async (t) => {
  const { stub, wechat } = await setup(t)
  const { createFakeWx } = require('../testing/fake-wx')
  const { createClient } = require('../testing/setup')
  const wx = createFakeWx({ wechat, appId: 'wx0123456789abcdef' })
  const client = createClient({ baseURL: stub.url, wx })
  await client.request({ url: '/echo' })
  await client.request({ url: '/echo', header: { 'x-wx-appid': 'wxchosenbycaller' } })
  await client.validate()
  await client.decrypt(() => wechat.encrypt('alice'))
  await client.getPhoneNumber({ detail: { code: wechat.issuePhoneCode('alice'), errMsg: 'getPhoneNumber:ok' } })
  await client.logout()
  assert.deepEqual(stub.log.map(e => e.path + ' ' + e.appid), [
    '/login wx0123456789abcdef',
    '/echo wx0123456789abcdef',
    '/echo wxchosenbycaller',
    '/validate wx0123456789abcdef',
    '/decrypt wx0123456789abcdef',
    '/phonenumber wx0123456789abcdef',
    '/logout wx0123456789abcdef'
  ])
})

test('request: without wx.getAccountInfoSync no X-WX-AppID is sent', async (t) => {
  const { client, stub } = await setup(t)
  await client.request({ url: '/echo' })
  assert.deepEqual(stub.log.map(e => e.appid), [undefined, undefined])
})

test('request: responseType arraybuffer: malformed UTF-8 in an error body decodes with U+FFFD, the code still read', async (t) => {
  const { client, stub } = await setup(t)
  await client.login()
  const bytes = Buffer.concat([
    Buffer.from('{"error":"internal","message":"a'),
    Buffer.from([0xff, 0xc3, 0x28, 0xe2, 0x82, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80]), // bad lead, bad continuation, truncated, surrogate, then a valid 😀
    Buffer.from('b"}')
  ])
  stub.respond('/echo', () => ({ status: 500, body: bytes, headers: { 'Content-Type': 'application/json' } }))
  const err = await client.request({ url: '/echo', responseType: 'arraybuffer' }).then(() => null, e => e)
  assert.equal(err.code, 'internal')
  assert.equal(err.status, 500)
  assert.equal(err.message, 'a\ufffd\ufffd(\ufffd\ufffd😀b')
})

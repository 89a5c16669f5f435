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

'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { setup, closedURL, createClient } = require('../testing/setup')

test('ensureSession: no stored session logs in', async (t) => {
  const { client, wx } = await setup(t)
  const s = await client.ensureSession()
  assert.equal(wx.calls.login, 1)
  assert.equal(s.skey, client.getSkey())
  assert.equal(s.openid, 'openid-alice')
  assert.equal(typeof s.expiresAt, 'number')
})

test('ensureSession: a stored session is kept while wx.checkSession succeeds', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  const skey = client.getSkey()
  // The app restarts: a new client over the same storage.
  const relaunched = createClient({ baseURL: stub.url, wx })
  const requestsBefore = stub.log.length
  const s = await relaunched.ensureSession()
  assert.equal(s.skey, skey)
  assert.equal(wx.calls.login, 1, 'no new wx.login')
  assert.equal(wx.calls.checkSession, 1)
  assert.equal(stub.log.length, requestsBefore, 'no request to the server')
})

test('ensureSession: wx.checkSession failing logs in again', async (t) => {
  const { client, wx } = await setup(t)
  await client.login()
  const skey = client.getSkey()
  wx.sessionValid = false
  const s = await client.ensureSession()
  assert.equal(wx.calls.login, 2)
  assert.notEqual(s.skey, skey)
  assert.equal(client.getSkey(), s.skey)
})

test('ensureSession: a session past its known expiry is checked with the server and kept when it is alive (sessions slide)', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  const stored = wx.getStorageSync('wxsession:session')
  wx.setStorageSync('wxsession:session', Object.assign({}, stored, { expiresAt: Date.now() - 1000 }))
  const s = await client.ensureSession()
  assert.equal(wx.calls.login, 1, 'no new login')
  assert.equal(s.skey, stored.skey)
  assert.ok(s.expiresAt > Date.now(), 'the expiry the server answered is recorded')
  assert.equal(stub.count('/validate'), 1)
})

test('ensureSession: a session past its known expiry that the server refuses logs in again', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  const stored = wx.getStorageSync('wxsession:session')
  wx.setStorageSync('wxsession:session', Object.assign({}, stored, { expiresAt: Date.now() - 1000 }))
  stub.expireAll()
  const s = await client.ensureSession()
  assert.equal(wx.calls.login, 2)
  assert.notEqual(s.skey, stored.skey)
})

test('ensureSession: concurrent calls share one login', async (t) => {
  const { client, wx } = await setup(t)
  const [a, b] = await Promise.all([client.ensureSession(), client.ensureSession()])
  assert.equal(wx.calls.login, 1)
  assert.equal(a.skey, b.skey)
})

test('logout: POST /logout with the skey, 204, session forgotten and revoked', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  const skey = client.getSkey()
  assert.equal(await client.logout(), undefined)
  const sent = stub.log.find(e => e.path === '/logout')
  assert.equal(sent.authorization, 'Bearer ' + skey)
  assert.equal(sent.status, 204)
  assert.equal(client.getSkey(), null)
  assert.equal(wx.getStorageSync('wxsession:session'), '')
  assert.equal(stub.sessions.has(skey), false, 'revoked on the server')
  // The next request logs in afresh.
  await client.request({ url: '/echo' })
  assert.equal(wx.calls.login, 2)
})

test('logout: offline, the session is forgotten all the same and logout rejects network_error', async (t) => {
  const { stub, wx } = await setup(t)
  const online = createClient({ baseURL: stub.url, wx })
  await online.login()
  const offline = createClient({ baseURL: await closedURL(), wx })
  await assert.rejects(offline.logout(), { code: 'network_error' })
  assert.equal(offline.getSkey(), null)
  assert.equal(online.getSkey(), null, 'the storage is shared')
})

test('logout: a server error rejects with its code, the session is forgotten', async (t) => {
  const { client, stub } = await setup(t)
  await client.login()
  stub.respond('/logout', () => stub.error(503, 'store_unavailable', 'store down'))
  await assert.rejects(client.logout(), { code: 'store_unavailable', status: 503 })
  assert.equal(client.getSkey(), null)
})

test('logout: an already expired session resolves', async (t) => {
  const { client, stub } = await setup(t)
  await client.login()
  stub.respond('/logout', () => stub.error(401, 'session_expired', 'gone'))
  await client.logout()
  assert.equal(client.getSkey(), null)
})

test('logout: without a session resolves and sends nothing', async (t) => {
  const { client, stub } = await setup(t)
  await client.logout()
  assert.equal(stub.log.length, 0)
})

test('logout: during a login waits for it and revokes that session', async (t) => {
  const { client, stub } = await setup(t)
  const logging = client.login()
  const out = client.logout()
  const body = await logging
  await out
  assert.equal(client.getSkey(), null)
  const sent = stub.log.find(e => e.path === '/logout')
  assert.equal(sent.authorization, 'Bearer ' + body.skey)
})

test('validate: GET /validate answers the session and refreshes the known expiry', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  const stored = wx.getStorageSync('wxsession:session')
  wx.setStorageSync('wxsession:session', Object.assign({}, stored, { expiresAt: Date.now() + 1000 }))
  const body = await client.validate()
  assert.deepEqual(body, { openid: 'openid-alice', expires_in: 86400 })
  assert.ok(client.getSession().expiresAt > Date.now() + 86000 * 1000)
  assert.equal(stub.log.at(-1).authorization, 'Bearer ' + stored.skey)
})

test('validate: an expired session rejects session_expired and is forgotten, no login', async (t) => {
  const { client, wx, stub } = await setup(t)
  await client.login()
  stub.expireAll()
  await assert.rejects(client.validate(), { code: 'session_expired', status: 401 })
  assert.equal(client.getSkey(), null)
  assert.equal(wx.calls.login, 1)
})

test('validate: no session rejects session_required without a request', async (t) => {
  const { client, stub } = await setup(t)
  await assert.rejects(client.validate(), { code: 'session_required' })
  assert.equal(stub.log.length, 0)
})

test('storage: clearing wx storage drops the session', async (t) => {
  const { client, wx } = await setup(t)
  await client.login()
  wx.clearStorageSync()
  assert.equal(client.getSkey(), null)
})

test('storage: a session still works when wx storage throws', async (t) => {
  const { client, wx } = await setup(t)
  wx.setStorageSync = () => { throw new Error('storage full') }
  wx.getStorageSync = () => { throw new Error('storage broken') }
  await client.request({ url: '/echo' })
  await client.request({ url: '/echo' })
  assert.equal(wx.calls.login, 1)
  assert.ok(client.getSkey())
})

test('storage: when writing the new session fails, the older entry is removed and does not come back after a restart', async (t) => {
  const { client, wx, stub } = await setup(t)
  const first = await client.login()
  assert.equal(wx.getStorageSync('wxsession:session').skey, first.skey)
  const setStorageSync = wx.setStorageSync
  wx.setStorageSync = () => { throw new Error('setStorageSync:fail exceed storage max size 10MB') }
  const second = await client.login()
  assert.equal(client.getSkey(), second.skey, 'this run keeps the new session in memory')
  assert.equal(wx.storage.has('wxsession:session'), false, 'the older entry is gone from storage')
  // The app restarts (storage works again): no stale session comes back.
  wx.setStorageSync = setStorageSync
  const relaunched = createClient({ baseURL: stub.url, wx })
  assert.equal(relaunched.getSkey(), null)
  const s = await relaunched.ensureSession()
  assert.notEqual(s.skey, first.skey)
})

test('logout({ all: true }): POST /logout {"all":true} ends the sessions of every device', async (t) => {
  const { client, wx, stub, wechat } = await setup(t)
  const { createFakeWx } = require('../testing/fake-wx')
  const otherPhone = createFakeWx({ wechat, user: 'alice' })
  const other = createClient({ baseURL: stub.url, wx: otherPhone })
  await client.login()
  const otherSkey = (await other.login()).skey
  await client.logout({ all: true })
  const sent = stub.log.find(e => e.path === '/logout')
  assert.deepEqual(sent.body, { all: true })
  assert.equal(sent.status, 204)
  assert.equal(client.getSkey(), null)
  assert.equal(wx.getStorageSync('wxsession:session'), '')
  assert.equal(stub.sessions.has(otherSkey), false, 'the other device\'s session ended too')
  // The other device finds out on its next request, and logs in again.
  await other.request({ url: '/echo' })
  assert.equal(otherPhone.calls.login, 2)
})

test('logout(): without all, no body is sent and other devices keep their sessions', async (t) => {
  const { client, stub, wechat } = await setup(t)
  const { createFakeWx } = require('../testing/fake-wx')
  const other = createClient({ baseURL: stub.url, wx: createFakeWx({ wechat, user: 'alice' }) })
  await client.login()
  const otherSkey = (await other.login()).skey
  await client.logout()
  assert.equal(stub.log.find(e => e.path === '/logout').body, null)
  assert.equal(stub.sessions.has(otherSkey), true)
})

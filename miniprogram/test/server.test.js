'use strict'

// The client against the real wxsession local server (cmd/local) and its
// built-in WeChat emulator. Runs only when WXSESSION_URL is set, e.g.
//   WXSESSION_URL=http://127.0.0.1:8080 node --test test/
// wx.login asks the emulator for a code (POST /emulator/wx.login?user=NAME),
// wx.request is real HTTP, and decrypt getters ask the emulator for data
// encrypted with the user's current session_key (POST /emulator/encrypt).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const https = require('node:https')
const { createFakeWx } = require('../testing/fake-wx')
const { createClient } = require('../wxsession')

const BASE = (process.env.WXSESSION_URL || '').replace(/\/+$/, '')
const SKIP = 'set WXSESSION_URL to run against the real server (make test does)'

if (!BASE) {
  test('client against the real server', { skip: SKIP }, () => {})
} else {
  defineTests()
}

/** call makes one raw HTTP request to the server and resolves {status, body, headers}. */
function call (method, path, body, headers) {
  return new Promise((resolve, reject) => {
    const url = new URL(BASE + path)
    const lib = url.protocol === 'https:' ? https : http
    const data = body === undefined ? null : JSON.stringify(body)
    const h = Object.assign({}, headers)
    if (data !== null) {
      h['content-type'] = 'application/json'
      h['content-length'] = Buffer.byteLength(data)
    }
    const req = lib.request(url, { method, headers: h }, res => {
      const chunks = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed = text
        try { parsed = JSON.parse(text) } catch (e) {}
        resolve({ status: res.statusCode, body: parsed, headers: res.headers })
      })
    })
    req.on('error', reject)
    req.setTimeout(10000, () => req.destroy(new Error(method + ' ' + path + ': no answer in 10s')))
    if (data !== null) req.write(data)
    req.end()
  })
}

function describe (r) {
  return r.status + ' ' + JSON.stringify(r.body)
}

/** emulatorCode is what wx.login returns for that WeChat user. */
async function emulatorCode (user) {
  const r = await call('POST', '/emulator/wx.login?user=' + encodeURIComponent(user))
  assert.equal(r.status, 200, 'POST /emulator/wx.login: got ' + describe(r) + ', want 200 {"code"}')
  assert.equal(typeof r.body.code, 'string', 'POST /emulator/wx.login: no code in ' + describe(r))
  return r.body.code
}

/** emulatorEncrypt returns WeRun-shaped data encrypted with the user's current session_key. */
async function emulatorEncrypt (openid) {
  const r = await call('POST', '/emulator/encrypt', { openid })
  assert.equal(r.status, 200, 'POST /emulator/encrypt: got ' + describe(r) + ', want 200')
  for (const f of ['encryptedData', 'iv']) assert.equal(typeof r.body[f], 'string', 'POST /emulator/encrypt: no ' + f + ' in ' + describe(r))
  return r.body
}

const run = Date.now().toString(36)
let users = 0
/** newUser names a WeChat user no other test (or earlier run) uses. */
function newUser () {
  return 'client-it-' + run + '-' + (++users)
}

/** phone returns a fake wx for one WeChat user and a client using it. */
function phone (user, codeSource) {
  const wx = createFakeWx({ codeSource: codeSource || (() => emulatorCode(user)), loginDelay: 0 })
  const client = createClient({ baseURL: BASE, wx, timeout: 10000 })
  return { wx, client }
}

function defineTests () {
  test('real server: login stores an unguessable skey and the openid', async () => {
    const { client, wx } = phone(newUser())
    const body = await client.login()
    assert.match(body.skey, /^[A-Za-z0-9_-]{43,}$/, 'skey is unpadded base64url of 256+ bits')
    assert.equal(typeof body.openid, 'string')
    assert.ok(body.openid.length > 0)
    assert.ok(body.expires_in > 0, 'expires_in ' + body.expires_in)
    assert.equal(wx.getStorageSync('wxsession:session').skey, body.skey)
    assert.equal(client.getSession().openid, body.openid)
  })

  test('real server: request() carries the skey (GET /validate)', async () => {
    const { client, wx } = phone(newUser())
    const v = await client.request({ url: '/validate' })
    assert.equal(wx.calls.login, 1, 'request logged in first')
    assert.equal(v.openid, client.getSession().openid)
    assert.ok(v.expires_in > 0)
    const again = await client.validate()
    assert.equal(again.openid, v.openid)
  })

  test('real server: the same WeChat user gets the same openid', async () => {
    const user = newUser()
    const a = await phone(user).client.login()
    const b = await phone(user).client.login()
    assert.equal(a.openid, b.openid)
    assert.notEqual(a.skey, b.skey, 'a fresh code makes a fresh session')
  })

  test('real server: a repeated code returns the session the first call created', async () => {
    const code = await emulatorCode(newUser())
    const a = await phone('unused', () => code).client.login()
    const b = await phone('unused', () => code).client.login()
    assert.equal(b.skey, a.skey)
  })

  test('real server: ensureSession keeps a stored session on relaunch', async () => {
    const { client, wx } = phone(newUser())
    await client.login()
    const relaunched = createClient({ baseURL: BASE, wx })
    const s = await relaunched.ensureSession()
    assert.equal(s.skey, client.getSkey())
    assert.equal(wx.calls.login, 1)
    await relaunched.request({ url: '/validate' })
    assert.equal(wx.calls.login, 1)
  })

  test('real server: decrypt WeRun data encrypted with the current session_key', async () => {
    const { client } = phone(newUser())
    let calls = 0
    const data = await client.decrypt(() => { calls++; return emulatorEncrypt(client.getSession().openid) })
    assert.equal(calls, 1)
    assert.equal(typeof data, 'object')
    assert.equal(typeof data.watermark, 'object', 'watermark kept: ' + JSON.stringify(data))
    assert.equal(typeof data.watermark.appid, 'string')
    assert.equal(typeof data.watermark.timestamp, 'number')
  })

  test('real server: getPhoneNumber trades the button code at POST /phonenumber', async () => {
    const user = newUser()
    const { client } = phone(user)
    await client.login()
    const r = await call('POST', '/emulator/getPhoneNumber?user=' + encodeURIComponent(user))
    assert.equal(r.status, 200, 'POST /emulator/getPhoneNumber: got ' + describe(r) + ', want 200 {"code"}')
    const e = { type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code: r.body.code } }
    const data = await client.getPhoneNumber(e)
    assert.match(data.phoneNumber, /^\+?[0-9]+$/, 'phoneNumber in ' + JSON.stringify(data))
    assert.equal(typeof data.purePhoneNumber, 'string')
    assert.equal(typeof data.countryCode, 'string', 'countryCode is always a string')
    assert.equal(typeof data.watermark.appid, 'string')
    // The code is single-use: the same event again is invalid_phone_code.
    await assert.rejects(client.getPhoneNumber(e), { code: 'invalid_phone_code', status: 400 })
    // A user who declined: nothing is sent.
    await assert.rejects(client.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }), { code: 'phone_denied' })
  })

  test('real server: stale session_key -> 409 -> re-login, fresh data, one retry', async () => {
    const { client, wx } = phone(newUser())
    await client.login()
    const openid = client.getSession().openid
    const old = await emulatorEncrypt(openid) // under the first login's session_key
    await client.login() // the server now holds a newer session_key
    const skeyBefore = client.getSkey()

    const direct = await call('POST', '/decrypt', old, { Authorization: 'Bearer ' + skeyBefore })
    assert.equal(direct.status, 409, 'old data with the new key: got ' + describe(direct) + ', want 409 stale_session_key')
    assert.equal(direct.body.error, 'stale_session_key')

    const loginsBefore = wx.calls.login
    let calls = 0
    const data = await client.decrypt(() => {
      calls++
      return calls === 1 ? old : emulatorEncrypt(client.getSession().openid)
    })
    assert.equal(calls, 2, 'getter called again after the re-login')
    assert.equal(wx.calls.login, loginsBefore + 1, 'exactly one re-login')
    assert.notEqual(client.getSkey(), skeyBefore, 'the re-login replaced the skey')
    assert.equal(typeof data.watermark, 'object')
  })

  test('real server: five concurrent requests on a revoked session share one re-login', async () => {
    const { client, wx } = phone(newUser())
    await client.login()
    const old = client.getSkey()
    const out = await call('POST', '/logout', undefined, { Authorization: 'Bearer ' + old })
    assert.equal(out.status, 204, 'revoke behind the client: got ' + describe(out))

    const bodies = await Promise.all([1, 2, 3, 4, 5].map(() => client.request({ url: '/validate' })))
    assert.equal(wx.calls.login, 2, 'one initial login and one shared re-login')
    assert.ok(bodies.every(b => b.openid === bodies[0].openid))
    assert.notEqual(client.getSkey(), old)
  })

  test('real server: decrypt on a revoked session re-logs in and fetches fresh data', async () => {
    const { client, wx } = phone(newUser())
    await client.login()
    await call('POST', '/logout', undefined, { Authorization: 'Bearer ' + client.getSkey() })
    let calls = 0
    const data = await client.decrypt(() => { calls++; return emulatorEncrypt(client.getSession().openid) })
    assert.equal(calls, 2)
    assert.equal(wx.calls.login, 2)
    assert.equal(typeof data.watermark, 'object')
  })

  test('real server: logout revokes the skey and forgets it', async () => {
    const { client, wx } = phone(newUser())
    await client.login()
    const skey = client.getSkey()
    await client.logout()
    assert.equal(client.getSkey(), null)
    assert.equal(wx.getStorageSync('wxsession:session'), '')
    const r = await call('GET', '/validate', undefined, { Authorization: 'Bearer ' + skey })
    assert.equal(r.status, 401, 'old skey after logout: got ' + describe(r))
    assert.equal(r.body.error, 'session_expired')
    await client.logout() // nothing left to revoke: resolves without a request
  })

  test('real server: logout({ all: true }) ends the user\'s sessions on every device, no one else\'s', async () => {
    const user = newUser()
    const a = phone(user)
    const b = phone(user)
    const other = phone(newUser())
    await a.client.login()
    await b.client.login()
    await other.client.login()
    const skeyB = b.client.getSkey()
    assert.notEqual(a.client.getSkey(), skeyB)
    await a.client.logout({ all: true })
    assert.equal(a.client.getSkey(), null)
    const r = await call('GET', '/validate', undefined, { Authorization: 'Bearer ' + skeyB })
    assert.equal(r.status, 401, 'the other device\'s skey after logout everywhere: got ' + describe(r))
    assert.equal(r.body.error, 'session_expired')
    const o = await call('GET', '/validate', undefined, { Authorization: 'Bearer ' + other.client.getSkey() })
    assert.equal(o.status, 200, 'another user\'s skey after logout everywhere: got ' + describe(o))
  })

  test('real server: an invalid code rejects invalid_code without looping', async () => {
    const { client, wx } = phone('unused', () => 'not-a-code-the-emulator-issued')
    await assert.rejects(client.request({ url: '/validate' }), { code: 'invalid_code', status: 401 })
    assert.equal(wx.calls.login, 1)
  })

  test('real server: a refused login does not stick: the next call runs wx.login again and succeeds', async () => {
    const user = newUser()
    let codes = 0
    const { client, wx } = phone(user, () => ++codes === 1 ? 'not-a-code-the-emulator-issued' : emulatorCode(user))
    await assert.rejects(client.login(), { code: 'invalid_code', status: 401 })
    const v = await client.request({ url: '/validate' })
    assert.equal(wx.calls.login, 2, 'wx.login ran again')
    assert.equal(v.openid, client.getSession().openid)
  })

  test('real server: responseType arraybuffer: a revoked session is recognised from the bytes and renewed once', async () => {
    const { client, wx } = phone(newUser())
    await client.login()
    await call('POST', '/logout', undefined, { Authorization: 'Bearer ' + client.getSkey() })
    const buf = await client.request({ url: '/validate', responseType: 'arraybuffer' })
    assert.equal(Object.prototype.toString.call(buf), '[object ArrayBuffer]')
    assert.equal(JSON.parse(Buffer.from(buf).toString('utf8')).openid, client.getSession().openid)
    assert.equal(wx.calls.login, 2)
  })

  test('real server: other errors reject with the server\'s code', async () => {
    const { client } = phone(newUser())
    await client.login()
    await assert.rejects(client.request({ url: '/no-such-route' }), { code: 'not_found', status: 404 })
    await assert.rejects(client.request({ url: '/login', method: 'GET' }), { code: 'method_not_allowed', status: 405 })
    let calls = 0
    await assert.rejects(client.decrypt(() => { calls++; return { encryptedData: 'not base64!', iv: 'short' } }), { code: 'invalid_request', status: 400 })
    assert.equal(calls, 1, 'a 400 is not retried')
  })
}

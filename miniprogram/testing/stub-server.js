'use strict'

// A stub wxsession server on node:http implementing the HTTP contract (the
// README's routes, /phonenumber and /logout {"all": true} included) over the
// WeChat model in fake-wx.js, plus one
// developer route, ANY /echo, standing for an app's own API behind the skey.
// Tests bend it with respond(path, fn) and expireAll().

const http = require('node:http')
const crypto = require('node:crypto')

/** HANG, returned by a respond() handler, leaves the request unanswered. */
const HANG = Symbol('hang')

function startStub (opts) {
  opts = opts || {}
  const wechat = opts.wechat
  const ttl = opts.ttl || 86400
  const sessions = new Map() // skey -> { openid, expired }
  const serverKey = new Map() // openid -> key version the server holds (newest login's)
  const overrides = new Map()
  const log = []

  function error (status, code, message, headers) {
    return { status, body: { error: code, message: message || code }, headers }
  }

  function auth (ctx) {
    const m = /^Bearer\s+(\S+)$/i.exec(ctx.headers.authorization || '')
    if (!m) return { err: error(401, 'session_required', 'no skey sent') }
    const s = sessions.get(m[1])
    if (!s || s.expired) return { err: error(401, 'session_expired', 'the session has expired') }
    return { skey: m[1], session: s }
  }

  const routes = {
    '/login': {
      method: 'POST',
      handle (ctx) {
        if (!ctx.body || typeof ctx.body.code !== 'string' || !ctx.body.code) return error(400, 'invalid_request', 'code is required')
        const c = wechat.redeem(ctx.body.code)
        if (!c) return error(401, 'invalid_code', 'the code is invalid or was already used')
        serverKey.set(c.openid, c.keyVersion)
        const skey = crypto.randomBytes(32).toString('base64url')
        sessions.set(skey, { openid: c.openid, expired: false })
        return { status: 200, body: { skey, expires_in: ttl, openid: c.openid } }
      }
    },
    '/validate': {
      method: 'GET',
      handle (ctx) {
        const a = auth(ctx)
        if (a.err) return a.err
        return { status: 200, body: { openid: a.session.openid, expires_in: ttl } }
      }
    },
    '/decrypt': {
      method: 'POST',
      handle (ctx) {
        const a = auth(ctx)
        if (a.err) return a.err
        const b = ctx.body
        if (!b || typeof b.encryptedData !== 'string' || typeof b.iv !== 'string') return error(400, 'invalid_request', 'encryptedData and iv are required')
        let sealed
        try {
          sealed = wechat.open(b.encryptedData)
        } catch (e) {
          return error(400, 'invalid_request', 'encryptedData is not base64')
        }
        if (sealed.openid !== a.session.openid || sealed.keyVersion !== serverKey.get(a.session.openid)) {
          return error(409, 'stale_session_key', 'decryption failed with the current session_key')
        }
        return { status: 200, body: { data: Object.assign({}, sealed.data, { watermark: { appid: 'wxstubappid', timestamp: 1700000000 } }) } }
      }
    },
    '/logout': {
      method: 'POST',
      handle (ctx) {
        const m = /^Bearer\s+(\S+)$/i.exec(ctx.headers.authorization || '')
        if (!m) return error(401, 'session_required', 'no skey sent')
        const s = sessions.get(m[1])
        if (s && ctx.body && ctx.body.all === true) {
          // Every session of the user: every device.
          for (const [k, v] of sessions) if (v.openid === s.openid) sessions.delete(k)
        }
        sessions.delete(m[1])
        return { status: 204 }
      }
    },
    '/phonenumber': {
      method: 'POST',
      handle (ctx) {
        const a = auth(ctx)
        if (a.err) return a.err
        if (!ctx.body || typeof ctx.body.code !== 'string' || !ctx.body.code) return error(400, 'invalid_request', 'code is required')
        const c = wechat.redeemPhoneCode(ctx.body.code)
        if (!c || c.openid !== a.session.openid) return error(400, 'invalid_phone_code', 'WeChat refused the phone code')
        return { status: 200, body: { data: { phoneNumber: c.phoneNumber, purePhoneNumber: c.phoneNumber, countryCode: '86', watermark: { appid: 'wxstubappid', timestamp: 1700000000 } } } }
      }
    },
    '/echo': {
      method: '*',
      handle (ctx) {
        const a = auth(ctx)
        if (a.err) return a.err
        return { status: 200, body: { method: ctx.method, path: ctx.path, query: ctx.query, headers: ctx.headers, body: ctx.body, openid: a.session.openid } }
      }
    }
  }

  function defaultResponse (ctx) {
    const r = routes[ctx.path]
    if (!r) return error(404, 'not_found', 'no route ' + ctx.path)
    if (r.method !== '*' && r.method !== ctx.method) return error(405, 'method_not_allowed', ctx.path + ' takes ' + r.method, { Allow: r.method })
    return r.handle(ctx)
  }

  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', c => chunks.push(c))
    req.on('end', async () => {
      const url = new URL(req.url, 'http://stub')
      const text = Buffer.concat(chunks).toString('utf8')
      const ctx = {
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        text,
        body: null
      }
      const entry = { method: req.method, path: url.pathname, authorization: req.headers.authorization, appid: req.headers['x-wx-appid'] }
      log.push(entry)
      let out
      if (text) {
        const ct = req.headers['content-type'] || ''
        try {
          if (!/^application\/json\b/.test(ct)) throw new Error('Content-Type must be application/json')
          ctx.body = JSON.parse(text)
        } catch (e) {
          out = error(400, 'invalid_request', e.message)
        }
      }
      entry.body = ctx.body
      if (!out && overrides.has(ctx.path)) out = await overrides.get(ctx.path)(ctx)
      if (out === HANG) return
      if (!out) out = defaultResponse(ctx)
      entry.status = out.status
      entry.code = out.body && out.body.error
      const headers = Object.assign({}, out.headers)
      let payload = ''
      if (out.body !== undefined) {
        const raw = typeof out.body === 'string' || Buffer.isBuffer(out.body)
        payload = raw ? out.body : JSON.stringify(out.body)
        if (!headers['Content-Type']) headers['Content-Type'] = raw ? 'text/plain' : 'application/json; charset=utf-8'
      }
      res.writeHead(out.status, headers)
      res.end(payload)
    })
  })

  return new Promise(resolve => {
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port
      resolve({
        url: 'http://127.0.0.1:' + port,
        port,
        log,
        sessions,
        /** count returns how many requests reached path. */
        count (path) { return log.filter(e => e.path === path).length },
        /** respond overrides path: fn(ctx) returns a response ({status, body, headers}; a string or Buffer body is sent as it is), HANG, or nothing for the contract's answer. */
        respond (path, fn) { overrides.set(path, fn) },
        /** expireAll makes every session the server holds expired. */
        expireAll () { for (const s of sessions.values()) s.expired = true },
        error,
        close () {
          server.closeAllConnections()
          return new Promise(r => server.close(() => r()))
        }
      })
    })
  })
}

module.exports = { startStub, HANG }

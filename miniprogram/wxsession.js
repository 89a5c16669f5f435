'use strict'

/**
 * wxsession mini-program client.
 *
 * Gives a WeChat mini-program a login session with a wxsession server:
 * wx.login -> POST /login -> skey kept in storage -> `Authorization: Bearer
 * <skey>` on every request, one shared re-login when the server says the
 * session ended, and the stale-session_key dance for encrypted data.
 *
 * CommonJS, no dependencies, only wx.* APIs. Written with plain promises (no
 * async/await, no `class ... extends Error`) so it runs unchanged whether or
 * not the developer tools transpile ES6 to ES5: async functions need
 * regenerator-runtime under that transpiler, and transpiled subclasses of
 * Error lose their prototype.
 *
 *   const { createClient } = require('./wxsession')
 *   const client = createClient({ baseURL: 'https://api.example.com' })
 *   await client.ensureSession()
 *   const orders = await client.request({ url: '/orders' })
 */

/** Storage key under which the session is kept unless createClient says otherwise. */
var DEFAULT_STORAGE_KEY = 'wxsession:session'

/**
 * ensureSession treats a stored session as ended this long before its known
 * expiry, so a request sent right after it does not race the server's clock.
 */
var EXPIRY_MARGIN_MS = 60 * 1000

/** The 401 answers that a fresh login can cure. invalid_code is not one: it is a failed login. */
var SESSION_ERRORS = { session_expired: true, session_required: true }

function noop () {}

function hasOwn (obj, key) {
  return Object.prototype.hasOwnProperty.call(obj, key)
}

/**
 * makeError builds the Error every rejection of this library carries: `code`
 * is the server's error code or one of this library's own (network_error,
 * login_failed, http_error); `status` is the HTTP status when there was a
 * response. A plain Error with a name, rather than a subclass, for the
 * transpiler reason given at the top of the file.
 */
function makeError (code, message, extra) {
  var err = new Error(message)
  err.name = 'WxSessionError'
  err.code = code
  if (extra) {
    for (var k in extra) {
      if (hasOwn(extra, k) && extra[k] !== undefined) err[k] = extra[k]
    }
  }
  return err
}

/** networkError turns a wx.request fail callback's result into a network_error. */
function networkError (res) {
  var errMsg = (res && res.errMsg) || 'request:fail'
  return makeError('network_error', errMsg, { errMsg: errMsg, errno: res && res.errno })
}

/** parseBody returns a response body as an object when it is (or holds) JSON, else as it came. */
function parseBody (data) {
  if (typeof data === 'string' && data) {
    try {
      return JSON.parse(data)
    } catch (e) {
      return data
    }
  }
  return data
}

function errorCodeOf (res) {
  var body = parseBody(res.data)
  if (body && typeof body === 'object' && typeof body.error === 'string') return body.error
  if (isGatewayDenial(res.statusCode, body)) return 'session_expired'
  return ''
}

/**
 * isGatewayDenial tells whether a response is API Gateway refusing a request
 * because its Lambda authorizer (wxsession's validate function) refused the
 * skey: 401 {"message":"Unauthorized"} without an skey, 403
 * {"message":"Forbidden"} with one it did not accept. For the client these
 * mean the same as session_expired: log in again and retry.
 */
function isGatewayDenial (status, body) {
  if (!body || typeof body !== 'object' || typeof body.error === 'string') return false
  return (status === 401 && body.message === 'Unauthorized') || (status === 403 && body.message === 'Forbidden')
}

function isOK (res) {
  return res.statusCode >= 200 && res.statusCode < 300
}

/** isSessionError tells whether a response says the skey sent is missing or no longer valid. */
function isSessionError (res) {
  return (res.statusCode === 401 || res.statusCode === 403) && SESSION_ERRORS[errorCodeOf(res)] === true
}

function headerValue (header, name) {
  if (!header || typeof header !== 'object') return undefined
  for (var k in header) {
    if (hasOwn(header, k) && k.toLowerCase() === name) return header[k]
  }
  return undefined
}

/** retryAfterSeconds reads Retry-After (seconds or an HTTP date) as seconds from now. */
function retryAfterSeconds (header) {
  var v = headerValue(header, 'retry-after')
  if (v === undefined || v === null || v === '') return undefined
  var n = Number(v)
  if (isFinite(n)) return n
  var at = Date.parse(String(v))
  if (isFinite(at)) return Math.max(0, Math.ceil((at - Date.now()) / 1000))
  return undefined
}

/** responseError turns a non-2xx response into an Error carrying the server's code and message. */
function responseError (res) {
  var body = parseBody(res.data)
  var obj = body && typeof body === 'object' ? body : null
  var code = errorCodeOf(res) || 'http_error'
  var message = obj && typeof obj.message === 'string' && obj.message ? obj.message : 'HTTP ' + res.statusCode
  return makeError(code, message, {
    status: res.statusCode,
    data: body,
    header: res.header,
    retryAfter: retryAfterSeconds(res.header)
  })
}

/** bodyOf resolves a 2xx response to its body and turns anything else into its Error. */
function bodyOf (res) {
  if (isOK(res)) return res.data
  throw responseError(res)
}

/**
 * createClient returns a session client for one wxsession server.
 *
 * options.baseURL  the server, e.g. 'https://api.example.com' (required)
 * options.wx       the wx API object (defaults to the global wx; tests inject a fake)
 * options.storageKey  where the session is kept (default 'wxsession:session')
 * options.timeout  ms, passed to every wx.request and wx.login (default: the
 *                  app.json networkTimeout, 60 s unless set)
 */
function createClient (options) {
  options = options || {}
  var wxApi = options.wx || (typeof wx !== 'undefined' ? wx : undefined) // eslint-disable-line no-undef
  if (!wxApi || typeof wxApi.request !== 'function' || typeof wxApi.login !== 'function') {
    throw new TypeError('wxsession: createClient needs the wx API (options.wx, or the global wx in a mini-program)')
  }
  if (typeof options.baseURL !== 'string' || !/^https?:\/\/[^/]/i.test(options.baseURL)) {
    throw new TypeError('wxsession: createClient needs options.baseURL, an http(s) URL such as "https://api.example.com"')
  }
  var baseURL = options.baseURL.replace(/\/+$/, '')
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY
  var timeout = typeof options.timeout === 'number' && options.timeout > 0 ? options.timeout : undefined

  // The session lives in wx storage so it survives restarts, and is read back
  // on every use so that wx.clearStorageSync() (a common "clear cache" button)
  // really logs the user out. `memory` stands in only if storage fails.
  var memory = null
  var storageFailed = false

  // inflight is the one login every caller shares; loginSeq counts completed
  // logins, so a caller that got a 401 or 409 can tell whether someone else
  // already logged in after it sent its request and need not log in again.
  var inflight = null
  var loginSeq = 0

  function readSession () {
    var v = memory
    if (!storageFailed) {
      try {
        v = wxApi.getStorageSync(storageKey)
      } catch (e) {
        v = memory
      }
    }
    return v && typeof v === 'object' && typeof v.skey === 'string' && v.skey ? v : null
  }

  function writeSession (s) {
    memory = s
    try {
      wxApi.setStorageSync(storageKey, s)
      storageFailed = false
    } catch (e) {
      storageFailed = true
    }
  }

  function clearSession () {
    memory = null
    try {
      wxApi.removeStorageSync(storageKey)
      storageFailed = false
    } catch (e) {
      storageFailed = true
    }
  }

  /** forgetIfCurrent drops the stored session when it is the one the server refused. */
  function forgetIfCurrent (skey) {
    var s = readSession()
    if (s && s.skey === skey) clearSession()
  }

  function copySession (s) {
    var out = { skey: s.skey, openid: s.openid, expiresAt: s.expiresAt }
    if (s.unionid) out.unionid = s.unionid
    return out
  }

  function resolveURL (url) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url
    return baseURL + '/' + url.replace(/^\/+/, '')
  }

  /** send is wx.request as a promise: resolves with every response, rejects only with network_error. */
  function send (opts) {
    return new Promise(function (resolve, reject) {
      var o = {}
      for (var k in opts) {
        if (hasOwn(opts, k) && opts[k] !== undefined) o[k] = opts[k]
      }
      if (o.timeout === undefined && timeout) o.timeout = timeout
      o.success = resolve
      o.fail = function (res) { reject(networkError(res)) }
      try {
        wxApi.request(o)
      } catch (e) {
        reject(networkError({ errMsg: 'request:fail ' + ((e && e.message) || e) }))
      }
    })
  }

  function jsonHeader (skey) {
    var h = { 'content-type': 'application/json' }
    if (skey) h.Authorization = 'Bearer ' + skey
    return h
  }

  function wxLogin () {
    return new Promise(function (resolve, reject) {
      var o = {
        success: function (res) {
          if (res && res.code) return resolve(res.code)
          var errMsg = (res && res.errMsg) || 'login:fail no code'
          reject(makeError('login_failed', 'wx.login returned no code (' + errMsg + ')', { errMsg: errMsg }))
        },
        fail: function (res) {
          var errMsg = (res && res.errMsg) || 'login:fail'
          reject(makeError('login_failed', errMsg, { errMsg: errMsg }))
        }
      }
      if (timeout) o.timeout = timeout
      try {
        wxApi.login(o)
      } catch (e) {
        reject(makeError('login_failed', 'wx.login threw: ' + ((e && e.message) || e), { cause: e }))
      }
    })
  }

  /**
   * login runs wx.login and POST /login, stores the session and resolves with
   * the server's body. Concurrent calls share one login.
   */
  function login () {
    if (inflight) return inflight
    var p = wxLogin().then(function (code) {
      return send({ url: baseURL + '/login', method: 'POST', header: jsonHeader(), data: { code: code } })
        .then(null, function (err) {
          // No answer from the server: the login as a whole failed. The
          // network_error stays reachable as err.cause.
          throw makeError('login_failed', 'login request failed: ' + err.message, { cause: err, errMsg: err.errMsg })
        })
    }).then(function (res) {
      var body = bodyOf(res) // a server error (invalid_code, code_blocked, ...) rejects with its own code
      if (!body || typeof body !== 'object' || typeof body.skey !== 'string' || !body.skey) {
        throw makeError('login_failed', 'the server answered /login with ' + res.statusCode + ' but no skey', { status: res.statusCode, data: body })
      }
      var s = {
        skey: body.skey,
        openid: typeof body.openid === 'string' ? body.openid : '',
        expiresAt: typeof body.expires_in === 'number' ? Date.now() + body.expires_in * 1000 : null
      }
      if (body.unionid) s.unionid = body.unionid
      writeSession(s)
      loginSeq++
      inflight = null
      return body
    }, function (err) {
      inflight = null
      throw err
    })
    inflight = p
    return p
  }

  /** current resolves with the session to use and the login count it belongs to, logging in when there is none. */
  function current () {
    if (inflight) return inflight.then(afterLogin)
    var s = readSession()
    if (s) return Promise.resolve({ skey: s.skey, seq: loginSeq })
    return login().then(afterLogin)
  }

  function afterLogin () {
    var s = readSession()
    if (!s) throw makeError('session_required', 'the session was ended (logout) while waiting for login')
    return { skey: s.skey, seq: loginSeq }
  }

  /**
   * renew resolves with a session newer than `used`: the login in flight, the
   * one someone completed since `used` was read, or a fresh one. This is what
   * makes N requests that all got 401 share a single login.
   */
  function renew (used) {
    if (inflight) return inflight.then(afterLogin)
    if (loginSeq !== used.seq) {
      var s = readSession()
      if (s) return Promise.resolve({ skey: s.skey, seq: loginSeq })
    }
    return login().then(afterLogin)
  }

  /** withSession sends attempt(session) and, on a session error, renews the session once and sends it once more. */
  function withSession (attempt, shouldRenew) {
    return current().then(function (s) {
      return attempt(s).then(function (res) {
        if (!shouldRenew(res)) return res
        if (errorCodeOf(res) === 'session_expired') forgetIfCurrent(s.skey)
        return renew(s).then(function (s2) {
          return attempt(s2).then(function (res2) {
            if (errorCodeOf(res2) === 'session_expired') forgetIfCurrent(s2.skey)
            return res2
          })
        })
      })
    })
  }

  /**
   * request is wx.request with the session: same options, resolves with the
   * body of a 2xx answer, rejects with the server's error code otherwise.
   */
  function request (opts) {
    if (!opts || typeof opts.url !== 'string') {
      return Promise.reject(new TypeError('wxsession: request needs options.url'))
    }
    function attempt (s) {
      var o = {}
      for (var k in opts) {
        if (hasOwn(opts, k) && k !== 'success' && k !== 'fail' && k !== 'complete') o[k] = opts[k]
      }
      o.url = resolveURL(opts.url)
      var header = {}
      if (opts.header) {
        for (var h in opts.header) {
          if (hasOwn(opts.header, h) && h.toLowerCase() !== 'authorization') header[h] = opts.header[h]
        }
      }
      header.Authorization = 'Bearer ' + s.skey
      o.header = header
      return send(o)
    }
    return withSession(attempt, isSessionError).then(bodyOf)
  }

  function decryptBody (d) {
    if (!d || typeof d !== 'object' || typeof d.encryptedData !== 'string' || typeof d.iv !== 'string') {
      throw new TypeError('wxsession: the decrypt getter must give {encryptedData, iv, rawData?, signature?}, e.g. the result of wx.getWeRunData')
    }
    // Only the contract's fields: a wx.* result also carries errMsg, cloudID, ...
    var body = { encryptedData: d.encryptedData, iv: d.iv }
    if (typeof d.rawData === 'string') body.rawData = d.rawData
    if (typeof d.signature === 'string') body.signature = d.signature
    return body
  }

  /**
   * decrypt ensures a session, gets fresh encrypted data from getter() and has
   * the server decrypt it. On 409 stale_session_key the data was encrypted
   * with a session_key the server no longer has: log in again (which gives the
   * server WeChat's newest key), fetch the data again, retry once. A 401
   * session error is cured the same way: the new login may rotate the key, so
   * the data is fetched again too.
   */
  function decrypt (getter) {
    if (typeof getter !== 'function') {
      return Promise.reject(new TypeError('wxsession: decrypt needs a function that returns (a promise of) {encryptedData, iv}'))
    }
    function attempt (s) {
      return Promise.resolve().then(function () { return getter() }).then(function (d) {
        return send({ url: baseURL + '/decrypt', method: 'POST', header: jsonHeader(s.skey), data: decryptBody(d) })
      })
    }
    function shouldRenew (res) {
      return isSessionError(res) || (res.statusCode === 409 && errorCodeOf(res) === 'stale_session_key')
    }
    return withSession(attempt, shouldRenew).then(function (res) {
      var body = bodyOf(res)
      return body && typeof body === 'object' ? body.data : body
    })
  }

  /**
   * logout ends the session on the server and forgets it here. The local
   * session is forgotten first and whatever happens next: a user who taps
   * "log out" offline is logged out of this device. If the server could not
   * be told, the promise rejects (network_error, or the server's code) so the
   * app knows the skey stays valid server-side until it expires.
   */
  function logout () {
    var waitLogin = inflight ? inflight.then(noop, noop) : Promise.resolve()
    return waitLogin.then(function () {
      var s = readSession()
      clearSession()
      if (!s) return undefined
      return send({ url: baseURL + '/logout', method: 'POST', header: jsonHeader(s.skey) }).then(function (res) {
        // 204, or a 401 saying the session had already ended: either way it is gone.
        if (isOK(res) || isSessionError(res)) return undefined
        throw responseError(res)
      })
    })
  }

  function checkSession () {
    return new Promise(function (resolve) {
      if (typeof wxApi.checkSession !== 'function') return resolve(true)
      try {
        wxApi.checkSession({
          success: function () { resolve(true) },
          fail: function () { resolve(false) }
        })
      } catch (e) {
        resolve(false)
      }
    })
  }

  function isExpired (s) {
    return typeof s.expiresAt === 'number' && s.expiresAt - EXPIRY_MARGIN_MS <= Date.now()
  }

  function sessionAfterLogin () {
    var s = readSession()
    if (!s) throw makeError('session_required', 'the session was ended (logout) while waiting for login')
    return copySession(s)
  }

  /**
   * ensureSession is for App.onLaunch: keeps the stored session when WeChat's
   * own login state is still good (wx.checkSession) and its known expiry has
   * not passed, logs in otherwise. Resolves with the session (getSession()).
   */
  function ensureSession () {
    if (inflight) return inflight.then(sessionAfterLogin)
    var s = readSession()
    if (!s) return login().then(sessionAfterLogin)
    return checkSession().then(function (ok) {
      if (inflight) return inflight.then(sessionAfterLogin)
      var now = readSession()
      // A session that changed while wx.checkSession ran came from a login
      // that just finished: it is as fresh as one can get.
      if (now && now.skey !== s.skey) return copySession(now)
      if (!now || !ok) return login().then(sessionAfterLogin)
      if (!isExpired(now)) return copySession(now)
      // Past the expiry known locally: the server slides sessions as they
      // are used, so ask it before paying for a login.
      return validate().then(function () {
        return copySession(readSession())
      }, function (err) {
        if (err && SESSION_ERRORS[err.code] === true) return login().then(sessionAfterLogin)
        throw err
      })
    })
  }

  /**
   * validate asks the server whether the stored session is alive (GET
   * /validate) and records the expiry it answers, which slides forward as the
   * session is used. It never logs in: a dead session rejects with
   * session_expired (and is forgotten), no session with session_required.
   */
  function validate () {
    var waitLogin = inflight ? inflight.then(noop, noop) : Promise.resolve()
    return waitLogin.then(function () {
      var s = readSession()
      if (!s) throw makeError('session_required', 'no session: call login() or ensureSession() first')
      return send({ url: baseURL + '/validate', method: 'GET', header: { Authorization: 'Bearer ' + s.skey } }).then(function (res) {
        if (res.statusCode === 401 && errorCodeOf(res) === 'session_expired') forgetIfCurrent(s.skey)
        var body = bodyOf(res)
        var now = readSession()
        if (now && now.skey === s.skey && body && typeof body === 'object') {
          var updated = copySession(now)
          if (typeof body.expires_in === 'number') updated.expiresAt = Date.now() + body.expires_in * 1000
          if (typeof body.openid === 'string' && body.openid) updated.openid = body.openid
          if (body.unionid) updated.unionid = body.unionid
          writeSession(updated)
        }
        return body
      })
    })
  }

  /** getSkey returns the stored skey, or null when there is no session. */
  function getSkey () {
    var s = readSession()
    return s ? s.skey : null
  }

  /** getSession returns a copy of the stored session {skey, openid, unionid?, expiresAt}, or null. */
  function getSession () {
    var s = readSession()
    return s ? copySession(s) : null
  }

  return {
    login: login,
    ensureSession: ensureSession,
    request: request,
    decrypt: decrypt,
    validate: validate,
    logout: logout,
    getSkey: getSkey,
    getSession: getSession
  }
}

module.exports = {
  createClient: createClient,
  DEFAULT_STORAGE_KEY: DEFAULT_STORAGE_KEY
}

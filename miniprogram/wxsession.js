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
 *
 * The JSDoc types below are checked with TypeScript (checkJs) against
 * miniprogram-api-typings, WeChat's official wx.* typings: see tsconfig.json.
 */

/**
 * @typedef {{ skey: string, openid: string, unionid?: string, expiresAt: number | null }} Session
 * @typedef {{ skey: string, seq: number, fresh: boolean }} Use  a session as one call uses it; fresh: it came from a login made during this call
 * @typedef {WechatMiniprogram.RequestSuccessCallbackResult} Response
 * @typedef {Error & { code: string, status?: number, data?: any, header?: any, retryAfter?: number, errMsg?: string, errno?: number, cause?: any }} WxSessionError
 */

/** Storage key under which the session is kept unless createClient says otherwise. */
var DEFAULT_STORAGE_KEY = 'wxsession:session'

/**
 * ensureSession treats a stored session as ended this long before its known
 * expiry, so a request sent right after it does not race the server's clock.
 */
var EXPIRY_MARGIN_MS = 60 * 1000

/**
 * The 401 answers that a fresh login can cure. invalid_code is not one: it is a failed login.
 * @type {Record<string, boolean>}
 */
var SESSION_ERRORS = { session_expired: true, session_required: true }

/** The request() options the client does not pass on to wx.request: its own callbacks and header (merged) take their place. */
var NOT_PASSED_ON = { url: true, header: true, success: true, fail: true, complete: true }

function noop () {}

/**
 * swallow handles the promise that Taro's and uni-app's APIs return besides
 * calling success/fail: they reject it on failure too, and the callbacks
 * already handled that outcome, so it must not surface as an unhandled
 * rejection. wx.* returns undefined or a task object, which this leaves alone.
 * @param {any} ret
 */
function swallow (ret) {
  if (ret && typeof ret === 'object' && typeof ret.then === 'function') ret.then(noop, noop)
}

/**
 * @param {any} obj
 * @param {string} key
 */
function hasOwn (obj, key) {
  return Object.prototype.hasOwnProperty.call(obj, key)
}

/**
 * copyDefined copies src's own properties that are not undefined to dst,
 * except those named in skip.
 * @param {Record<string, any>} dst
 * @param {Record<string, any>} src
 * @param {Record<string, boolean>} [skip]
 */
function copyDefined (dst, src, skip) {
  for (var k in src) {
    if (hasOwn(src, k) && src[k] !== undefined && !(skip && skip[k] === true)) dst[k] = src[k]
  }
}

/**
 * makeError builds the Error every rejection of this library carries: `code`
 * is the server's error code or one of this library's own (network_error,
 * login_failed, http_error); `status` is the HTTP status when there was a
 * response. A plain Error with a name, rather than a subclass, for the
 * transpiler reason given at the top of the file.
 */
/**
 * @param {string} code
 * @param {string} message
 * @param {Record<string, any>} [extra]
 * @returns {WxSessionError}
 */
function makeError (code, message, extra) {
  var err = /** @type {WxSessionError} */ (new Error(message))
  err.name = 'WxSessionError'
  err.code = code
  if (extra) copyDefined(err, extra)
  return err
}

/**
 * messageOf is a thrown value's message.
 * @param {any} e
 * @returns {string}
 */
function messageOf (e) {
  return String((e && e.message) || e)
}

/**
 * networkError turns a wx.request fail callback's result into a network_error.
 * @param {{ errMsg?: string, errno?: number } | undefined} res
 */
function networkError (res) {
  var errMsg = (res && res.errMsg) || 'request:fail'
  return makeError('network_error', errMsg, { errMsg: errMsg, errno: res && res.errno })
}

/**
 * isArrayBuffer tells whether v is an ArrayBuffer, also one from another
 * realm (where instanceof fails).
 * @param {any} v
 * @returns {v is ArrayBuffer}
 */
function isArrayBuffer (v) {
  return Object.prototype.toString.call(v) === '[object ArrayBuffer]'
}

/**
 * utf8Decode decodes UTF-8 bytes, with U+FFFD for malformed sequences.
 * Hand-written because TextDecoder is not in every WeChat base library; it
 * only ever sees small error bodies.
 * @param {ArrayBuffer} buf
 * @returns {string}
 */
function utf8Decode (buf) {
  var b = new Uint8Array(buf)
  var out = ''
  var i = 0
  while (i < b.length) {
    var c = b[i]
    var need = 0
    var cp = 0
    var min = 0
    if (c < 0x80) {
      out += String.fromCharCode(c)
      i++
      continue
    } else if (c >= 0xc2 && c <= 0xdf) {
      need = 1; cp = c & 0x1f; min = 0x80
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2; cp = c & 0x0f; min = 0x800
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3; cp = c & 0x07; min = 0x10000
    } else {
      out += '\ufffd'
      i++
      continue
    }
    var j = 1
    for (; j <= need && i + j < b.length && (b[i + j] & 0xc0) === 0x80; j++) cp = (cp << 6) | (b[i + j] & 0x3f)
    if (j <= need || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      out += '\ufffd'
      i += j
      continue
    }
    i += j
    if (cp >= 0x10000) {
      cp -= 0x10000
      out += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff))
    } else {
      out += String.fromCharCode(cp)
    }
  }
  return out
}

/**
 * parseBody returns a response body as an object when it is (or holds) JSON,
 * else as it came. An ArrayBuffer (responseType 'arraybuffer') is decoded as
 * UTF-8 first, so error bodies read the same whatever the responseType.
 * @param {any} data
 * @returns {any}
 */
function parseBody (data) {
  if (isArrayBuffer(data)) {
    var text = utf8Decode(data)
    try {
      return JSON.parse(text)
    } catch (e) {
      return text
    }
  }
  if (typeof data === 'string' && data) {
    try {
      return JSON.parse(data)
    } catch (e) {
      return data
    }
  }
  return data
}

/**
 * @param {Response} res
 * @returns {string}
 */
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
 * @param {number} status
 * @param {any} body
 */
function isGatewayDenial (status, body) {
  if (!body || typeof body !== 'object' || typeof body.error === 'string') return false
  return (status === 401 && body.message === 'Unauthorized') || (status === 403 && body.message === 'Forbidden')
}

/** @param {Response} res */
function isOK (res) {
  return res.statusCode >= 200 && res.statusCode < 300
}

/**
 * isSessionError tells whether a response says the skey sent is missing or no longer valid.
 * @param {Response} res
 */
function isSessionError (res) {
  return (res.statusCode === 401 || res.statusCode === 403) && SESSION_ERRORS[errorCodeOf(res)] === true
}

/**
 * @param {any} header
 * @param {string} name  lower case
 */
function headerValue (header, name) {
  if (!header || typeof header !== 'object') return undefined
  for (var k in header) {
    if (hasOwn(header, k) && k.toLowerCase() === name) return header[k]
  }
  return undefined
}

/**
 * retryAfterSeconds reads Retry-After (seconds or an HTTP date) as seconds from now.
 * @param {any} header
 */
function retryAfterSeconds (header) {
  var v = headerValue(header, 'retry-after')
  if (v === undefined || v === null || v === '') return undefined
  var n = Number(v)
  if (isFinite(n)) return n
  var at = Date.parse(String(v))
  if (isFinite(at)) return Math.max(0, Math.ceil((at - Date.now()) / 1000))
  return undefined
}

/**
 * responseError turns a non-2xx response into an Error carrying the server's code and message.
 * @param {Response} res
 */
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

/**
 * bodyOf resolves a 2xx response to its body and turns anything else into its Error.
 * @param {Response} res
 * @returns {any}
 */
function bodyOf (res) {
  if (isOK(res)) return res.data
  throw responseError(res)
}

/**
 * createClient returns a session client for one wxsession server.
 *
 * options.baseURL  the server, e.g. 'https://api.example.com' (required)
 * options.wx       the wx API object (defaults to the global wx; tests inject a
 *                  fake; Taro and uni-app apps pass Taro / uni)
 * options.storageKey  where the session is kept (default 'wxsession:session')
 * options.timeout  ms, passed to every wx.request and wx.login (default: the
 *                  app.json networkTimeout, 60 s unless set)
 *
 * @param {{ baseURL: string, wx?: WechatMiniprogram.Wx, storageKey?: string, timeout?: number }} options
 */
function createClient (options) {
  options = options || {}
  var wxApi = /** @type {WechatMiniprogram.Wx} */ (options.wx || (typeof wx !== 'undefined' ? wx : undefined)) // eslint-disable-line no-undef
  if (!wxApi || typeof wxApi.request !== 'function' || typeof wxApi.login !== 'function') {
    throw new TypeError('wxsession: createClient needs the wx API (options.wx, or the global wx in a mini-program)')
  }
  if (typeof options.baseURL !== 'string' || !/^https?:\/\/[^/]/i.test(options.baseURL)) {
    throw new TypeError('wxsession: createClient needs options.baseURL, an http(s) URL such as "https://api.example.com"')
  }
  var baseURL = options.baseURL.replace(/\/+$/, '')
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY
  var timeout = typeof options.timeout === 'number' && options.timeout > 0 ? options.timeout : undefined
  var appId = accountAppId()

  // The session lives in wx storage so it survives restarts, and is read back
  // on every use so that wx.clearStorageSync() (a common "clear cache" button)
  // really logs the user out. `memory` stands in only if storage fails.
  /** @type {Session | null} */
  var memory = null
  var storageFailed = false

  // inflight is the one login every caller shares; loginSeq counts completed
  // logins, so a caller that got a 401 or 409 can tell whether someone else
  // already logged in after it sent its request and need not log in again.
  /** @type {Promise<any> | null} */
  var inflight = null
  var loginSeq = 0

  /**
   * accountAppId is the mini-program's appid from wx.getAccountInfoSync
   * (base library 2.2.2+), sent as X-WX-AppID so that a deployment serving
   * several apps knows which one is asking; '' where the API is missing.
   * @returns {string}
   */
  function accountAppId () {
    if (typeof wxApi.getAccountInfoSync !== 'function') return ''
    try {
      var info = wxApi.getAccountInfoSync()
      var id = info && info.miniProgram && info.miniProgram.appId
      return typeof id === 'string' ? id : ''
    } catch (e) {
      return ''
    }
  }

  /** @returns {Session | null} */
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

  /** @param {Session} s */
  function writeSession (s) {
    memory = s
    try {
      wxApi.setStorageSync(storageKey, s)
      storageFailed = false
    } catch (e) {
      // Storage refused the write (full, say): keep the session in memory,
      // and take the older entry out of storage, or it would come back as
      // the session after a restart.
      storageFailed = true
      try {
        wxApi.removeStorageSync(storageKey)
      } catch (e2) {}
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

  /**
   * forgetIfCurrent drops the stored session when it is the one the server refused.
   * @param {string} skey
   */
  function forgetIfCurrent (skey) {
    var s = readSession()
    if (s && s.skey === skey) clearSession()
  }

  /**
   * @param {Session} s
   * @returns {Session}
   */
  function copySession (s) {
    /** @type {Session} */
    var out = { skey: s.skey, openid: s.openid, expiresAt: s.expiresAt }
    if (s.unionid) out.unionid = s.unionid
    return out
  }

  /** @param {string} url */
  function resolveURL (url) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url
    return baseURL + '/' + url.replace(/^\/+/, '')
  }

  /**
   * send is wx.request as a promise: resolves with every response, rejects only with network_error.
   * @param {WechatMiniprogram.RequestOption} opts
   * @returns {Promise<Response>}
   */
  function send (opts) {
    return new Promise(function (resolve, reject) {
      /** @type {WechatMiniprogram.RequestOption} */
      var o = { url: opts.url }
      copyDefined(o, opts)
      if (o.timeout === undefined && timeout) o.timeout = timeout
      o.success = resolve
      o.fail = function (res) { reject(networkError(res)) }
      try {
        swallow(wxApi.request(o))
      } catch (e) {
        reject(networkError({ errMsg: 'request:fail ' + messageOf(e) }))
      }
    })
  }

  /**
   * @param {string} [skey]
   * @returns {Record<string, string>}
   */
  function jsonHeader (skey) {
    /** @type {Record<string, string>} */
    var h = { 'content-type': 'application/json' }
    if (skey) h.Authorization = 'Bearer ' + skey
    if (appId) h['X-WX-AppID'] = appId
    return h
  }

  /** @returns {Promise<string>} */
  function wxLogin () {
    return new Promise(function (resolve, reject) {
      /** @type {WechatMiniprogram.LoginOption} */
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
        swallow(wxApi.login(o))
      } catch (e) {
        reject(makeError('login_failed', 'wx.login threw: ' + messageOf(e), { cause: e }))
      }
    })
  }

  /**
   * login runs wx.login and POST /login, stores the session and resolves with
   * the server's body. Concurrent calls share one login. Whatever the outcome,
   * the login is over when it settles: a refused one is not kept for the next
   * caller, who runs wx.login afresh.
   * @returns {Promise<any>}
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
      /** @type {Session} */
      var s = {
        skey: body.skey,
        openid: typeof body.openid === 'string' ? body.openid : '',
        expiresAt: typeof body.expires_in === 'number' ? Date.now() + body.expires_in * 1000 : null
      }
      if (body.unionid) s.unionid = body.unionid
      writeSession(s)
      loginSeq++
      return body
    }).then(function (body) {
      // In a handler of its own, after everything that can throw: a throw in
      // the success handler of a .then(ok, fail) never reaches fail.
      inflight = null
      return body
    }, function (err) {
      inflight = null
      throw err
    })
    inflight = p
    return p
  }

  /**
   * current resolves with the session to use, logging in when there is none.
   * @returns {Promise<Use>}
   */
  function current () {
    if (inflight) return inflight.then(afterLogin)
    var s = readSession()
    if (s) return Promise.resolve({ skey: s.skey, seq: loginSeq, fresh: false })
    return login().then(afterLogin)
  }

  /**
   * afterLogin is the session a login made during this call gave.
   * @returns {Use}
   */
  function afterLogin () {
    var s = readSession()
    if (!s) throw makeError('session_required', 'the session was ended (logout) while waiting for login')
    return { skey: s.skey, seq: loginSeq, fresh: true }
  }

  /**
   * renew resolves with a session newer than `used`: the login in flight, the
   * one someone completed since `used` was read, or a fresh one. This is what
   * makes N requests that all got 401 share a single login.
   * @param {Use} used
   * @returns {Promise<Use>}
   */
  function renew (used) {
    if (inflight) return inflight.then(afterLogin)
    if (loginSeq !== used.seq) {
      var s = readSession()
      if (s) return Promise.resolve({ skey: s.skey, seq: loginSeq, fresh: false })
    }
    return login().then(afterLogin)
  }

  /**
   * withSession sends attempt(session) and, on a session error, renews the
   * session once and sends it once more. At most one login per call: when
   * the session refused came from a login made during this very call (no
   * session before, or one that was just being made), another login would
   * not help (an authorizer that refuses everything, say), so the refusal is
   * the answer. A failed login rejects the call and is not tried again.
   * @param {(s: Use) => Promise<Response>} attempt
   * @param {(res: Response) => boolean} shouldRenew
   * @returns {Promise<Response>}
   */
  function withSession (attempt, shouldRenew) {
    return current().then(function (s) {
      return attempt(s).then(function (res) {
        if (!shouldRenew(res)) return res
        if (errorCodeOf(res) === 'session_expired') forgetIfCurrent(s.skey)
        if (s.fresh) return res
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
   * @param {Record<string, any>} opts
   * @returns {Promise<any>}
   */
  function request (opts) {
    if (!opts || typeof opts.url !== 'string') {
      return Promise.reject(new TypeError('wxsession: request needs options.url'))
    }
    var url = opts.url
    /** @param {Use} s */
    function attempt (s) {
      /** @type {WechatMiniprogram.RequestOption} */
      var o = { url: resolveURL(url) }
      copyDefined(o, opts, NOT_PASSED_ON)
      /** @type {Record<string, any>} */
      var header = {}
      var hasAppId = false
      if (opts.header) {
        for (var h in opts.header) {
          if (!hasOwn(opts.header, h) || h.toLowerCase() === 'authorization') continue
          if (h.toLowerCase() === 'x-wx-appid') hasAppId = true
          header[h] = opts.header[h]
        }
      }
      header.Authorization = 'Bearer ' + s.skey
      if (appId && !hasAppId) header['X-WX-AppID'] = appId
      o.header = header
      return send(o)
    }
    return withSession(attempt, isSessionError).then(bodyOf)
  }

  /**
   * @param {any} d
   * @returns {{ encryptedData: string, iv: string, rawData?: string, signature?: string }}
   */
  function decryptBody (d) {
    if (!d || typeof d !== 'object' || typeof d.encryptedData !== 'string' || typeof d.iv !== 'string') {
      throw new TypeError('wxsession: the decrypt getter must give {encryptedData, iv, rawData?, signature?}, e.g. the result of wx.getWeRunData')
    }
    // Only the contract's fields: a wx.* result also carries errMsg, cloudID, ...
    /** @type {{ encryptedData: string, iv: string, rawData?: string, signature?: string }} */
    var body = { encryptedData: d.encryptedData, iv: d.iv }
    if (typeof d.rawData === 'string') body.rawData = d.rawData
    if (typeof d.signature === 'string') body.signature = d.signature
    return body
  }

  /**
   * dataOf resolves a 2xx response to the object in its `data`.
   * @param {Response} res
   */
  function dataOf (res) {
    var body = bodyOf(res)
    return body && typeof body === 'object' ? body.data : body
  }

  /**
   * decrypt ensures a session, gets fresh encrypted data from getter() and has
   * the server decrypt it. On 409 stale_session_key the data was encrypted
   * with a session_key the server no longer has: log in again (which gives the
   * server WeChat's newest key), fetch the data again, retry once. A 401
   * session error is cured the same way: the new login may rotate the key, so
   * the data is fetched again too.
   * @param {() => any} getter
   * @returns {Promise<any>}
   */
  function decrypt (getter) {
    if (typeof getter !== 'function') {
      return Promise.reject(new TypeError('wxsession: decrypt needs a function that returns (a promise of) {encryptedData, iv}'))
    }
    /** @param {Use} s */
    function attempt (s) {
      return Promise.resolve().then(function () { return getter() }).then(function (d) {
        return send({ url: baseURL + '/decrypt', method: 'POST', header: jsonHeader(s.skey), data: decryptBody(d) })
      })
    }
    /** @param {Response} res */
    function shouldRenew (res) {
      return isSessionError(res) || (res.statusCode === 409 && errorCodeOf(res) === 'stale_session_key')
    }
    return withSession(attempt, shouldRenew).then(dataOf)
  }

  /**
   * phoneCodeOf finds the code in a getPhoneNumber button event: e.detail.code
   * as documented, e.detail.detail.code or e.code as some renderers (Skyline)
   * have been reported to deliver it.
   * @param {any} e
   * @returns {{ code: string, errMsg: string, errno: number | undefined }}
   */
  function phoneCodeOf (e) {
    var d = e.detail && typeof e.detail === 'object' ? e.detail : e
    if (!d.code && d.detail && typeof d.detail === 'object') d = d.detail
    return {
      code: typeof d.code === 'string' ? d.code : '',
      errMsg: typeof d.errMsg === 'string' ? d.errMsg : '',
      errno: typeof d.errno === 'number' ? d.errno : undefined
    }
  }

  /**
   * getPhoneNumber takes the getPhoneNumber button's event and trades its
   * one-time code at POST /phonenumber, with the session (the same one
   * re-login on a 401 session error as request). A user who declined leaves
   * no code: that rejects phone_denied and nothing is sent. Resolves with the
   * response's data: {phoneNumber, purePhoneNumber, countryCode, watermark}.
   * @param {any} e
   * @returns {Promise<any>}
   */
  function getPhoneNumber (e) {
    if (!e || typeof e !== 'object') {
      return Promise.reject(new TypeError('wxsession: getPhoneNumber needs the getPhoneNumber button event (bindgetphonenumber)'))
    }
    var p = phoneCodeOf(e)
    if (!p.code) {
      var msg = p.errMsg || 'getPhoneNumber:fail no code in the event'
      return Promise.reject(makeError('phone_denied', msg, { errMsg: p.errMsg || undefined, errno: p.errno }))
    }
    /** @param {Use} s */
    function attempt (s) {
      return send({ url: baseURL + '/phonenumber', method: 'POST', header: jsonHeader(s.skey), data: { code: p.code } })
    }
    return withSession(attempt, isSessionError).then(dataOf)
  }

  /**
   * logout ends the session on the server and forgets it here; with
   * { all: true } the server ends every session of the user (every device).
   * The local session is forgotten first and whatever happens next: a user
   * who taps "log out" offline is logged out of this device. If the server
   * could not be told, the promise rejects (network_error, or the server's
   * code) so the app knows the skey stays valid server-side until it expires.
   * @param {{ all?: boolean }} [opts]
   * @returns {Promise<void>}
   */
  function logout (opts) {
    var all = !!(opts && opts.all === true)
    var waitLogin = inflight ? inflight.then(noop, noop) : Promise.resolve()
    return waitLogin.then(function () {
      var s = readSession()
      clearSession()
      if (!s) return undefined
      /** @type {WechatMiniprogram.RequestOption} */
      var o = { url: baseURL + '/logout', method: 'POST', header: jsonHeader(s.skey) }
      if (all) o.data = { all: true }
      return send(o).then(function (res) {
        // 204, or a 401 saying the session had already ended: either way it is gone.
        if (isOK(res) || isSessionError(res)) return undefined
        throw responseError(res)
      })
    })
  }

  /** @returns {Promise<boolean>} */
  function checkSession () {
    return new Promise(function (resolve) {
      if (typeof wxApi.checkSession !== 'function') return resolve(true)
      try {
        swallow(wxApi.checkSession({
          success: function () { resolve(true) },
          fail: function () { resolve(false) }
        }))
      } catch (e) {
        resolve(false)
      }
    })
  }

  /** @param {Session} s */
  function isExpired (s) {
    return typeof s.expiresAt === 'number' && s.expiresAt - EXPIRY_MARGIN_MS <= Date.now()
  }

  /** @returns {Session} */
  function sessionAfterLogin () {
    var s = readSession()
    if (!s) throw makeError('session_required', 'the session was ended (logout) while waiting for login')
    return copySession(s)
  }

  /**
   * ensureSession is for App.onLaunch: keeps the stored session when WeChat's
   * own login state is still good (wx.checkSession) and its known expiry has
   * not passed, logs in otherwise. Resolves with the session (getSession()).
   * @returns {Promise<Session>}
   */
  function ensureSession () {
    if (inflight) return inflight.then(sessionAfterLogin)
    var s = readSession()
    if (!s) return login().then(sessionAfterLogin)
    var before = s
    return checkSession().then(function (ok) {
      if (inflight) return inflight.then(sessionAfterLogin)
      var now = readSession()
      // A session that changed while wx.checkSession ran came from a login
      // that just finished: it is as fresh as one can get.
      if (now && now.skey !== before.skey) return copySession(now)
      if (!now || !ok) return login().then(sessionAfterLogin)
      if (!isExpired(now)) return copySession(now)
      // Past the expiry known locally: the server slides sessions as they
      // are used, so ask it before paying for a login.
      return validate().then(function () {
        return sessionAfterLogin()
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
   * @returns {Promise<any>}
   */
  function validate () {
    var waitLogin = inflight ? inflight.then(noop, noop) : Promise.resolve()
    return waitLogin.then(function () {
      var s = readSession()
      if (!s) throw makeError('session_required', 'no session: call login() or ensureSession() first')
      var skey = s.skey
      /** @type {Record<string, string>} */
      var header = { Authorization: 'Bearer ' + skey }
      if (appId) header['X-WX-AppID'] = appId
      return send({ url: baseURL + '/validate', method: 'GET', header: header }).then(function (res) {
        if (res.statusCode === 401 && errorCodeOf(res) === 'session_expired') forgetIfCurrent(skey)
        var body = bodyOf(res)
        var now = readSession()
        if (now && now.skey === skey && body && typeof body === 'object') {
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

  /**
   * getSkey returns the stored skey, or null when there is no session.
   * @returns {string | null}
   */
  function getSkey () {
    var s = readSession()
    return s ? s.skey : null
  }

  /**
   * getSession returns a copy of the stored session {skey, openid, unionid?, expiresAt}, or null.
   * @returns {Session | null}
   */
  function getSession () {
    var s = readSession()
    return s ? copySession(s) : null
  }

  return {
    login: login,
    ensureSession: ensureSession,
    request: request,
    decrypt: decrypt,
    getPhoneNumber: getPhoneNumber,
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

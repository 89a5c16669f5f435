'use strict'

// A fake of the wx.* APIs the client uses, for node --test. wx.request does
// real HTTP with node:http(s), and behaves as WeChat's does where the client
// can tell: GET data becomes the query string, other data is sent as JSON
// (WeChat's default content-type), a JSON response body arrives parsed, a
// non-JSON one as a string, transport errors and timeouts call fail with an
// errMsg. Lives outside test/ because node --test runs every .js under test/.

const http = require('node:http')
const https = require('node:https')

/**
 * createWeChat models WeChat's side of a mini-program's login: every wx.login
 * hands out a single-use code and (as WeChat may) rotates the user's
 * session_key; encrypted data (wx.getWeRunData) is encrypted with the key
 * WeChat holds now. Keys are version numbers; "encryption" is base64 JSON
 * tagged with the version, which is all a client test needs to see a stale key.
 */
function createWeChat () {
  const users = new Map()
  const codes = new Map()
  const phoneCodes = new Map()
  let n = 0
  function user (name) {
    if (!users.has(name)) users.set(name, { openid: 'openid-' + name, keyVersion: 0 })
    return users.get(name)
  }
  return {
    openidOf (name) { return user(name).openid },
    /** issueCode is what wx.login does on WeChat's side. */
    issueCode (name) {
      const u = user(name)
      u.keyVersion++
      const code = 'code-' + (++n) + '-' + name
      codes.set(code, { openid: u.openid, keyVersion: u.keyVersion })
      return code
    },
    /** redeem is jscode2session: the code's openid and session_key, once. */
    redeem (code) {
      const c = codes.get(code)
      if (!c) return null
      codes.delete(code)
      return c
    },
    /**
     * issuePhoneCode is what the getPhoneNumber button hands the page when
     * the user agrees: a one-time code for the user's phone number.
     */
    issuePhoneCode (name, phoneNumber) {
      const u = user(name)
      const code = 'phone-' + (++n) + '-' + name
      phoneCodes.set(code, { openid: u.openid, phoneNumber: phoneNumber || '13800138000' })
      return code
    },
    /** redeemPhoneCode is getuserphonenumber: the code's phone, once. */
    redeemPhoneCode (code) {
      const c = phoneCodes.get(code)
      if (!c) return null
      phoneCodes.delete(code)
      return c
    },
    /** rotate changes a user's session_key as a wx.login made elsewhere would. */
    rotate (name) { user(name).keyVersion++ },
    /** encrypt returns what wx.getWeRunData gives, under the user's current key. */
    encrypt (name, steps) {
      const u = user(name)
      const payload = { openid: u.openid, keyVersion: u.keyVersion, data: { stepInfoList: [{ timestamp: 1700000000, step: steps === undefined ? 4321 : steps }] } }
      return {
        errMsg: 'getWeRunData:ok',
        encryptedData: Buffer.from(JSON.stringify(payload)).toString('base64'),
        iv: Buffer.from('0123456789abcdef').toString('base64'),
        cloudID: 'cloud-id-not-used'
      }
    },
    /** open reverses encrypt; the stub server uses it with the key it holds. */
    open (encryptedData) {
      return JSON.parse(Buffer.from(encryptedData, 'base64').toString('utf8'))
    }
  }
}

/**
 * createFakeWx returns a wx object.
 *   opts.codeSource  () => code or Promise<code> for wx.login (default: wechat.issueCode(user))
 *   opts.wechat, opts.user  the WeChat model and the user this phone belongs to
 *   opts.loginDelay  ms before wx.login calls back (default 5)
 *   opts.appId  gives the fake wx.getAccountInfoSync, answering this appid
 *               (without it the API is missing, as before base library 2.2.2)
 * Knobs on the result: failLogin (an errMsg makes wx.login fail), sessionValid
 * (what wx.checkSession says), werunDenied; counters in calls; every request in requests.
 */
function createFakeWx (opts) {
  opts = opts || {}
  const wechat = opts.wechat
  const userName = opts.user || 'alice'
  const codeSource = opts.codeSource || (() => wechat.issueCode(userName))
  const storage = new Map()

  const fake = {
    calls: { login: 0, request: 0, checkSession: 0, getWeRunData: 0 },
    requests: [],
    failLogin: null,
    sessionValid: true,
    werunDenied: false,
    storage,

    login (o) {
      fake.calls.login++
      setTimeout(() => {
        if (fake.failLogin) return o.fail && o.fail({ errMsg: fake.failLogin })
        Promise.resolve().then(codeSource).then(
          code => o.success && o.success({ code, errMsg: 'login:ok' }),
          err => o.fail && o.fail({ errMsg: 'login:fail ' + err.message })
        )
      }, opts.loginDelay === undefined ? 5 : opts.loginDelay)
    },

    checkSession (o) {
      fake.calls.checkSession++
      setTimeout(() => {
        if (fake.sessionValid) o.success && o.success({ errMsg: 'checkSession:ok' })
        else o.fail && o.fail({ errMsg: 'checkSession:fail session time out, need relogin' })
      }, 1)
    },

    getWeRunData (o) {
      fake.calls.getWeRunData++
      setTimeout(() => {
        if (fake.werunDenied) return o.fail && o.fail({ errMsg: 'getWeRunData:fail auth deny' })
        o.success && o.success(wechat.encrypt(userName))
      }, 1)
    },

    getStorageSync (key) {
      // WeChat answers '' for a missing key, and stores a serialized copy.
      return storage.has(key) ? JSON.parse(storage.get(key)) : ''
    },
    setStorageSync (key, value) { storage.set(key, JSON.stringify(value)) },
    removeStorageSync (key) { storage.delete(key) },
    clearStorageSync () { storage.clear() },

    getAccountInfoSync: opts.appId
      ? () => ({ miniProgram: { appId: opts.appId, envVersion: 'develop', version: '' }, plugin: {} })
      : undefined,

    request (o) {
      fake.calls.request++
      const method = (o.method || 'GET').toUpperCase()
      const header = Object.assign({}, o.header)
      if (!Object.keys(header).some(k => k.toLowerCase() === 'content-type')) header['content-type'] = 'application/json'
      fake.requests.push({ url: o.url, method, header, data: o.data })

      let url
      try {
        url = new URL(o.url)
      } catch (e) {
        return setImmediate(() => o.fail && o.fail({ errMsg: 'request:fail invalid url "' + o.url + '"' }))
      }
      let body = null
      if (o.data !== undefined && o.data !== null) {
        if (method === 'GET') {
          if (typeof o.data === 'object') {
            for (const [k, v] of Object.entries(o.data)) url.searchParams.append(k, String(v))
          } else {
            url.search += (url.search ? '&' : '') + String(o.data)
          }
        } else if (typeof o.data === 'string') {
          body = o.data
        } else {
          const ct = Object.entries(header).find(([k]) => k.toLowerCase() === 'content-type')[1]
          body = /x-www-form-urlencoded/.test(ct) ? new URLSearchParams(o.data).toString() : JSON.stringify(o.data)
        }
      }

      let done = false
      const finish = (fn, arg) => {
        if (done) return
        done = true
        if (fn) fn(arg)
      }
      const lib = url.protocol === 'https:' ? https : http
      const headers = Object.assign({}, header)
      if (body !== null) headers['content-length'] = Buffer.byteLength(body)
      const req = lib.request(url, { method, headers }, res => {
        const chunks = []
        res.on('data', c => chunks.push(c))
        res.on('end', () => {
          const raw = Buffer.concat(chunks)
          const text = raw.toString('utf8')
          let data = text
          if (o.responseType === 'arraybuffer') {
            // WeChat hands the bytes over as they came, whatever dataType says.
            data = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)
          } else if ((o.dataType || 'json') === 'json') {
            try { data = JSON.parse(text) } catch (e) { data = text }
          }
          finish(o.success, { statusCode: res.statusCode, data, header: res.headers, errMsg: 'request:ok' })
        })
        res.on('error', err => finish(o.fail, { errMsg: 'request:fail ' + err.message }))
      })
      req.on('error', err => finish(o.fail, { errMsg: 'request:fail ' + err.message }))
      if (o.timeout) {
        req.setTimeout(o.timeout, () => {
          finish(o.fail, { errMsg: 'request:fail timeout' })
          req.destroy()
        })
      }
      if (body !== null) req.write(body)
      req.end()
    }
  }
  return fake
}

/** promisify turns a wx-style API (success/fail callbacks) into a promise-returning function. */
function promisify (fn) {
  return (o) => new Promise((resolve, reject) => fn(Object.assign({}, o, { success: resolve, fail: reject })))
}

/**
 * taroOf wraps a fake wx as Taro's API object does on WeChat (@tarojs/shared
 * processApis, getNormalRequest): login, checkSession and request call the
 * caller's success/fail and also return a promise, rejected when fail runs.
 * Everything else passes through.
 */
function taroOf (wx) {
  const taro = Object.create(wx)
  for (const key of ['login', 'checkSession', 'request']) {
    taro[key] = (options) => {
      options = options || {}
      const obj = Object.assign({}, options)
      return new Promise((resolve, reject) => {
        obj.success = res => { if (options.success) options.success(res); resolve(res) }
        obj.fail = res => { if (options.fail) options.fail(res); reject(res) }
        obj.complete = res => { if (options.complete) options.complete(res) }
        wx[key](obj)
      })
    }
  }
  taro.calls = wx.calls
  return taro
}

/**
 * uniOf wraps a fake wx as uni-app's API object does (Vue 3 promisify):
 * called with success/fail/complete an async API behaves as wx's and
 * returns what wx's returns; called without any it returns a promise
 * instead, rejected on failure.
 */
function uniOf (wx) {
  const uni = Object.create(wx)
  for (const key of ['login', 'checkSession', 'request']) {
    uni[key] = (options) => {
      options = options || {}
      if (options.success || options.fail || options.complete) return wx[key](options)
      return new Promise((resolve, reject) => wx[key](Object.assign({}, options, { success: resolve, fail: reject })))
    }
  }
  uni.calls = wx.calls
  return uni
}

module.exports = { createWeChat, createFakeWx, promisify, taroOf, uniOf }

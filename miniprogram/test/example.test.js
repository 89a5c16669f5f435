'use strict'

// Runs the example mini-program (example/app.js and its page) as WeChat
// would: wx, App, Page and getApp as globals, module files wrapped as
// CommonJS, and the library found through the global wx rather than an
// injected one. Only the example's config is swapped for the stub's URL.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const vm = require('node:vm')
const { setup } = require('../testing/setup')

const root = path.join(__dirname, '..')
const exampleDir = path.join(root, 'example')

/** miniProgram loads files as the mini-program runtime would, with the given globals. */
function miniProgram (globals, overrides) {
  const cache = new Map()
  const names = Object.keys(globals)
  function load (file) {
    if (cache.has(file)) return cache.get(file).exports
    const module = { exports: {} }
    cache.set(file, module)
    const src = fs.readFileSync(file, 'utf8')
    const fn = vm.runInThisContext('(function (require, module, exports, ' + names.join(', ') + ') {' + src + '\n})', { filename: file })
    const dir = path.dirname(file)
    const req = (spec) => {
      const target = path.resolve(dir, spec)
      if (overrides[target]) return overrides[target]
      // The example expects wxsession.js copied beside app.js; use the original.
      if (target === path.join(exampleDir, 'wxsession')) return load(path.join(root, 'wxsession.js'))
      return load(target.endsWith('.js') ? target : target + '.js')
    }
    fn.apply(null, [req, module, module.exports].concat(names.map(n => globals[n])))
    return module.exports
  }
  return load
}

test('example: launch, profile via request, WeRun steps via decrypt, phone number, logout', async (t) => {
  const { stub, wx, wechat } = await setup(t)
  let app = null
  let pageDef = null
  const quiet = { log () {}, warn () {}, error () {} }
  const load = miniProgram({
    wx,
    App: (def) => { app = def },
    Page: (def) => { pageDef = def },
    getApp: () => app,
    console: quiet
  }, { [path.join(exampleDir, 'config')]: { baseURL: stub.url } })

  load(path.join(exampleDir, 'app.js'))
  assert.ok(app && app.client, 'App() registered with a client')
  load(path.join(exampleDir, 'pages', 'index', 'index.js'))
  const page = Object.assign({}, pageDef, { data: Object.assign({}, pageDef.data) })
  page.setData = function (d) { Object.assign(this.data, d) }

  app.onLaunch()
  await page.onLoad()
  assert.equal(page.data.message, '')
  assert.equal(page.data.openid, 'openid-alice')
  assert.equal(wx.calls.login, 1, 'the page request joined the launch login')

  await page.onStepsTap()
  assert.equal(page.data.steps, 4321)

  // The phone-number button: declined, then agreed.
  await page.onPhoneNumber({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:fail user deny' } })
  assert.equal(page.data.message, 'No phone number shared')
  assert.equal(stub.count('/phonenumber'), 0)
  await page.onPhoneNumber({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code: wechat.issuePhoneCode('alice', '13700000000') } })
  assert.equal(page.data.phone, '13700000000')
  assert.equal(page.data.message, '')

  await page.onLogoutTap()
  assert.equal(page.data.openid, '')
  assert.equal(page.data.message, 'Logged out')
  assert.equal(stub.count('/logout'), 1)
  assert.equal(wx.getStorageSync('wxsession:session'), '')

  // Errors reach the page as code: message.
  wx.failLogin = 'login:fail offline'
  await page.loadProfile()
  assert.equal(page.data.message, 'login_failed: login:fail offline')

  // The page file really is in the page's wxml.
  const wxml = fs.readFileSync(path.join(exampleDir, 'pages', 'index', 'index.wxml'), 'utf8')
  for (const handler of ['onStepsTap', 'onLogoutTap', 'loadProfile']) assert.match(wxml, new RegExp('bindtap="' + handler + '"'))
  assert.match(wxml, /<button open-type="getPhoneNumber" bindgetphonenumber="onPhoneNumber">/)
})

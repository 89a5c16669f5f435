'use strict'

// setup wires one test's world: the WeChat model, a stub server on a free
// port (closed when the test ends), a fake wx for user alice and a client.

const path = require('node:path')
const { createWeChat, createFakeWx } = require('./fake-wx')
const { startStub } = require('./stub-server')
const { createClient } = require(path.join(__dirname, '..', 'wxsession.js'))

async function setup (t, opts) {
  opts = opts || {}
  const wechat = createWeChat()
  const stub = await startStub({ wechat, ttl: opts.ttl })
  t.after(() => stub.close())
  const wx = createFakeWx({ wechat, user: opts.user || 'alice' })
  const client = createClient(Object.assign({ baseURL: stub.url, wx }, opts.client))
  return { wechat, stub, wx, client, createClient }
}

/** closedPort returns a local URL nothing listens on. */
async function closedURL () {
  const net = require('node:net')
  const srv = net.createServer()
  await new Promise(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = srv.address().port
  await new Promise(resolve => srv.close(resolve))
  return 'http://127.0.0.1:' + port
}

module.exports = { setup, closedURL, createClient }

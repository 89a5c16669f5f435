// wxsession example mini-program.
//
// wxsession.js must sit next to this file: run `npm run example` in
// miniprogram/ (it copies ../wxsession.js here), or copy it by hand. In your
// own mini-program put it wherever you keep libraries, e.g. utils/.

const { createClient } = require('./wxsession')
const config = require('./config')

// One client for the whole app; pages reach it through getApp().client.
const client = createClient({ baseURL: config.baseURL })

App({
  client,

  onLaunch () {
    // Keep the stored session if WeChat's login state is still good, log in
    // otherwise. Pages need not wait for it: client.request() joins a login
    // in flight, so the first request never starts a second one.
    client.ensureSession().catch(err => {
      console.warn('wxsession: login failed at launch', err.code, err.message)
    })
  }
})

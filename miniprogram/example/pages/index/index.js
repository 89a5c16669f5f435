const { client } = getApp()

// wx.getWeRunData as a promise: the decrypt getter. decrypt calls it again
// after a re-login, because data encrypted before the login may be stale.
function getWeRunData () {
  return new Promise((resolve, reject) => {
    wx.getWeRunData({ success: resolve, fail: reject })
  })
}

Page({
  data: {
    openid: '',
    steps: null,
    phone: '',
    message: ''
  },

  onLoad () {
    return this.loadProfile()
  },

  // Any route of your own API is called the same way; GET /validate is one
  // every wxsession server has. request() logs in when there is no session
  // and once more if the server says it expired.
  loadProfile () {
    return client.request({ url: '/validate' })
      .then(body => this.setData({ openid: body.openid, message: '' }))
      .catch(err => this.showError(err))
  },

  onStepsTap () {
    return client.decrypt(getWeRunData)
      .then(data => {
        const days = data.stepInfoList || []
        this.setData({ steps: days.length ? days[days.length - 1].step : 0, message: '' })
      })
      .catch(err => this.showError(err))
  },

  // The phone-number button's event goes to the client as it comes: it sends
  // the one-time code in e.detail.code to your server (POST /phonenumber).
  // A user who declined gives no code: phone_denied, and nothing is sent.
  onPhoneNumber (e) {
    return client.getPhoneNumber(e)
      .then(phone => this.setData({ phone: phone.phoneNumber, message: '' }))
      .catch(err => {
        if (err.code === 'phone_denied') return this.setData({ message: 'No phone number shared' })
        this.showError(err)
      })
  },

  onLogoutTap () {
    // logout() forgets the session on this phone whatever happens; it rejects
    // only to say the server could not be told (the skey then lives on there
    // until it expires).
    return client.logout()
      .catch(err => console.warn('wxsession: server not told of logout', err.code))
      .then(() => this.setData({ openid: '', steps: null, phone: '', message: 'Logged out' }))
  },

  showError (err) {
    // err.code is the server's error code (session_expired, rate_limited, ...)
    // or network_error / login_failed; a wx.getWeRunData failure has errMsg.
    this.setData({ message: (err.code || 'error') + ': ' + (err.message || err.errMsg) })
  }
})

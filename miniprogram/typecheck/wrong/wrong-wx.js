// Deliberately wrong: wx.* calls as a careless copy of the library might
// make them; the JSDoc type puts them under WeChat's official typings.
'use strict'

/** @param {WechatMiniprogram.Wx} wxApi */
function send (wxApi) {
  wxApi.request({
    url: 'https://api.example.com/orders',
    headers: { Authorization: 'Bearer x' }, // wrong: headers
    success: function (res) {
      if (res.status === 401) return // wrong: status
      console.log(res.statusCode, res.data, res.header)
    }
  })
  wxApi.login({ timeOut: 1000 }) // wrong: timeOut
  wxApi.getStorageSync() // wrong: key
}

module.exports = { send }

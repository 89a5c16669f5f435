// Deliberately wrong: test/typecheck.test.js expects tsc to refuse each line
// marked "wrong:" here, proving the check catches misspelt option and field
// names. Never part of the real check (tsconfig.json does not include it).

import { createClient } from '../../wxsession'

const client = createClient({ baseURL: 'https://api.example.com', wx })

client.request({ url: '/orders', headers: { 'X-App': 'demo' } }) // wrong: headers
client.request({ url: '/orders', method: 'PATCH' }) // wrong: PATCH
client.logout({ everyDevice: true }) // wrong: everyDevice
client.request({ url: '/orders' }).catch((err) => {
  if (err.status === 401) return
})
client.login().then((r) => r.expiresIn) // wrong: expiresIn

// A getter that gives wx.login's result is not encrypted data.
client.decrypt(() => new Promise<WechatMiniprogram.LoginSuccessCallbackResult>((resolve) => wx.login({ success: resolve }))) // wrong: getter

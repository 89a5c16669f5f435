// usage.ts is compiled (never run) by `tsc -p .` in test/typecheck.test.js:
// every public method of the client, called as the README shows, with
// WeChat's own result types from miniprogram-api-typings passed in.

import { createClient, DEFAULT_STORAGE_KEY, Client, Session, LoginResult, ValidateResult, PhoneNumber, WxSessionError, RequestOptions, EncryptedData } from '../wxsession'

declare const werun: WechatMiniprogram.GetWeRunDataSuccessCallbackResult

const client: Client = createClient({ baseURL: 'https://api.example.com' })
const withWx = createClient({ baseURL: 'https://api.example.com', wx, storageKey: DEFAULT_STORAGE_KEY, timeout: 10000 })

App({
  onLaunch () {
    client.ensureSession().then((s: Session) => s.expiresAt).catch((err: WxSessionError) => console.warn('login failed', err.code))
  }
})

async function everything (): Promise<void> {
  const login: LoginResult = await client.login()
  const skey: string = login.skey
  const session: Session = await client.ensureSession()
  const v: ValidateResult = await client.validate()
  const stored: Session | null = withWx.getSession()
  const current: string | null = client.getSkey()

  // request: wx.request's own options, as WeChat's typings declare them.
  const orders = await client.request<{ id: string }[]>({ url: '/orders', method: 'GET' })
  await client.request({ url: '/orders', method: 'POST', data: { item: 'tea' }, header: { 'X-App': 'demo' }, timeout: 5000, dataType: 'json' })
  const file = await client.request<ArrayBuffer>({ url: '/report.pdf', responseType: 'arraybuffer', enableHttp2: true })
  const wechatOptions: WechatMiniprogram.RequestOption = { url: '/orders', method: 'PUT', data: { a: 1 }, header: { x: '1' } }
  await client.request(wechatOptions)
  const mine: RequestOptions = wechatOptions

  // decrypt: a wx.getWeRunData success result, directly or through a promise.
  const getWeRunData = () => new Promise<WechatMiniprogram.GetWeRunDataSuccessCallbackResult>((resolve, reject) =>
    wx.getWeRunData({ success: resolve, fail: reject }))
  const steps = await client.decrypt<{ stepInfoList: { timestamp: number, step: number }[] }>(getWeRunData)
  const today: number = steps.stepInfoList[steps.stepInfoList.length - 1].step
  await client.decrypt(() => werun)
  const asData: EncryptedData = werun

  // logout, this device or every device.
  await client.logout()
  await client.logout({ all: true })

  console.log(skey, session, v, stored, current, orders, file, mine, today, asData)
}

// getPhoneNumber: the button's event, typed as WeChat types it.
Page({
  onPhone (e: WechatMiniprogram.ButtonGetPhoneNumber) {
    client.getPhoneNumber(e)
      .then((p: PhoneNumber) => console.log(p.phoneNumber, p.purePhoneNumber, p.countryCode, p.watermark.appid))
      .catch((err: WxSessionError) => {
        if (err.code === 'phone_denied') return
        console.warn(err.code, err.status, err.retryAfter)
      })
  }
})

everything()

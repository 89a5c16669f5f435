// Type declarations for wxsession.js, the wxsession mini-program client.

/** Error codes a rejection can carry: the server's, plus the client's own. */
export type WxSessionErrorCode =
  | 'invalid_request'
  | 'session_required'
  | 'session_expired'
  | 'invalid_code'
  | 'code_blocked'
  | 'method_not_allowed'
  | 'not_found'
  | 'stale_session_key'
  | 'payload_too_large'
  | 'rate_limited'
  | 'wechat_unavailable'
  | 'store_unavailable'
  | 'internal'
  /** POST /phonenumber: WeChat refused the getPhoneNumber code (expired, used, or not this app's). */
  | 'invalid_phone_code'
  /** getPhoneNumber: the button event carries no code (the user declined); nothing was sent. */
  | 'phone_denied'
  /** wx.request failed (no connection, DNS, TLS, timeout): there was no response. */
  | 'network_error'
  /** wx.login failed, or POST /login got no response. */
  | 'login_failed'
  /** A non-2xx response without a `{"error": ...}` body (e.g. a gateway's HTML page). */
  | 'http_error'
  /** Any other code your own API answers with in `{"error": ...}`. */
  | (string & {})

/** WxSessionError is what every rejection of the client is (except TypeErrors for misuse and a decrypt getter's own errors). */
export interface WxSessionError extends Error {
  name: 'WxSessionError'
  code: WxSessionErrorCode
  /** The server's message, or wx's errMsg before any response. */
  message: string
  /** HTTP status; absent when there was no response (network_error, login_failed). */
  status?: number
  /** The response body: parsed when it is JSON; decoded from UTF-8 when it came as an ArrayBuffer (responseType 'arraybuffer'). */
  data?: unknown
  /** The response headers. */
  header?: Record<string, string>
  /** Seconds to wait, from Retry-After (rate_limited). */
  retryAfter?: number
  /** wx's errMsg for network_error and login_failed. */
  errMsg?: string
  errno?: number
  /** The underlying error, e.g. the network_error behind a login_failed. */
  cause?: unknown
}

export interface ClientOptions {
  /** The wxsession server, e.g. 'https://api.example.com'. Relative request URLs are resolved against it. */
  baseURL: string
  /**
   * The wx API object; defaults to the global `wx`. Taro and uni-app apps pass `Taro` / `uni`.
   * Typed loosely on purpose: those objects are wx-shaped but not `WechatMiniprogram.Wx`.
   */
  wx?: any
  /** Storage key for the session; default 'wxsession:session'. */
  storageKey?: string
  /** Milliseconds for every wx.request and wx.login; default app.json's networkTimeout (60 s). */
  timeout?: number
}

/** LoginResult is the body of POST /login. */
export interface LoginResult {
  skey: string
  /** Seconds until the session expires unless it is used (it slides with use). */
  expires_in: number
  openid: string
  unionid?: string
}

/** Session is what the client keeps in storage. */
export interface Session {
  skey: string
  openid: string
  unionid?: string
  /** When the session expires as far as the client knows (ms since the epoch), or null if unknown. */
  expiresAt: number | null
}

/** ValidateResult is the body of GET /validate. */
export interface ValidateResult {
  openid: string
  unionid?: string
  expires_in: number
}

/**
 * EncryptedData is what a decrypt getter gives: a wx.getWeRunData success result
 * (`WechatMiniprogram.GetWeRunDataSuccessCallbackResult`) will do; only these fields are sent.
 * No index signature, so WeChat's own result interfaces are assignable to it.
 */
export interface EncryptedData {
  encryptedData: string
  iv: string
  rawData?: string
  signature?: string
}

/**
 * PhoneNumberEvent is the getPhoneNumber button's event (`bindgetphonenumber`;
 * `WechatMiniprogram.ButtonGetPhoneNumber` will do): `detail.code` when the user agreed,
 * no code (and an errMsg such as 'getPhoneNumber:fail user deny') when not.
 */
export interface PhoneNumberEvent {
  detail: {
    code?: string
    errMsg?: string
    errno?: number
  }
}

/** PhoneNumber is the `data` of POST /phonenumber. */
export interface PhoneNumber {
  /** With the country code for numbers outside mainland China. */
  phoneNumber: string
  purePhoneNumber: string
  countryCode: string
  watermark: { appid: string; timestamp: number }
}

/** The methods wx.request takes (WeChat's list; it has no PATCH). */
export type RequestMethod = 'OPTIONS' | 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'TRACE' | 'CONNECT'

/**
 * RequestOptions are wx.request's options without the callbacks (which the client ignores);
 * `url` may be relative to baseURL. A `WechatMiniprogram.RequestOption` is assignable to it.
 * No index signature: a misspelt option (`headers` for `header`) is a type error.
 */
export interface RequestOptions {
  url: string
  method?: RequestMethod
  data?: string | Record<string, any> | ArrayBuffer
  /** Your headers; Authorization (and X-WX-AppID unless you set it) are set by the client. */
  header?: Record<string, any>
  /** Overrides the client's timeout for this request. */
  timeout?: number
  dataType?: string
  /** 'arraybuffer' resolves 2xx bodies as ArrayBuffer; error bodies are decoded (UTF-8 JSON) for their code. */
  responseType?: 'text' | 'arraybuffer'
  enableCache?: boolean
  enableChunked?: boolean
  enableHttp2?: boolean
  enableHttpDNS?: boolean
  enableHttpDNSFallback?: boolean
  enableProfile?: boolean
  enableQuic?: boolean
  forceCellularNetwork?: boolean
  httpDNSServiceId?: string
  httpDNSTimeout?: number
  redirect?: 'follow' | 'manual'
  useHighPerformanceMode?: boolean
}

/** LogoutOptions: `all` ends every session of the user (every device), not only this one. */
export interface LogoutOptions {
  all?: boolean
}

export interface Client {
  /**
   * wx.login then POST /login; stores the session. Concurrent calls share one login.
   * A refused login rejects its callers and is forgotten: the next call runs wx.login again.
   */
  login(): Promise<LoginResult>
  /** For App.onLaunch: keeps the stored session while wx.checkSession succeeds (asking GET /validate once its known expiry has passed, since sessions slide), logs in otherwise. */
  ensureSession(): Promise<Session>
  /**
   * wx.request with `Authorization: Bearer <skey>`; logs in first when there is no session;
   * on 401 session_expired/session_required logs in once (shared) and retries once; at most one
   * login per call. Resolves with the body of a 2xx response (an ArrayBuffer with responseType 'arraybuffer').
   */
  request<T = any>(options: RequestOptions): Promise<T>
  /**
   * Ensures a session, calls getter for fresh encrypted data, POST /decrypt; on 409
   * stale_session_key (or a 401 session error) logs in again, calls getter again, retries once.
   * Resolves with the decrypted object (watermark included).
   */
  decrypt<T = any>(getter: () => EncryptedData | PromiseLike<EncryptedData>): Promise<T>
  /**
   * For the getPhoneNumber button's event: POST /phonenumber with `e.detail.code` and the session
   * (logging in first, and once more on a 401 session error). Rejects `phone_denied` without a
   * request when the event has no code (the user declined). Resolves with the response's data.
   */
  getPhoneNumber(e: PhoneNumberEvent): Promise<PhoneNumber>
  /** GET /validate: checks the session and records its current expiry. Never logs in. */
  validate(): Promise<ValidateResult>
  /**
   * Forgets the session on this device (always) and revokes it on the server (POST /logout);
   * with `{ all: true }` the server ends every session of this user. Rejects if the server could not be told.
   */
  logout(options?: LogoutOptions): Promise<void>
  /** The stored skey, or null. */
  getSkey(): string | null
  /** A copy of the stored session, or null. */
  getSession(): Session | null
}

/**
 * createClient makes a client for one wxsession server. Throws TypeError without a wx API or a baseURL.
 * Where wx.getAccountInfoSync exists, every request it sends (login included) carries X-WX-AppID.
 */
export function createClient(options: ClientOptions): Client

/** The storage key used when createClient is not given one. */
export const DEFAULT_STORAGE_KEY: string

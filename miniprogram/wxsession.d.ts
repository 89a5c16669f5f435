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
  /** The response body as received. */
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
  /** The wx API object; defaults to the global `wx`. */
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

/** EncryptedData is what a decrypt getter gives: a wx.getWeRunData / getPhoneNumber / getUserProfile result will do. */
export interface EncryptedData {
  encryptedData: string
  iv: string
  rawData?: string
  signature?: string
  [other: string]: unknown
}

/** RequestOptions are wx.request's options without the callbacks; `url` may be relative to baseURL. */
export interface RequestOptions {
  url: string
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS' | 'TRACE' | 'CONNECT' | string
  data?: string | object | ArrayBuffer
  /** Your headers; Authorization is set by the client. */
  header?: Record<string, string>
  /** Overrides the client's timeout for this request. */
  timeout?: number
  dataType?: 'json' | string
  responseType?: 'text' | 'arraybuffer'
  [other: string]: unknown
}

export interface Client {
  /** wx.login then POST /login; stores the session. Concurrent calls share one login. */
  login(): Promise<LoginResult>
  /** For App.onLaunch: keeps the stored session while wx.checkSession succeeds (asking GET /validate once its known expiry has passed, since sessions slide), logs in otherwise. */
  ensureSession(): Promise<Session>
  /**
   * wx.request with `Authorization: Bearer <skey>`; logs in first when there is no session;
   * on 401 session_expired/session_required logs in once (shared) and retries once.
   * Resolves with the body of a 2xx response.
   */
  request<T = any>(options: RequestOptions): Promise<T>
  /**
   * Ensures a session, calls getter for fresh encrypted data, POST /decrypt; on 409
   * stale_session_key (or a 401 session error) logs in again, calls getter again, retries once.
   * Resolves with the decrypted object (watermark included).
   */
  decrypt<T = any>(getter: () => EncryptedData | Promise<EncryptedData>): Promise<T>
  /** GET /validate: checks the session and records its current expiry. Never logs in. */
  validate(): Promise<ValidateResult>
  /** Forgets the session on this device (always) and revokes it on the server (POST /logout); rejects if the server could not be told. */
  logout(): Promise<void>
  /** The stored skey, or null. */
  getSkey(): string | null
  /** A copy of the stored session, or null. */
  getSession(): Session | null
}

/** createClient makes a client for one wxsession server. Throws TypeError without a wx API or a baseURL. */
export function createClient(options: ClientOptions): Client

/** The storage key used when createClient is not given one. */
export const DEFAULT_STORAGE_KEY: string

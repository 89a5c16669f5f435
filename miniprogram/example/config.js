// Your wxsession server. Add its domain to the mini-program's request
// domains (mp.weixin.qq.com -> Development -> Server domain). For a server on
// your machine (make run) use 'http://127.0.0.1:8080' and tick "Does not
// verify valid domain names" in the developer tools' local settings.
module.exports = {
  baseURL: 'https://api.example.com'
}

package wxcrypto_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/wxcrypto"
)

// benchInput is a WeRun-sized payload (a month of steps, about 1.6 KiB of
// JSON, as wx.getWeRunData returns), encrypted and signed as WeChat does.
func benchInput(b *testing.B) (sessionKey string, in wxcrypto.Input) {
	b.Helper()
	key := []byte("0123456789abcdef")
	sessionKey = base64.StdEncoding.EncodeToString(key)
	type step struct {
		Timestamp int64 `json:"timestamp"`
		Step      int   `json:"step"`
	}
	var steps []step
	for i := range 31 {
		steps = append(steps, step{1710288000 - int64(i)*86400, 4000 + i*97})
	}
	plain, err := json.Marshal(map[string]any{
		"stepInfoList": steps,
		"watermark":    map[string]any{"appid": "wx1234567890abcdef", "timestamp": 1710317730},
	})
	if err != nil {
		b.Fatal(err)
	}
	iv := wxcrypto.NewIV()
	ct, err := wxcrypto.Encrypt(key, plain, iv)
	if err != nil {
		b.Fatal(err)
	}
	raw := `{"nickName":"微信用户","avatarUrl":"","gender":0,"language":"zh_CN"}`
	return sessionKey, wxcrypto.Input{
		EncryptedData: base64.StdEncoding.EncodeToString(ct),
		IV:            base64.StdEncoding.EncodeToString(iv),
		RawData:       raw,
		Signature:     wxcrypto.Sign(raw, sessionKey),
	}
}

// BenchmarkOpen is decrypt's cryptography for one request: parse the
// base64 input, check the signature, decrypt, unpad and check the watermark.
func BenchmarkOpen(b *testing.B) {
	sessionKey, in := benchInput(b)
	opts := wxcrypto.Options{AppID: "wx1234567890abcdef", MaxAge: 24 * time.Hour, Now: time.Unix(1710317731, 0)}
	for _, sc := range []struct {
		name string
		in   wxcrypto.Input
	}{
		{"signed", in},
		{"unsigned", wxcrypto.Input{EncryptedData: in.EncryptedData, IV: in.IV}},
	} {
		b.Run(sc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(sc.in.EncryptedData)))
			for b.Loop() {
				p, err := wxcrypto.Parse(sc.in)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := wxcrypto.Open(sessionKey, p, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/config"
)

// writeCA writes a self-signed CA certificate as PEM and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRedisCAFile(t *testing.T) {
	ca := writeCA(t)
	garbled := filepath.Join(t.TempDir(), "garbled.pem")
	if err := os.WriteFile(garbled, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"SESSION_STORE": "redis", "REDIS_URL": "rediss://:pw@10.0.0.12:6379/0"}
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}

	cfg, err := config.Load(lookup(with("REDIS_CA_FILE", ca)))
	if err != nil || cfg.RedisCAFile != ca {
		t.Fatalf("a readable PEM CA with rediss://: got %q, %v; want it accepted", cfg.RedisCAFile, err)
	}
	if cfg, err := config.Load(lookup(base)); err != nil || cfg.RedisCAFile != "" {
		t.Fatalf("without REDIS_CA_FILE: got %q, %v", cfg.RedisCAFile, err)
	}

	for name, env := range map[string]map[string]string{
		"missing file":   with("REDIS_CA_FILE", filepath.Join(t.TempDir(), "absent.pem")),
		"not PEM":        with("REDIS_CA_FILE", garbled),
		"plain redis://": with("REDIS_CA_FILE", ca, "REDIS_URL", "redis://:pw@10.0.0.12:6379/0"),
		"another store":  {"SESSION_STORE": "dynamodb", "SESSION_TABLE": "t", "REDIS_CA_FILE": ca},
		"empty PEM file": with("REDIS_CA_FILE", os.DevNull),
		"a directory":    with("REDIS_CA_FILE", t.TempDir()),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(lookup(env))
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != "REDIS_CA_FILE" {
				t.Fatalf("got %v, want a config error naming REDIS_CA_FILE", err)
			}
		})
	}
}

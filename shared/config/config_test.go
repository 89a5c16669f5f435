package config_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/config"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	cfg, err := config.LoadLocal(lookup(map[string]string{"WX_APPID": "wx00000000000000a1", "WX_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{Apps: []config.App{{ID: "wx00000000000000a1", Secret: "s"}}, AppID: "wx00000000000000a1", Secret: "s", APIBase: "https://api.weixin.qq.com", Store: "memory", TTL: 24 * time.Hour, MaxAge: 720 * time.Hour, Port: 8080, MaxSessionsPerUser: 10}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
	if err := cfg.RequireCredentials(); err != nil {
		t.Fatal(err)
	}
}

func TestValues(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cfg, err := config.Load(lookup(map[string]string{
		"WX_API_BASE": "http://127.0.0.1:9/emulator/", "SESSION_STORE": "DynamoDB", "SESSION_TABLE": "t",
		"SESSION_TTL": "2h", "SESSION_MAX_AGE": "48h", "SESSION_SEAL_KEY": key, "WATERMARK_MAX_AGE": "10m", "PORT": "9000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIBase != "http://127.0.0.1:9/emulator" || cfg.Store != "dynamodb" || cfg.TTL != 2*time.Hour || cfg.MaxAge != 48*time.Hour ||
		len(cfg.SealKey) != 32 || cfg.WatermarkMaxAge != 10*time.Minute || cfg.Port != 9000 {
		t.Fatalf("got %+v", cfg)
	}
}

// TestSealKeyRing: SESSION_SEAL_KEY takes several keys, newest first; the
// first is the one that seals.
func TestSealKeyRing(t *testing.T) {
	newer, older := make([]byte, 32), make([]byte, 32)
	newer[0], older[0] = 1, 2
	cfg, err := config.LoadLocal(lookup(map[string]string{
		"SESSION_SEAL_KEY":     base64.StdEncoding.EncodeToString(newer) + " , " + base64.RawURLEncoding.EncodeToString(older),
		"SESSION_MAX_PER_USER": "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SealKeys) != 2 || cfg.SealKeys[0][0] != 1 || cfg.SealKeys[1][0] != 2 || cfg.SealKey[0] != 1 {
		t.Fatalf("got keys %v (sealing %v), want [newer older] with newer sealing", cfg.SealKeys, cfg.SealKey)
	}
	if cfg.MaxSessionsPerUser != 3 {
		t.Fatalf("SESSION_MAX_PER_USER: got %d, want 3", cfg.MaxSessionsPerUser)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	tests := []struct {
		env     map[string]string
		wantVar string
	}{
		{map[string]string{"WX_API_BASE": "ftp://x"}, "WX_API_BASE"},
		{map[string]string{"SESSION_STORE": "postgres"}, "SESSION_STORE"},
		{map[string]string{"SESSION_STORE": "dynamodb"}, "SESSION_TABLE"},
		{map[string]string{"SESSION_STORE": "redis"}, "REDIS_URL"},
		{map[string]string{"SESSION_STORE": "redis", "REDIS_URL": "localhost:6379"}, "REDIS_URL"},
		{map[string]string{"SESSION_STORE": "redis", "REDIS_URL": "redis://u:hunter2@127.0.0.1:x/0"}, "REDIS_URL"},
		{map[string]string{"SESSION_TTL": "1 day"}, "SESSION_TTL"},
		{map[string]string{"SESSION_TTL": "-1h"}, "SESSION_TTL"},
		{map[string]string{"SESSION_MAX_AGE": "1h"}, "SESSION_MAX_AGE"},
		{map[string]string{"SESSION_SEAL_KEY": "c2hvcnQ="}, "SESSION_SEAL_KEY"},
		{map[string]string{"SESSION_SEAL_KEY": "!!!"}, "SESSION_SEAL_KEY"},
		{map[string]string{"SESSION_SEAL_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)) + ",c2hvcnQ="}, "SESSION_SEAL_KEY"},
		{map[string]string{"SESSION_SEAL_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)) + ","}, "SESSION_SEAL_KEY"},
		{map[string]string{"SESSION_MAX_PER_USER": "0"}, "SESSION_MAX_PER_USER"},
		{map[string]string{"SESSION_MAX_PER_USER": "-3"}, "SESSION_MAX_PER_USER"},
		{map[string]string{"SESSION_MAX_PER_USER": "ten"}, "SESSION_MAX_PER_USER"},
		{map[string]string{"WATERMARK_MAX_AGE": "soon"}, "WATERMARK_MAX_AGE"},
		{map[string]string{"PORT": "70000"}, "PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.wantVar, func(t *testing.T) {
			_, err := config.LoadLocal(lookup(tt.env))
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tt.wantVar {
				t.Fatalf("got %v, want an error naming %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the password", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is more than one line", err)
			}
		})
	}
}

func TestRequireCredentials(t *testing.T) {
	for _, tt := range []struct {
		env     map[string]string
		wantVar string
	}{
		{map[string]string{"WX_SECRET": "s"}, "WX_APPID"},
		{map[string]string{"WX_APPID": "wx00000000000000a1"}, "WX_SECRET"},
	} {
		cfg, _ := config.LoadLocal(lookup(tt.env))
		var ce *config.Error
		if err := cfg.RequireCredentials(); !errors.As(err, &ce) || ce.Var != tt.wantVar {
			t.Fatalf("got %v, want an error naming %s", err, tt.wantVar)
		}
	}
}

// TestFunctionsNeedAStore: a function's configuration names its store; only
// the local server falls back to memory.
func TestFunctionsNeedAStore(t *testing.T) {
	env := map[string]string{"WX_APPID": "wx00000000000000a1"}
	_, err := config.Load(lookup(env))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != "SESSION_STORE" || !strings.Contains(ce.Reason, "memory store") {
		t.Fatalf("Load without SESSION_STORE: got %v, want an error naming SESSION_STORE and why", err)
	}
	env["SESSION_STORE"] = "memory"
	if cfg, err := config.Load(lookup(env)); err != nil || cfg.Store != config.StoreMemory {
		t.Fatalf("Load with SESSION_STORE=memory: got %+v, %v", cfg, err)
	}
	if cfg, err := config.LoadLocal(lookup(map[string]string{})); err != nil || cfg.Store != config.StoreMemory {
		t.Fatalf("LoadLocal without SESSION_STORE: got %+v, %v, want memory", cfg, err)
	}
}

func TestSeveralApps(t *testing.T) {
	const a, b = "wx00000000000000a1", "wx00000000000000b2"
	cfg, err := config.LoadLocal(lookup(map[string]string{"WX_APPID": a + ", " + b, "WX_SECRET": `{"` + a + `":"sa","` + b + `":"sb"}`}))
	if err != nil {
		t.Fatal(err)
	}
	want := []config.App{{ID: a, Secret: "sa"}, {ID: b, Secret: "sb"}}
	if !reflect.DeepEqual(cfg.Apps, want) || cfg.AppID != a || cfg.Secret != "sa" {
		t.Fatalf("got apps %+v, first %s/%s", cfg.Apps, cfg.AppID, cfg.Secret)
	}
	if err := cfg.RequireCredentials(); err != nil {
		t.Fatal(err)
	}
	// One app may use the JSON form too.
	one, err := config.LoadLocal(lookup(map[string]string{"WX_APPID": a, "WX_SECRET": `{"` + a + `":"sa"}`}))
	if err != nil || one.Secret != "sa" {
		t.Fatalf("one app, JSON secret: %+v, %v", one.Apps, err)
	}
	// Functions without the secret still load every app.
	noSecret, err := config.LoadLocal(lookup(map[string]string{"WX_APPID": a + "," + b}))
	if err != nil || len(noSecret.Apps) != 2 {
		t.Fatalf("no secret: %+v, %v", noSecret.Apps, err)
	}
	if err := config.RequireSecret(noSecret); err == nil {
		t.Fatal("RequireSecret passed without a secret")
	}
	bad := []struct {
		env     map[string]string
		varName string
	}{
		{map[string]string{"WX_APPID": "wx1"}, "WX_APPID"},
		{map[string]string{"WX_APPID": a + ",nope"}, "WX_APPID"},
		{map[string]string{"WX_APPID": a + "," + a}, "WX_APPID"},
		{map[string]string{"WX_APPID": a + "," + b, "WX_SECRET": "topsecret"}, "WX_SECRET"},
		{map[string]string{"WX_APPID": a + "," + b, "WX_SECRET": `{"` + a + `":"topsecret"}`}, "WX_SECRET"},
		{map[string]string{"WX_APPID": a, "WX_SECRET": `{"` + a + `":"topsecret","wx00000000000000c3":"x"}`}, "WX_SECRET"},
		{map[string]string{"WX_APPID": a + "," + b, "WX_SECRET": `{"` + a + `":topsecret`}, "WX_SECRET"},
	}
	for _, c := range bad {
		_, err := config.LoadLocal(lookup(c.env))
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != c.varName {
			t.Errorf("%v: got %v, want an error naming %s", c.env, err, c.varName)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%v: the error prints the secret: %v", c.env, err)
		}
	}
}

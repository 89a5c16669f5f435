package redis

// What TencentDB for Redis asks of a client, shown on a real redis-server:
// RESP2, "account@password" authentication, and (for its cluster edition)
// every command's keys in one hash slot.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"maps"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// startRedisServer runs a private redis-server with extra arguments (a
// password, cluster mode) on a free port until the test ends, and returns its
// address. The shared test server cannot be reconfigured that way.
func startRedisServer(t *testing.T, args ...string) string {
	t.Helper()
	return startRedisServerOn(t, func(port string) []string { return append([]string{"--port", port}, args...) })
}

// startRedisServerOn is startRedisServer with the listening arguments built
// from the free port (e.g. --port 0 --tls-port <port>).
func startRedisServerOn(t *testing.T, listen func(port string) []string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but redis-server is not on PATH (scripts/test-services.sh installs it)")
		}
		t.Skip("redis-server is not on PATH (make test installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	dir := t.TempDir()
	args := append(listen(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no")
	cmd := exec.Command(bin, args...)
	out, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited; _ = out.Close() })
	addr := "127.0.0.1:" + port
	deadline := time.Now().Add(15 * time.Second)
	for {
		// redis-server listens once it is ready to serve.
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return addr
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server %v exited:\n%s", args, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server %v never answered on %s", args, addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestSpeaksRESP2: TencentDB for Redis 6.2 and 7.0 do not speak RESP3, so the
// client must never switch a connection to it; the server says which protocol
// the connection speaks.
func TestSpeaksRESP2(t *testing.T) {
	c, _ := localClient(t)
	if c.Options().Protocol != 2 {
		t.Errorf("client Protocol %d, want 2", c.Options().Protocol)
	}
	info, err := c.ClientInfo(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLIENT INFO: %v", err)
	}
	if info.Resp != 2 {
		t.Errorf("the server sees resp=%d on this connection, want 2", info.Resp)
	}
}

// TestAccountAtPassword: a TencentDB custom account authenticates with
// "account@password" as the one password argument of AUTH. A redis-server
// whose password is that string accepts exactly what the client sends for
// redis://:account%40password@host, and refuses the ACL-style user:password
// form, which would send AUTH account password.
func TestAccountAtPassword(t *testing.T) {
	const account, password = "wxsession_app", "Secr3t/pw@x"
	addr := startRedisServer(t, "--requirepass", account+"@"+password)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		url  string
		ok   bool
	}{
		{"account@password as the password", "redis://:" + url.QueryEscape(account+"@"+password) + "@" + addr + "/0", true},
		{"account as an ACL user name", "redis://" + account + ":" + url.QueryEscape(password) + "@" + addr + "/0", false},
		{"password alone", "redis://:" + url.QueryEscape(password) + "@" + addr + "/0", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Ping(ctx).Err()
			if tt.ok && err != nil {
				t.Errorf("PING: %v, want PONG", err)
			}
			if !tt.ok && err == nil {
				t.Errorf("PING succeeded; want an authentication error")
			}
			if err != nil && strings.Contains(err.Error(), password) {
				t.Errorf("the error %q shows the password", err)
			}
		})
	}
}

// TestSingleSlot runs the whole store conformance suite against a real
// redis-server in cluster mode (one node holding every slot, as TencentDB's
// cluster edition looks to one shard's client), where a command or script
// whose keys hash to different slots fails with CROSSSLOT; and it checks
// every command the store sent: the server's own COMMAND GETKEYS names its
// keys and CLUSTER KEYSLOT hashes them, all to one slot.
func TestSingleSlot(t *testing.T) {
	addr := startRedisServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	ctx := context.Background()
	admin := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer admin.Close()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		info, _ := admin.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the one-node cluster never became ready:\n%s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var mu sync.Mutex
	var sent [][]any
	cluster := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{addr}, Protocol: 2, DisableIdentity: true})
	defer cluster.Close()
	cluster.AddHook(recorder{record: func(args []any) {
		mu.Lock()
		sent = append(sent, args)
		mu.Unlock()
	}})

	t.Run("conformance", func(t *testing.T) {
		storetest.Run(t, storetest.Harness{
			New: func(t *testing.T, now func() time.Time) session.Store {
				b := make([]byte, 6)
				_, _ = rand.Read(b)
				return New(cluster, now, WithPrefix("wxsession-test:"+hex.EncodeToString(b)+":"))
			},
		})
	})

	checked := map[string]bool{}
	scripts := 0
	for _, args := range sent {
		name := strings.ToLower(args[0].(string))
		if name == "cluster" || name == "command" || name == "ping" || name == "script" {
			continue
		}
		if name == "eval" || name == "evalsha" {
			scripts++
		}
		keys, err := admin.CommandGetKeys(ctx, args...).Result()
		if err != nil {
			t.Errorf("COMMAND GETKEYS %v: %v", args[0], err)
			continue
		}
		var slots []int64
		for _, k := range keys {
			slot, err := admin.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT: %v", err)
			}
			slots = append(slots, slot)
		}
		slices.Sort(slots)
		if len(slices.Compact(slots)) > 1 {
			t.Errorf("%s touches keys %v in slots %v; TencentDB's cluster edition refuses that (CROSSSLOT)", name, keys, slots)
		}
		checked[name] = true
	}
	if scripts == 0 || len(checked) < 3 {
		t.Fatalf("recorded only %v (%d scripts): the hook saw too little to prove anything", checked, scripts)
	}
	t.Logf("every key of %d commands (%v) is in one slot", len(sent), slices.Sorted(maps.Keys(checked)))
}

// recorder is a go-redis hook that reports every command's arguments.
type recorder struct{ record func([]any) }

func (recorder) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r recorder) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.record(slices.Clone(cmd.Args()))
		return next(ctx, cmd)
	}
}

func (r recorder) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			r.record(slices.Clone(cmd.Args()))
		}
		return next(ctx, cmds)
	}
}

// TestTLSWithCAFile: TencentDB for Redis's TLS certificates are signed by its
// own CA. A rediss:// client given that CA (REDIS_CA_FILE) connects to a real
// redis-server serving TLS; without it, or with another CA, the handshake
// fails.
func TestTLSWithCAFile(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTLSFiles(t, dir, "ca")
	otherCA, _, _ := writeTLSFiles(t, filepath.Join(dir, "other"), "other")
	addr := startRedisServerOn(t, func(port string) []string {
		return []string{"--port", "0", "--tls-port", port, "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile, "--tls-auth-clients", "no"}
	})
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		opts []ClientOption
		ok   bool
	}{
		{"the server's CA", []ClientOption{WithCAFile(caFile)}, true},
		{"no CA file (system pool)", nil, false},
		{"another CA", []ClientOption{WithCAFile(otherCA)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient("rediss://"+addr+"/0", tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Ping(ctx).Err()
			if tt.ok && err != nil {
				t.Errorf("PING over TLS: %v", err)
			}
			if !tt.ok && err == nil {
				t.Error("PING over TLS succeeded; want a certificate error")
			}
		})
	}
	if _, err := NewClient("redis://"+addr+"/0", WithCAFile(caFile)); err == nil {
		t.Error("a CA file with a plain redis:// URL: got no error")
	}
}

// writeTLSFiles writes a CA and a server certificate for 127.0.0.1 signed by
// it, as PEM files in dir.
func writeTLSFiles(t *testing.T, dir, name string) (caFile, certFile, keyFile string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "PRIVATE KEY", keyDER)
}

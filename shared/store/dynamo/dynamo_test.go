package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// endpointEnv names the DynamoDB Local endpoint the integration tests use.
const endpointEnv = "WXSESSION_DYNAMODB_URL"

// localClient returns a client for DynamoDB Local (see storetest.ServerURL).
func localClient(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	endpoint := storetest.ServerURL(t, endpointEnv)
	return localClientAt(endpoint), endpoint
}

func localClientAt(endpoint string) *dynamodb.Client {
	return NewClient(ClientOptions{
		Region:      "us-east-1",
		Endpoint:    endpoint,
		Credentials: aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"},
	})
}

// newTable creates a table only this test uses, and deletes it afterwards.
func newTable(t *testing.T, c *dynamodb.Client) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	table := "wxsession-test-" + hex.EncodeToString(b)
	// DynamoDB Local's first calls wait for the JVM to warm up.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := EnsureTable(ctx, c, table); err != nil {
		t.Fatalf("EnsureTable: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
			t.Logf("delete table %s: %v", table, err)
		}
	})
	return table
}

// dump renders every item of the store's table, binary values as raw bytes.
func dump(t *testing.T, c *dynamodb.Client, s *Store) string {
	t.Helper()
	var b strings.Builder
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: &s.table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan %s: %v", s.table, err)
		}
		for _, item := range page.Items {
			names := make([]string, 0, len(item))
			for n := range item {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				switch v := item[n].(type) {
				case *types.AttributeValueMemberS:
					fmt.Fprintf(&b, "%s=%s ", n, v.Value)
				case *types.AttributeValueMemberN:
					fmt.Fprintf(&b, "%s=%s ", n, v.Value)
				case *types.AttributeValueMemberB:
					fmt.Fprintf(&b, "%s=%s ", n, v.Value)
				default:
					fmt.Fprintf(&b, "%s=%#v ", n, v)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestConformance(t *testing.T) {
	c, _ := localClient(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, now func() time.Time) session.Store {
			return New(c, newTable(t, c), now)
		},
		Dump: func(t *testing.T, s session.Store) string { return dump(t, c, s.(*Store)) },
		Second: func(t *testing.T, s session.Store, now func() time.Time) session.Store {
			// Its own client and connections, as another function instance has.
			c2, _ := localClient(t)
			return New(c2, s.(*Store).table, now)
		},
	})
}

func TestOutage(t *testing.T) {
	c, endpoint := localClient(t)
	storetest.RunOutage(t, strings.TrimPrefix(endpoint, "http://"), func(t *testing.T, addr string, now func() time.Time) session.Store {
		return New(localClientAt("http://"+addr), newTable(t, c), now)
	})
}

// TestItemShape checks what lands in the table: the key layout and the TTL
// attribute the table's TTL setting deletes by.
func TestItemShape(t *testing.T) {
	c, _ := localClient(t)
	ctx := context.Background()
	table := newTable(t, c)
	now := time.UnixMilli(1_700_000_000_250)
	s := New(c, table, func() time.Time { return now })

	id := session.SkeyHash(session.NewSkey())
	if err := s.PutSession(ctx, id, session.Session{OpenID: "o1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenewSession(ctx, id, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutUser(ctx, session.User{AppID: "wxapp", OpenID: "o1", SessionKey: "k", ExpiresAt: now.Add(24 * time.Hour)}, session.Ref{ID: id, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClaimCode(ctx, session.CodeClaim{ID: "abc", SealedSkey: []byte{1, 2}, CreatedAt: now, ExpiresAt: now.Add(session.CodeLifetime)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		pk        string
		expiresMS int64
	}{
		{"s#" + id, now.Add(2 * time.Hour).UnixMilli()},
		{"u#wxapp#o1", now.Add(24 * time.Hour).UnixMilli()},
		{"c#abc", now.Add(session.CodeLifetime).UnixMilli()},
	}
	for _, tt := range tests {
		t.Run(tt.pk[:1], func(t *testing.T) {
			out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: keyOf(tt.pk), ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Item) == 0 {
				t.Fatalf("no item under pk %q", tt.pk)
			}
			wantN := map[string]int64{"expires_ms": tt.expiresMS, "expires_at": (tt.expiresMS + 999) / 1000}
			for name, want := range wantN {
				n, ok := out.Item[name].(*types.AttributeValueMemberN)
				if !ok || n.Value != fmt.Sprint(want) {
					t.Errorf("%s: got %#v, want Number %d", name, out.Item[name], want)
				}
			}
		})
	}

	// The user's session list: one Map attribute per session, r_<id>.
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: keyOf("u#wxapp#o1"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := out.Item["r_"+id].(*types.AttributeValueMemberM)
	if !ok {
		t.Fatalf("user item: no Map attribute r_<session id>: %v", out.Item)
	}
	for name, want := range map[string]int64{"c": now.UnixMilli(), "e": now.Add(24 * time.Hour).UnixMilli()} {
		if n, ok := ref.Value[name].(*types.AttributeValueMemberN); !ok || n.Value != fmt.Sprint(want) {
			t.Errorf("r_<id>.%s: got %#v, want Number %d", name, ref.Value[name], want)
		}
	}

	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "expires_at" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL: got %+v, want enabled on expires_at", d)
	}
}

func TestEnsureTable(t *testing.T) {
	c, _ := localClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	table := newTable(t, c)
	if err := EnsureTable(ctx, c, table); err != nil {
		t.Fatalf("EnsureTable on an existing table: %v", err)
	}

	other := table + "-other"
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &other,
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &other}) })
	if err := EnsureTable(ctx, c, other); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("EnsureTable on a table keyed by id: got %v, want an error about its key", err)
	}
}

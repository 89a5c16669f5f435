package dynamo_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/shared/store/dynamo"
)

// TestWarm checks that Warm opens the connection the client's first request
// then uses, and that it is no API call: a plain GET / with no operation.
func TestWarm(t *testing.T) {
	var mu sync.Mutex
	var conns int
	var calls []string // method and X-Amz-Target of each request
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.Header.Get("X-Amz-Target"))
		mu.Unlock()
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("healthy: dynamodb.us-east-1.amazonaws.com "))
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()

	client := dynamo.NewClient(dynamo.ClientOptions{Region: "us-east-1", Endpoint: srv.URL, Credentials: aws.Credentials{AccessKeyID: "k", SecretAccessKey: "s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dynamo.Warm(ctx, client); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if _, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String("t"),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "s#x"}},
	}); err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[0] != "GET " || calls[1] != "POST DynamoDB_20120810.GetItem" {
		t.Errorf("got requests %q, want a bare GET / and then the GetItem", calls)
	}
	if conns != 1 {
		t.Errorf("got %d connections, want the GetItem on Warm's", conns)
	}
}

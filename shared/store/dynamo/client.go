package dynamo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// ClientOptions is what NewClient needs to reach DynamoDB. store.Open fills it
// from the standard AWS environment variables, which is how Lambda hands a
// function its role's credentials.
type ClientOptions struct {
	Region string
	// Endpoint overrides the regional endpoint (DynamoDB Local); empty for AWS.
	Endpoint    string
	Credentials aws.Credentials
	// APIOptions adds middleware to every operation the client sends; the
	// benchmarks count store operations with it. Nil for a function.
	APIOptions []func(*middleware.Stack) error
}

// Client tuning. DynamoDB answers in milliseconds, so anything slower is a
// fault to report (store_unavailable), not to wait out.
const (
	dialTimeout = time.Second
	tlsTimeout  = time.Second
	// maxAttempts bounds the SDK's retries of throttling, 5xx and dropped
	// connections (a frozen Lambda's pooled connection may be dead on thaw).
	maxAttempts = 3
	baseBackoff = 25 * time.Millisecond
	maxBackoff  = 250 * time.Millisecond
)

// NewClient returns a DynamoDB client built without the SDK's config package:
// loading the shared config files and the credential chain costs cold-start
// time and binary size, and a function only ever needs the three values in
// opts. Build it once per process; it is safe for concurrent use.
func NewClient(opts ClientOptions) *dynamodb.Client {
	creds := opts.Credentials
	if creds.Source == "" {
		creds.Source = "wxsession"
	}
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = tlsTimeout
			t.MaxIdleConnsPerHost = 16
			t.IdleConnTimeout = 60 * time.Second
		})
	o := dynamodb.Options{
		Region:      opts.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:  httpClient,
		APIOptions:  opts.APIOptions,
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.Backoff = jitterBackoff{}
		}),
	}
	if opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(opts.Endpoint)
	}
	return dynamodb.New(o)
}

// Warm opens a connection to the endpoint the client sends its requests to
// and leaves it in the client's pool, so that the first request of a cold
// start finds the TCP (and, on AWS, TLS) handshake done. A function starts it
// in the background at start-up, where it overlaps the Lambda runtime's own
// start (registering, fetching the first event). It sends GET / to the
// endpoint, which DynamoDB answers ("healthy: …") without an API call: it
// costs no capacity unit and needs no IAM permission. An error only means the
// first request dials for itself.
func Warm(ctx context.Context, client *dynamodb.Client) error {
	o := client.Options()
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, dynamodb.EndpointParameters{
		Region:   aws.String(o.Region),
		Endpoint: o.BaseEndpoint,
	})
	if err != nil {
		return fmt.Errorf("dynamo: warm: resolve endpoint: %w", err)
	}
	u := ep.URI
	u.Path, u.RawPath, u.RawQuery = "/", "", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("dynamo: warm: %w", err)
	}
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("dynamo: warm: %w", err)
	}
	// Read the answer to its end, so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// jitterBackoff waits a random time up to baseBackoff·2^attempt, capped at
// maxBackoff. The SDK's default waits up to seconds, which would spend the
// store's whole per-call budget on one pause.
type jitterBackoff struct{}

// BackoffDelay implements retry.BackoffDelayer.
func (jitterBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	d := min(baseBackoff<<min(attempt, 8), maxBackoff)
	return time.Duration(rand.Int64N(int64(d)) + 1), nil //nolint:gosec // jitter needs no secrecy
}

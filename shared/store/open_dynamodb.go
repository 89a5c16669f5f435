//go:build !wxsession_nodynamodb

package store

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
)

func openDynamo(ctx context.Context, cfg config.Config, now func() time.Time, o options) (session.Store, error) {
	copts, err := dynamoClientOptions(o.getenv)
	if err != nil {
		return nil, err
	}
	client := dynamo.NewClient(copts)
	if o.createTable {
		if err := dynamo.EnsureTable(ctx, client, cfg.Table); err != nil {
			return nil, fmt.Errorf("SESSION_TABLE: %w", err)
		}
	}
	if o.warm {
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dynamo.DefaultTimeout)
			defer cancel()
			_ = dynamo.Warm(ctx, client) // on failure the first request dials itself
		}()
	}
	return dynamo.New(client, cfg.Table, now), nil
}

// dynamoClientOptions reads what the DynamoDB client needs from the
// environment, as the SDK's own config loader would for a Lambda function,
// without its cost (see dynamo.NewClient).
func dynamoClientOptions(getenv func(string) string) (dynamo.ClientOptions, error) {
	var endpoint, endpointVar string
	if getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != "true" {
		for _, v := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"} {
			if endpoint = getenv(v); endpoint != "" {
				endpointVar = v
				break
			}
		}
	}
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return dynamo.ClientOptions{}, &config.Error{Var: endpointVar, Reason: fmt.Sprintf("%q is not an http(s) URL", endpoint)}
		}
	}

	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		if endpoint == "" {
			return dynamo.ClientOptions{}, &config.Error{Var: "AWS_REGION", Reason: "required when SESSION_STORE=dynamodb (Lambda sets it)"}
		}
		region = "us-east-1" // DynamoDB Local ignores it, but requests are signed with one
	}

	creds := aws.Credentials{
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
		Source:          "environment",
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return dynamo.ClientOptions{}, &config.Error{
			Var:    "AWS_ACCESS_KEY_ID",
			Reason: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required when SESSION_STORE=dynamodb (Lambda sets them from the function's role; any value does for DynamoDB Local)",
		}
	}
	return dynamo.ClientOptions{Region: region, Endpoint: endpoint, Credentials: creds}, nil
}

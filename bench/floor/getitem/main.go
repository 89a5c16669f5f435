// Command getitem is the floor for a DynamoDB-backed Go function on this
// machine: an aws-lambda-go function that builds the DynamoDB client as
// wxsession does (from the environment, without the SDK's config loader) and
// makes one strongly consistent GetItem per invocation, on the key in
// FLOOR_KEY of the table in SESSION_TABLE, writes the call's latency as a JSON
// log line (as validate logs each request), then answers a fixed 200. `make
// bench` times it beside the validate function, which does the same read plus
// its own work.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/shared/store/dynamo"
)

func main() {
	client := dynamo.NewClient(dynamo.ClientOptions{
		Region:   os.Getenv("AWS_REGION"),
		Endpoint: os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"),
		Credentials: aws.Credentials{
			AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
			SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
			SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		},
	})
	table, key := os.Getenv("SESSION_TABLE"), os.Getenv("FLOOR_KEY")
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (events.APIGatewayV2HTTPResponse, error) {
		start := time.Now()
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &table,
			Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("get item: %w", err)
		}
		log.Info("request", "latency_ms", float64(time.Since(start).Microseconds())/1000)
		return events.APIGatewayV2HTTPResponse{
			StatusCode: 200,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       fmt.Sprintf(`{"found":%t}`, len(out.Item) > 0),
		}, nil
	})
}

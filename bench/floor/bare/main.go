// Command bare is the floor for a Go function's cold start on this machine: an
// aws-lambda-go function that answers every API Gateway event with a fixed
// 200 and does nothing else. `make bench` times it beside wxsession's
// functions.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{
			StatusCode: 200,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       `{"ok":true}`,
		}, nil
	})
}

package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableClient is the part of *dynamodb.Client that EnsureTable calls.
type TableClient interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// tablePoll is how often EnsureTable looks whether a new table is ACTIVE.
const tablePoll = 250 * time.Millisecond

// EnsureTable creates table (on-demand billing, partition key pk) if it does
// not exist, waits until it is ACTIVE and makes sure TTL is enabled on
// expires_at. The local server and the tests call it; deployed functions get
// their table from the SAM template. An existing table with another key
// schema is an error, not something to repair. ctx bounds the whole call.
func EnsureTable(ctx context.Context, c TableClient, table string) error {
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		if err := createTable(ctx, c, table); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("dynamo: describe table %s: %w", table, err)
	default:
		if err := checkKeySchema(table, desc.Table); err != nil {
			return err
		}
	}
	if err := waitActive(ctx, c, table); err != nil {
		return err
	}
	return enableTTL(ctx, c, table)
}

func createTable(ctx context.Context, c TableClient, table string) error {
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &table,
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash}},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) { // in use: another process created it meanwhile
		return fmt.Errorf("dynamo: create table %s: %w", table, err)
	}
	return nil
}

func checkKeySchema(table string, td *types.TableDescription) error {
	if td != nil && len(td.KeySchema) == 1 && aws.ToString(td.KeySchema[0].AttributeName) == attrPK && td.KeySchema[0].KeyType == types.KeyTypeHash {
		for _, a := range td.AttributeDefinitions {
			if aws.ToString(a.AttributeName) == attrPK && a.AttributeType == types.ScalarAttributeTypeS {
				return nil
			}
		}
	}
	return fmt.Errorf("dynamo: table %s exists but its key is not a single String partition key named %s", table, attrPK)
}

func waitActive(ctx context.Context, c TableClient, table string) error {
	for {
		desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
		if err != nil {
			return fmt.Errorf("dynamo: describe table %s: %w", table, err)
		}
		if desc.Table != nil && desc.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynamo: table %s did not become active: %w", table, ctx.Err())
		case <-time.After(tablePoll):
		}
	}
}

func enableTTL(ctx context.Context, c TableClient, table string) error {
	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		return fmt.Errorf("dynamo: describe TTL of %s: %w", table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if aws.ToString(d.AttributeName) == attrExpiresAt {
				return nil
			}
			return fmt.Errorf("dynamo: table %s has TTL on %s; wxsession needs it on %s", table, aws.ToString(d.AttributeName), attrExpiresAt)
		}
	}
	_, err = c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attrExpiresAt), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("dynamo: enable TTL on %s: %w", table, err)
	}
	return nil
}

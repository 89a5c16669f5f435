package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/shared/token"
)

var _ token.Store = (*Store)(nil)

// An app's access_token row lives in the same table as the sessions:
//
//	pk            other attributes
//	t#<appid>     token (as the manager hands it over: sealed when
//	              SESSION_SEAL_KEY is set), expires_ms, lease_holder,
//	              lease_until_ms, expires_at (TTL)
//
// The token is live while the store's clock is before expires_ms, the renewal
// lease while it is before lease_until_ms. expires_at, the table's TTL
// attribute, follows the token's expiry; a row that holds only a lease gets
// the lease's.
const prefixToken = "t#"

// Attribute names of the token row.
const (
	attrToken      = "token"
	attrLeaseOwner = "lease_holder"
	attrLeaseUntil = "lease_until_ms"
)

type tokenItem struct {
	Token        string `dynamodbav:"token,omitempty"`
	ExpiresMS    int64  `dynamodbav:"expires_ms,omitempty"`
	LeaseHolder  string `dynamodbav:"lease_holder,omitempty"`
	LeaseUntilMS int64  `dynamodbav:"lease_until_ms,omitempty"`
}

func tokenKey(appID string) string { return prefixToken + appID }

// GetToken implements token.Store with one strongly consistent read: another
// instance's renewal must be seen at once.
func (s *Store) GetToken(ctx context.Context, appID string) (token.Row, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            keyOf(tokenKey(appID)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return token.Row{}, fmt.Errorf("dynamo: get token: %w", err)
	}
	var it tokenItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return token.Row{}, fmt.Errorf("dynamo: get token: %w", err)
	}
	now := s.nowMS()
	var row token.Row
	if it.Token != "" && live(it.ExpiresMS, now) {
		row.Token, row.ExpiresAt = it.Token, time.UnixMilli(it.ExpiresMS)
	}
	if it.LeaseHolder != "" && live(it.LeaseUntilMS, now) {
		row.LeaseUntil = time.UnixMilli(it.LeaseUntilMS)
	}
	if row.Token == "" && row.LeaseUntil.IsZero() {
		return token.Row{}, token.ErrNotFound
	}
	return row, nil
}

// LeaseToken implements token.Store with one conditional UpdateItem, which
// creates the row when there is none.
func (s *Store) LeaseToken(ctx context.Context, appID, holder, ifToken string, until time.Time) (bool, error) {
	now := s.nowMS()
	leaseFree := expression.AttributeNotExists(expression.Name(attrLeaseUntil)).
		Or(expression.Name(attrLeaseUntil).LessThanEqual(expression.Value(now))).
		Or(expression.Name(attrLeaseOwner).Equal(expression.Value(holder)))
	var sameToken expression.ConditionBuilder
	if ifToken == "" {
		sameToken = expression.AttributeNotExists(expression.Name(attrToken)).
			Or(expression.Name(attrExpiresMS).LessThanEqual(expression.Value(now)))
	} else {
		sameToken = expression.Name(attrToken).Equal(expression.Value(ifToken)).
			And(expression.Name(attrExpiresMS).GreaterThan(expression.Value(now)))
	}
	untilMS := until.UnixMilli()
	update := expression.Set(expression.Name(attrLeaseOwner), expression.Value(holder)).
		Set(expression.Name(attrLeaseUntil), expression.Value(untilMS)).
		// A row with a token keeps the token's TTL; a new row lives as long
		// as the lease.
		Set(expression.Name(attrExpiresAt), expression.IfNotExists(expression.Name(attrExpiresAt), expression.Value(ceilSeconds(untilMS))))
	err := s.updateToken(ctx, appID, update, leaseFree.And(sameToken))
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("dynamo: lease token: %w", err)
	}
	return true, nil
}

// PutToken implements token.Store with one UpdateItem conditional on the
// lease.
func (s *Store) PutToken(ctx context.Context, appID, holder string, row token.Row) error {
	e := expiryOf(row.ExpiresAt)
	update := expression.Set(expression.Name(attrToken), expression.Value(row.Token)).
		Set(expression.Name(attrExpiresMS), expression.Value(e.ExpiresMS)).
		Set(expression.Name(attrExpiresAt), expression.Value(e.ExpiresAt)).
		Remove(expression.Name(attrLeaseOwner)).
		Remove(expression.Name(attrLeaseUntil))
	held := expression.Name(attrLeaseOwner).Equal(expression.Value(holder)).
		And(expression.Name(attrLeaseUntil).GreaterThan(expression.Value(s.nowMS())))
	err := s.updateToken(ctx, appID, update, held)
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return token.ErrLeaseLost
	case err != nil:
		return fmt.Errorf("dynamo: put token: %w", err)
	}
	return nil
}

// ReleaseToken implements token.Store.
func (s *Store) ReleaseToken(ctx context.Context, appID, holder string) error {
	update := expression.Remove(expression.Name(attrLeaseOwner)).Remove(expression.Name(attrLeaseUntil))
	err := s.updateToken(ctx, appID, update, expression.Name(attrLeaseOwner).Equal(expression.Value(holder)))
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("dynamo: release token: %w", err)
	}
	return nil
}

// DropToken implements token.Store with one UpdateItem conditional on the
// stored token.
func (s *Store) DropToken(ctx context.Context, appID, ifToken string) (bool, error) {
	update := expression.Remove(expression.Name(attrToken)).Remove(expression.Name(attrExpiresMS))
	err := s.updateToken(ctx, appID, update, expression.Name(attrToken).Equal(expression.Value(ifToken)))
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("dynamo: drop token: %w", err)
	}
	return true, nil
}

// updateToken applies update to the app's token row if cond holds.
func (s *Store) updateToken(ctx context.Context, appID string, update expression.UpdateBuilder, cond expression.ConditionBuilder) error {
	expr, err := expression.NewBuilder().WithUpdate(update).WithCondition(cond).Build()
	if err != nil {
		return err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       keyOf(tokenKey(appID)),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	return err
}

// Package dynamo keeps sessions, users and login-code claims in one DynamoDB
// table.
//
// The table has a partition key pk (String) and nothing else. Items:
//
//	pk                   other attributes
//	s#<session id>       openid, unionid (when set), created_ms, expires_ms, expires_at
//	u#<appid>#<openid>   appid, openid, session_key, expires_ms, expires_at,
//	                     and r_<session id> {c: created_ms, e: cap_ms} per listed session
//	c#<claim id>         sealed_skey (Binary), created_ms, expires_ms, expires_at
//
// The session id is already the SHA-256 of the skey and the claim id is derived
// from the code, so neither the skey nor the code is ever stored;
// session_key is stored as the service hands it over (sealed when
// SESSION_SEAL_KEY is set).
//
// Times are kept to the millisecond: expires_ms and created_ms are Unix
// milliseconds, and a row is alive while the store's clock, in milliseconds, is
// before expires_ms. expires_at is the same expiry in whole seconds, rounded
// up, for the table's TTL setting; DynamoDB deletes expired items days late, so
// every read and conditional write compares expires_ms with the store's clock.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/shared/session"
)

var _ session.Store = (*Store)(nil)

// DefaultTimeout bounds each store call, the SDK's retries included, so an
// unreachable or hung endpoint fails the request in time to answer
// store_unavailable instead of running into the function's own deadline.
const DefaultTimeout = 1500 * time.Millisecond

// Client is the part of *dynamodb.Client the store calls.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Store is a session.Store over one DynamoDB table. It is safe for concurrent
// use.
type Store struct {
	client  Client
	table   string
	now     func() time.Time
	timeout time.Duration
}

// Option adjusts a Store.
type Option func(*Store)

// WithTimeout bounds each store call to d instead of DefaultTimeout.
func WithTimeout(d time.Duration) Option { return func(s *Store) { s.timeout = d } }

// New returns a store over table that reads the time from now (time.Now if
// nil). The table must exist: see EnsureTable.
func New(client Client, table string, now func() time.Time, opts ...Option) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{client: client, table: table, now: now, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Attribute names.
const (
	attrPK        = "pk"
	attrExpiresMS = "expires_ms"
	attrExpiresAt = "expires_at" // the table's TTL attribute
)

// Key prefixes of the three kinds of item.
const (
	prefixSession = "s#"
	prefixUser    = "u#"
	prefixClaim   = "c#"
)

// expiry is carried by every item: exact, for the store's own comparisons, and
// in seconds for DynamoDB's TTL.
type expiry struct {
	ExpiresMS int64 `dynamodbav:"expires_ms"`
	ExpiresAt int64 `dynamodbav:"expires_at"`
}

func expiryOf(t time.Time) expiry {
	ms := t.UnixMilli()
	return expiry{ExpiresMS: ms, ExpiresAt: ceilSeconds(ms)}
}

// ceilSeconds rounds up, so TTL never deletes a row before it expires.
func ceilSeconds(ms int64) int64 {
	s := ms / 1000
	if ms%1000 > 0 {
		s++
	}
	return s
}

type sessionItem struct {
	PK string `dynamodbav:"pk"`
	// AppID is absent from rows written before sessions recorded their app.
	AppID     string `dynamodbav:"appid,omitempty"`
	OpenID    string `dynamodbav:"openid"`
	UnionID   string `dynamodbav:"unionid,omitempty"`
	CreatedMS int64  `dynamodbav:"created_ms"`
	expiry
}

type userItem struct {
	PK         string `dynamodbav:"pk"`
	AppID      string `dynamodbav:"appid"`
	OpenID     string `dynamodbav:"openid"`
	SessionKey string `dynamodbav:"session_key"`
	expiry
}

type claimItem struct {
	PK         string `dynamodbav:"pk"`
	SealedSkey []byte `dynamodbav:"sealed_skey"`
	CreatedMS  int64  `dynamodbav:"created_ms"`
	expiry
}

func (c claimItem) claim(id string) session.CodeClaim {
	return session.CodeClaim{
		ID:         id,
		SealedSkey: c.SealedSkey,
		CreatedAt:  time.UnixMilli(c.CreatedMS),
		ExpiresAt:  time.UnixMilli(c.ExpiresMS),
	}
}

func keyOf(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}}
}

func sessionKey(id string) string         { return prefixSession + id }
func userKey(appID, openID string) string { return prefixUser + appID + "#" + openID }
func claimKey(id string) string           { return prefixClaim + id }
func (s *Store) nowMS() int64             { return s.now().UnixMilli() }
func live(expiresMS, nowMS int64) bool    { return nowMS < expiresMS }

// call bounds one store call, the SDK's retries included.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// ClaimCode implements session.Store with one conditional PutItem: it writes
// the claim unless a live one is there, and when one is, DynamoDB hands it
// back in the same call (ALL_OLD on condition failure).
func (s *Store) ClaimCode(ctx context.Context, c session.CodeClaim) (session.CodeClaim, bool, error) {
	item, err := attributevalue.MarshalMap(claimItem{
		PK: claimKey(c.ID), SealedSkey: c.SealedSkey, CreatedMS: c.CreatedAt.UnixMilli(), expiry: expiryOf(c.ExpiresAt),
	})
	if err != nil {
		return session.CodeClaim{}, false, fmt.Errorf("dynamo: claim code: %w", err)
	}
	// An expired claim that TTL has not deleted yet may be overwritten.
	cond := expression.AttributeNotExists(expression.Name(attrPK)).
		Or(expression.Name(attrExpiresMS).LessThanEqual(expression.Value(s.nowMS())))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return session.CodeClaim{}, false, fmt.Errorf("dynamo: claim code: %w", err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.table,
		Item:                                item,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return c, true, nil
	}
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		return session.CodeClaim{}, false, fmt.Errorf("dynamo: claim code: %w", err)
	}
	if len(failed.Item) == 0 {
		return session.CodeClaim{}, false, errors.New("dynamo: claim code: condition failed but the holding claim was not returned")
	}
	var held claimItem
	if err := attributevalue.UnmarshalMap(failed.Item, &held); err != nil {
		return session.CodeClaim{}, false, fmt.Errorf("dynamo: claim code: read holder: %w", err)
	}
	holder := held.claim(c.ID)
	// The SDK retries a put whose answer was lost: finding our own claim
	// means the first attempt won. The sealed skey has a random nonce, so no
	// other caller's claim can equal it.
	if string(holder.SealedSkey) == string(c.SealedSkey) {
		return c, true, nil
	}
	return holder, false, nil
}

// ReleaseCode implements session.Store.
func (s *Store) ReleaseCode(ctx context.Context, id string) error {
	if err := s.delete(ctx, claimKey(id)); err != nil {
		return fmt.Errorf("dynamo: release code: %w", err)
	}
	return nil
}

// refPrefix starts the name of each user-item attribute that lists one of
// the user's sessions. One attribute per session lets a login add its own and
// a logout remove exactly the ones it ended with one UpdateItem each, neither
// disturbing a racing login's entry.
const refPrefix = "r_"

type refValue struct {
	CreatedMS int64 `dynamodbav:"c"`
	CapMS     int64 `dynamodbav:"e"`
}

// refsOf reads the session list of a user item.
func refsOf(item map[string]types.AttributeValue) ([]session.Ref, error) {
	var refs []session.Ref
	for name, av := range item {
		id, ok := strings.CutPrefix(name, refPrefix)
		if !ok {
			continue
		}
		var v refValue
		if err := attributevalue.Unmarshal(av, &v); err != nil {
			return nil, fmt.Errorf("session list entry: %w", err)
		}
		refs = append(refs, session.Ref{ID: id, CreatedAt: time.UnixMilli(v.CreatedMS), ExpiresAt: time.UnixMilli(v.CapMS)})
	}
	return refs, nil
}

// PutUser implements session.Store with one UpdateItem, which sets the
// user's session_key and expiry, adds the session's attribute and hands back
// the whole item.
func (s *Store) PutUser(ctx context.Context, u session.User, add session.Ref) ([]session.Ref, error) {
	e := expiryOf(u.ExpiresAt)
	update := expression.Set(expression.Name("appid"), expression.Value(u.AppID)).
		Set(expression.Name("openid"), expression.Value(u.OpenID)).
		Set(expression.Name("session_key"), expression.Value(u.SessionKey)).
		Set(expression.Name(attrExpiresMS), expression.Value(e.ExpiresMS)).
		Set(expression.Name(attrExpiresAt), expression.Value(e.ExpiresAt)).
		Set(expression.Name(refPrefix+add.ID), expression.Value(refValue{CreatedMS: add.CreatedAt.UnixMilli(), CapMS: add.ExpiresAt.UnixMilli()}))
	expr, err := expression.NewBuilder().WithUpdate(update).Build()
	if err != nil {
		return nil, fmt.Errorf("dynamo: put user: %w", err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       keyOf(userKey(u.AppID, u.OpenID)),
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: put user: %w", err)
	}
	refs, err := refsOf(out.Attributes)
	if err != nil {
		return nil, fmt.Errorf("dynamo: put user: %w", err)
	}
	return refs, nil
}

// maxRemovePerUpdate keeps each UpdateItem's expression well inside
// DynamoDB's 4 KB limit.
const maxRemovePerUpdate = 100

// RemoveSessions implements session.Store with a conditional UpdateItem
// (per hundred ids) that removes the ids' attributes and creates nothing.
func (s *Store) RemoveSessions(ctx context.Context, appID, openID string, ids []string) error {
	for chunk := range slices.Chunk(ids, maxRemovePerUpdate) {
		update := expression.Remove(expression.Name(refPrefix + chunk[0]))
		for _, id := range chunk[1:] {
			update = update.Remove(expression.Name(refPrefix + id))
		}
		expr, err := expression.NewBuilder().WithUpdate(update).WithCondition(expression.AttributeExists(expression.Name(attrPK))).Build()
		if err != nil {
			return fmt.Errorf("dynamo: remove sessions: %w", err)
		}
		cctx, cancel := s.call(ctx)
		_, err = s.client.UpdateItem(cctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.table,
			Key:                       keyOf(userKey(appID, openID)),
			UpdateExpression:          expr.Update(),
			ConditionExpression:       expr.Condition(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
		})
		cancel()
		var failed *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &failed) {
			return fmt.Errorf("dynamo: remove sessions: %w", err)
		}
	}
	return nil
}

// GetUser implements session.Store.
func (s *Store) GetUser(ctx context.Context, appID, openID string) (session.User, error) {
	var it userItem
	item, err := s.getItem(ctx, userKey(appID, openID), &it)
	if err != nil {
		return session.User{}, fmt.Errorf("dynamo: get user: %w", err)
	}
	refs, err := refsOf(item)
	if err != nil {
		return session.User{}, fmt.Errorf("dynamo: get user: %w", err)
	}
	return session.User{AppID: it.AppID, OpenID: it.OpenID, SessionKey: it.SessionKey, ExpiresAt: time.UnixMilli(it.ExpiresMS), Sessions: refs}, nil
}

// PutSession implements session.Store.
func (s *Store) PutSession(ctx context.Context, id string, sess session.Session) error {
	err := s.put(ctx, sessionItem{
		PK: sessionKey(id), AppID: sess.AppID, OpenID: sess.OpenID, UnionID: sess.UnionID, CreatedMS: sess.CreatedAt.UnixMilli(), expiry: expiryOf(sess.ExpiresAt),
	})
	if err != nil {
		return fmt.Errorf("dynamo: put session: %w", err)
	}
	return nil
}

// GetSession implements session.Store.
func (s *Store) GetSession(ctx context.Context, id string) (session.Session, error) {
	var it sessionItem
	if err := s.get(ctx, sessionKey(id), &it); err != nil {
		return session.Session{}, fmt.Errorf("dynamo: get session: %w", err)
	}
	return session.Session{
		AppID: it.AppID, OpenID: it.OpenID, UnionID: it.UnionID, CreatedAt: time.UnixMilli(it.CreatedMS), ExpiresAt: time.UnixMilli(it.ExpiresMS),
	}, nil
}

// RenewSession implements session.Store with a conditional UpdateItem: the
// condition (the item exists and has not expired) keeps a renewal from
// creating a bare item for a deleted session or reviving an expired one.
func (s *Store) RenewSession(ctx context.Context, id string, expiresAt time.Time) error {
	e := expiryOf(expiresAt)
	update := expression.Set(expression.Name(attrExpiresMS), expression.Value(e.ExpiresMS)).
		Set(expression.Name(attrExpiresAt), expression.Value(e.ExpiresAt))
	cond := expression.AttributeExists(expression.Name(attrPK)).
		And(expression.Name(attrExpiresMS).GreaterThan(expression.Value(s.nowMS())))
	expr, err := expression.NewBuilder().WithUpdate(update).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("dynamo: renew session: %w", err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       keyOf(sessionKey(id)),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return session.ErrNotFound
	case err != nil:
		return fmt.Errorf("dynamo: renew session: %w", err)
	}
	return nil
}

// DeleteSession implements session.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.delete(ctx, sessionKey(id)); err != nil {
		return fmt.Errorf("dynamo: delete session: %w", err)
	}
	return nil
}

// put writes an item unconditionally, replacing any item under its key.
func (s *Store) put(ctx context.Context, item any) error {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av})
	return err
}

// get reads the item under pk into dst, which embeds expiry, and returns
// session.ErrNotFound for a missing or expired item.
//
// Reads are strongly consistent. An eventually consistent read may miss a
// write made a moment earlier by another instance: the validate that follows
// a login, the session a repeated code's loser polls for, or the newest
// session_key a decrypt needs; each would then fail a user who did nothing
// wrong. The price is one read unit per item instead of half of one.
func (s *Store) get(ctx context.Context, pk string, dst interface{ expiresMS() int64 }) error {
	_, err := s.getItem(ctx, pk, dst)
	return err
}

// getItem is get that also returns the raw item.
func (s *Store) getItem(ctx context.Context, pk string, dst interface{ expiresMS() int64 }) (map[string]types.AttributeValue, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            keyOf(pk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, session.ErrNotFound
	}
	if err := attributevalue.UnmarshalMap(out.Item, dst); err != nil {
		return nil, err
	}
	if !live(dst.expiresMS(), s.nowMS()) {
		return nil, session.ErrNotFound
	}
	return out.Item, nil
}

func (e *expiry) expiresMS() int64 { return e.ExpiresMS }

func (s *Store) delete(ctx context.Context, pk string) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: keyOf(pk)})
	return err
}

package dynamo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/shared/session"
)

// fakeClient answers the store's calls with its func fields; a nil field
// fails the test's call with errUnexpected.
type fakeClient struct {
	get    func(context.Context, *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	put    func(context.Context, *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
	update func(context.Context, *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error)
	del    func(context.Context, *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error)
}

var errUnexpected = errors.New("unexpected call")

func (f fakeClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.get == nil {
		return nil, errUnexpected
	}
	return f.get(ctx, in)
}

func (f fakeClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f.put == nil {
		return nil, errUnexpected
	}
	return f.put(ctx, in)
}

func (f fakeClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.update == nil {
		return nil, errUnexpected
	}
	return f.update(ctx, in)
}

func (f fakeClient) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if f.del == nil {
		return nil, errUnexpected
	}
	return f.del(ctx, in)
}

var fakeNow = time.UnixMilli(1_700_000_000_000)

func claimItemOf(t *testing.T, c session.CodeClaim) map[string]types.AttributeValue {
	t.Helper()
	av, err := attributevalue.MarshalMap(claimItem{PK: claimKey(c.ID), SealedSkey: c.SealedSkey, CreatedMS: c.CreatedAt.UnixMilli(), expiry: expiryOf(c.ExpiresAt)})
	if err != nil {
		t.Fatal(err)
	}
	return av
}

func TestClaimCodeOutcomes(t *testing.T) {
	mine := session.CodeClaim{ID: "x", SealedSkey: []byte("mine"), CreatedAt: fakeNow, ExpiresAt: fakeNow.Add(session.CodeLifetime)}
	theirs := session.CodeClaim{ID: "x", SealedSkey: []byte("theirs"), CreatedAt: fakeNow.Add(-time.Second), ExpiresAt: fakeNow.Add(session.CodeLifetime - time.Second)}
	failed := func(item map[string]types.AttributeValue) error {
		return &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: item}
	}
	tests := []struct {
		name       string
		putErr     error
		wantWon    bool
		wantHolder []byte
		wantErr    bool
	}{
		{"written", nil, true, mine.SealedSkey, false},
		{"held by another", failed(claimItemOf(t, theirs)), false, theirs.SealedSkey, false},
		{"own write retried by the SDK", failed(claimItemOf(t, mine)), true, mine.SealedSkey, false},
		{"holder not returned", failed(nil), false, nil, true},
		{"store failure", errors.New("boom"), false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in *dynamodb.PutItemInput
			s := New(fakeClient{put: func(_ context.Context, got *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				in = got
				return &dynamodb.PutItemOutput{}, tt.putErr
			}}, "t", func() time.Time { return fakeNow })
			holder, won, err := s.ClaimCode(context.Background(), mine)
			if (err != nil) != tt.wantErr || errors.Is(err, session.ErrNotFound) {
				t.Fatalf("ClaimCode: got error %v, want error: %v (and never ErrNotFound)", err, tt.wantErr)
			}
			if won != tt.wantWon || string(holder.SealedSkey) != string(tt.wantHolder) {
				t.Fatalf("ClaimCode: got won=%v holder %q, want won=%v holder %q", won, holder.SealedSkey, tt.wantWon, tt.wantHolder)
			}
			if in.ConditionExpression == nil || in.ReturnValuesOnConditionCheckFailure != types.ReturnValuesOnConditionCheckFailureAllOld {
				t.Errorf("PutItem: got condition %v and return values %q, want a condition and ALL_OLD", in.ConditionExpression, in.ReturnValuesOnConditionCheckFailure)
			}
		})
	}
}

func TestRenewSessionOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr error // nil, session.ErrNotFound, or errUnexpected for any other
	}{
		{"renewed", nil, nil},
		{"gone or expired", &types.ConditionalCheckFailedException{}, session.ErrNotFound},
		{"store failure", errors.New("boom"), errUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(fakeClient{update: func(_ context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
				if in.ConditionExpression == nil {
					t.Errorf("UpdateItem without a condition: a renewal could create or revive the session")
				}
				return &dynamodb.UpdateItemOutput{}, tt.err
			}}, "t", func() time.Time { return fakeNow })
			err := s.RenewSession(context.Background(), "id", fakeNow.Add(time.Hour))
			switch {
			case tt.wantErr == nil && err != nil, tt.wantErr == session.ErrNotFound && !errors.Is(err, session.ErrNotFound):
				t.Fatalf("RenewSession: got %v, want %v", err, tt.wantErr)
			case tt.wantErr == errUnexpected && (err == nil || errors.Is(err, session.ErrNotFound)):
				t.Fatalf("RenewSession: got %v, want a store error", err)
			}
		})
	}
}

func TestGetSessionReads(t *testing.T) {
	live, err := attributevalue.MarshalMap(sessionItem{PK: "s#id", OpenID: "o", CreatedMS: fakeNow.UnixMilli(), expiry: expiryOf(fakeNow.Add(time.Millisecond))})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := attributevalue.MarshalMap(sessionItem{PK: "s#id", OpenID: "o", CreatedMS: fakeNow.UnixMilli(), expiry: expiryOf(fakeNow)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		item     map[string]types.AttributeValue
		wantOpen string
		wantErr  error
	}{
		{"live", live, "o", nil},
		{"expired but not yet deleted", expired, "", session.ErrNotFound},
		{"missing", nil, "", session.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(fakeClient{get: func(_ context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
				if !aws.ToBool(in.ConsistentRead) {
					t.Errorf("GetItem: eventually consistent read, want a strongly consistent one")
				}
				return &dynamodb.GetItemOutput{Item: tt.item}, nil
			}}, "t", func() time.Time { return fakeNow })
			got, err := s.GetSession(context.Background(), "id")
			if !errors.Is(err, tt.wantErr) || got.OpenID != tt.wantOpen {
				t.Fatalf("GetSession: got %+v, %v; want openid %q, error %v", got, err, tt.wantOpen, tt.wantErr)
			}
		})
	}
}

// TestCallTimeout checks that a call that never answers is cut off by the
// store's own per-call budget, whatever the caller's context allows.
func TestCallTimeout(t *testing.T) {
	hang := func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	s := New(fakeClient{
		get: func(ctx context.Context, _ *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			return nil, hang(ctx)
		},
	}, "t", nil, WithTimeout(50*time.Millisecond))
	start := time.Now()
	_, err := s.GetSession(context.Background(), "id")
	if err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetSession on a hung client: got %v, want a store error", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("GetSession on a hung client took %v, want about 50ms", took)
	}
}

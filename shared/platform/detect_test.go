package platform_test

import (
	"testing"

	"github.com/wxsession/wxsession/shared/platform"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want platform.Runtime
	}{
		{"nothing set", nil, platform.RuntimeHTTP},
		{"web function", map[string]string{"PORT": "9000"}, platform.RuntimeHTTP},
		{"lambda", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, platform.RuntimeLambda},
		{"scf", map[string]string{"_LAMBDA_SERVER_PORT": "9000"}, platform.RuntimeSCF},
		{"both: the Runtime API wins", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "_LAMBDA_SERVER_PORT": "9000"}, platform.RuntimeLambda},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := platform.Detect(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

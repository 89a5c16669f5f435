package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wxsession/wxsession/docs"
)

func TestServesOpenAPI(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(withOpenAPI(next))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, docs.OpenAPI) || len(body) == 0 {
		t.Fatalf("GET /openapi.yaml: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	for _, r := range [][2]string{{"POST", "/openapi.yaml"}, {"GET", "/openapi.yml"}, {"GET", "/login"}} {
		req, _ := http.NewRequest(r[0], srv.URL+r[1], nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("%s %s: %d, want the product's answer", r[0], r[1], resp.StatusCode)
		}
	}
}

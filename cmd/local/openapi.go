package main

import (
	"net/http"

	"github.com/wxsession/wxsession/docs"
)

// withOpenAPI serves the API's OpenAPI document (docs/openapi.yaml) at
// GET /openapi.yaml, for Swagger UI, Apifox or Postman, and answers every
// other request with next (another method there gets next's 404). Only the
// local server serves it; a deployed function answers 404 there.
func withOpenAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/openapi.yaml" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		// Swagger UI, Apifox and Postman may fetch it from a page on another origin.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write(docs.OpenAPI)
	})
}

// Package docs carries the documents of wxsession's contract that programs
// need at run time.
package docs

import _ "embed" // for the //go:embed below

// OpenAPI is docs/openapi.yaml: the OpenAPI 3.1 description of every route,
// header, body and error of wxsession's HTTP API. The local server serves it
// at GET /openapi.yaml, and the tests check every response they receive
// against it (internal/openapitest).
//
//go:embed openapi.yaml
var OpenAPI []byte

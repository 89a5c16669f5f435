// Package wxsession_test checks the deployment descriptors against what the
// code and the deploy guides promise: template.yaml (AWS SAM), serverless.yml
// (Tencent Serverless Framework) and scf_bootstrap.
package wxsession_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// route is one route of the HTTP contract and the function serving it.
type route struct {
	logicalID, function, method, path string
	// actions are the DynamoDB actions the function's store calls make
	// (shared/store/dynamo): exactly these are granted, on the table only.
	actions []string
}

var routes = []route{
	{"LoginFunction", "login", "POST", "/login", []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}},
	{"ValidateFunction", "validate", "GET", "/validate", []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}},
	{"DecryptFunction", "decrypt", "POST", "/decrypt", []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}},
	{"LogoutFunction", "logout", "POST", "/logout", []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}},
	// the session (read, renewal) and the access_token row (read, lease, put, drop)
	{"PhoneNumberFunction", "phonenumber", "POST", "/phonenumber", []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}},
}

// openTemplate parses template.yaml with goformation. Parameters resolve to
// their defaults; references to resources are kept as "ref:Name" and
// "getatt:Name.Attr", and Fn::Sub as "sub:<template>", so the test can see
// what points where.
func openTemplate(t *testing.T) (*cloudformation.Template, map[string]any) {
	t.Helper()
	ref := func(name string, input any, template any) any {
		n, _ := input.(string)
		if params, ok := template.(map[string]any)["Parameters"].(map[string]any); ok {
			if p, ok := params[n].(map[string]any); ok {
				if def, ok := p["Default"]; ok {
					return def
				}
			}
		}
		return "ref:" + n
	}
	getAtt := func(name string, input any, template any) any {
		switch v := input.(type) {
		case string:
			return "getatt:" + v
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			return "getatt:" + strings.Join(parts, ".")
		}
		return "getatt:?"
	}
	sub := func(name string, input any, template any) any {
		if s, ok := input.(string); ok {
			return "sub:" + s
		}
		// The list form [template, {Name: value}]: its variables are
		// substituted, so "t#${Apps}" with Apps the appids joined shows as
		// "sub:t#ref:WxAppId".
		if l, ok := input.([]any); ok && len(l) == 2 {
			s, _ := l[0].(string)
			vars, _ := l[1].(map[string]any)
			for k, v := range vars {
				s = strings.ReplaceAll(s, "${"+k+"}", fmt.Sprint(v))
			}
			return "sub:" + s
		}
		return "sub:?"
	}
	// Fn::Split and Fn::Join as CloudFormation evaluates them (goformation's
	// Split returns a list its own Join does not take).
	split := func(name string, input any, template any) any {
		l, _ := input.([]any)
		if len(l) != 2 {
			return nil
		}
		delim, _ := l[0].(string)
		s, _ := l[1].(string)
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out
	}
	join := func(name string, input any, template any) any {
		l, _ := input.([]any)
		if len(l) != 2 {
			return nil
		}
		delim, _ := l[0].(string)
		return strings.Join(anyStrings(l[1]), delim)
	}
	opts := &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Ref": ref, "Fn::GetAtt": getAtt, "Fn::Sub": sub, "Fn::Split": split, "Fn::Join": join},
	}
	tmpl, err := goformation.OpenWithOptions("template.yaml", opts)
	if err != nil {
		t.Fatalf("template.yaml does not parse: %v", err)
	}
	// goformation guesses among the shapes SAM's Policies may take; the plain
	// tree says exactly what is written.
	raw, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := intrinsics.ProcessYAML(raw, opts)
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := json.Unmarshal(js, &tree); err != nil {
		t.Fatal(err)
	}
	return tmpl, tree
}

func TestTemplate(t *testing.T) {
	tmpl, tree := openTemplate(t)
	if tmpl.Transform == nil || tmpl.Transform.String == nil || *tmpl.Transform.String != "AWS::Serverless-2016-10-31" {
		t.Fatalf("template.yaml is not a SAM template (Transform AWS::Serverless-2016-10-31)")
	}
	fns := tmpl.GetAllServerlessFunctionResources()

	t.Run("globals", func(t *testing.T) {
		g, err := tmpl.GetServerlessGlobalFunction()
		if err != nil {
			t.Fatal(err)
		}
		if deref(g.Runtime) != "provided.al2023" || !slices.Equal(deref(g.Architectures), []string{"arm64"}) || deref(g.Handler) != "bootstrap" {
			t.Errorf("got runtime %q architectures %v handler %q, want provided.al2023 [arm64] bootstrap", deref(g.Runtime), deref(g.Architectures), deref(g.Handler))
		}
		if g.MemorySize == nil || *g.MemorySize != 128 {
			t.Errorf("got MemorySize %v, want 128", g.MemorySize)
		}
		// Long enough for WeChat's two 3 s attempts; shorter than API Gateway's 30 s.
		if g.Timeout == nil || *g.Timeout < 8 || *g.Timeout > 29 {
			t.Errorf("got Timeout %v, want 8..29 s", g.Timeout)
		}
		if g.Environment != nil {
			for _, secret := range []string{"WX_SECRET", "SESSION_SEAL_KEY"} {
				if _, ok := g.Environment.Variables[secret]; ok {
					t.Errorf("Globals sets %s, so every function (the example route too) would get the secret", secret)
				}
			}
		}
	})

	t.Run("functions and routes", func(t *testing.T) {
		for _, r := range routes {
			fn, ok := fns[r.logicalID]
			if !ok {
				t.Errorf("no function %s", r.logicalID)
				continue
			}
			if fn.Runtime != nil || fn.Architectures != nil || fn.Handler != nil {
				t.Errorf("%s overrides the Globals runtime, architecture or handler", r.logicalID)
			}
			if bm, _ := fn.AWSCloudFormationMetadata["BuildMethod"].(string); bm != "makefile" {
				t.Errorf("%s: got BuildMethod %q, want makefile (Makefile target build-%s)", r.logicalID, bm, r.logicalID)
			}
			var found []string
			for name, ev := range fn.Events {
				if ev.Type != "HttpApi" || ev.Properties == nil || ev.Properties.HttpApiEvent == nil {
					t.Errorf("%s: event %s is not an HttpApi event", r.logicalID, name)
					continue
				}
				e := ev.Properties.HttpApiEvent
				found = append(found, deref(e.Method)+" "+deref(e.Path))
				if deref(e.ApiId) != "ref:Api" || deref(e.PayloadFormatVersion) != "2.0" {
					t.Errorf("%s: got ApiId %q payload %q, want ref:Api and 2.0", r.logicalID, deref(e.ApiId), deref(e.PayloadFormatVersion))
				}
				if e.Auth != nil {
					t.Errorf("%s: a wxsession route sits behind an authorizer; it must stay open", r.logicalID)
				}
			}
			if want := r.method + " " + r.path; !slices.Equal(found, []string{want}) {
				t.Errorf("%s: got routes %v, want [%s]", r.logicalID, found, want)
			}
		}
	})

	t.Run("login is throttled", func(t *testing.T) {
		e := fns["LoginFunction"].Events["Login"].Properties.HttpApiEvent
		if e.RouteSettings == nil || e.RouteSettings.ThrottlingRateLimit == nil || e.RouteSettings.ThrottlingBurstLimit == nil ||
			*e.RouteSettings.ThrottlingRateLimit <= 0 || *e.RouteSettings.ThrottlingBurstLimit <= 0 {
			t.Errorf("POST /login has no throttling")
		}
	})

	t.Run("authorizer", func(t *testing.T) {
		api, err := tmpl.GetServerlessHttpApiWithName("Api")
		if err != nil {
			t.Fatal(err)
		}
		if api.Auth == nil {
			t.Fatal("the HttpApi has no Auth")
		}
		if api.Auth.DefaultAuthorizer != nil {
			t.Errorf("DefaultAuthorizer is set: /login could not be reached without a session")
		}
		authorizers, _ := api.Auth.Authorizers.(map[string]any)
		a, _ := authorizers["WxSession"].(map[string]any)
		if a == nil {
			t.Fatalf("no WxSession authorizer; got %v", api.Auth.Authorizers)
		}
		want := map[string]any{
			"FunctionArn":                      "getatt:ValidateFunction.Arn",
			"AuthorizerPayloadFormatVersion":   "2.0",
			"EnableSimpleResponses":            true,
			"EnableFunctionDefaultPermissions": true,
		}
		for k, v := range want {
			if a[k] != v {
				t.Errorf("authorizer %s: got %v, want %v", k, a[k], v)
			}
		}
		id, _ := a["Identity"].(map[string]any)
		headers, _ := id["Headers"].([]any)
		if !slices.Contains(headers, any("Authorization")) {
			t.Errorf("authorizer identity headers %v lack Authorization", headers)
		}
		if ttl, _ := id["ReauthorizeEvery"].(float64); ttl != 0 {
			t.Errorf("authorizer caches answers for %v s; a logout would not take effect at once", ttl)
		}

		// The example: a team's own function behind the authorizer.
		protected := 0
		for name, fn := range fns {
			for _, ev := range fn.Events {
				if e := ev.Properties.HttpApiEvent; e != nil && e.Auth != nil && deref(e.Auth.Authorizer) == "WxSession" {
					protected++
					if deref(e.ApiId) != "ref:Api" {
						t.Errorf("%s is protected on another API", name)
					}
				}
			}
		}
		if protected == 0 {
			t.Error("no example route uses the WxSession authorizer")
		}
	})

	t.Run("table", func(t *testing.T) {
		tbl, err := tmpl.GetDynamoDBTableWithName("SessionTable")
		if err != nil {
			t.Fatal(err)
		}
		if deref(tbl.BillingMode) != "PAY_PER_REQUEST" {
			t.Errorf("got BillingMode %q, want PAY_PER_REQUEST", deref(tbl.BillingMode))
		}
		if len(tbl.KeySchema) != 1 || tbl.KeySchema[0].AttributeName != "pk" || tbl.KeySchema[0].KeyType != "HASH" {
			t.Errorf("got key schema %+v, want pk HASH", tbl.KeySchema)
		}
		if len(tbl.AttributeDefinitions) != 1 || tbl.AttributeDefinitions[0].AttributeName != "pk" || tbl.AttributeDefinitions[0].AttributeType != "S" {
			t.Errorf("got attributes %+v, want pk S", tbl.AttributeDefinitions)
		}
		ttl := tbl.TimeToLiveSpecification
		if ttl == nil || deref(ttl.AttributeName) != "expires_at" || !ttl.Enabled {
			t.Errorf("got TTL %+v, want expires_at enabled", ttl)
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		resources, _ := tree["Resources"].(map[string]any)
		for _, r := range routes {
			res, _ := resources[r.logicalID].(map[string]any)
			props, _ := res["Properties"].(map[string]any)
			policies, _ := props["Policies"].([]any)
			if len(policies) == 0 {
				t.Errorf("%s: no policies", r.logicalID)
				continue
			}
			var actions []string
			for _, p := range policies {
				doc, _ := p.(map[string]any)
				statements, _ := doc["Statement"].([]any)
				if len(statements) == 0 {
					t.Errorf("%s: policy %v is not an inline policy document (no managed policies or SAM templates)", r.logicalID, p)
					continue
				}
				for _, st := range statements {
					s, _ := st.(map[string]any)
					if s["Effect"] != "Allow" || s["Resource"] != "getatt:SessionTable.Arn" {
						t.Errorf("%s: statement %v is not an Allow on the session table alone", r.logicalID, s)
					}
					for _, a := range anyStrings(s["Action"]) {
						if strings.Contains(a, "*") {
							t.Errorf("%s: wildcard action %q", r.logicalID, a)
						}
						actions = append(actions, a)
					}
				}
			}
			sort.Strings(actions)
			if !slices.Equal(actions, r.actions) {
				t.Errorf("%s: got actions %v, want %v", r.logicalID, actions, r.actions)
			}
		}
	})

	t.Run("configuration and secrets", func(t *testing.T) {
		g, _ := tmpl.GetServerlessGlobalFunction()
		for _, r := range routes {
			env := map[string]string{}
			if g.Environment != nil {
				for k, v := range g.Environment.Variables {
					env[k] = v
				}
			}
			if fn := fns[r.logicalID]; fn.Environment != nil {
				for k, v := range fn.Environment.Variables {
					env[k] = v
				}
			}
			want := map[string]string{
				"WX_APPID": "ref:WxAppId", "WX_API_BASE": "https://api.weixin.qq.com",
				"SESSION_STORE": "dynamodb", "SESSION_TABLE": "ref:SessionTable",
				"SESSION_TTL": "24h", "SESSION_MAX_AGE": "720h",
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("%s: got %s=%q, want %q", r.logicalID, k, env[k], v)
				}
			}
			// Each function gets only the secrets it uses: the AppSecret goes
			// to login alone (the only caller of WeChat), the seal key to
			// login (seals) and decrypt (opens).
			secretsOf := map[string][]string{
				"LoginFunction":       {"WX_SECRET", "SESSION_SEAL_KEY"},
				"DecryptFunction":     {"SESSION_SEAL_KEY"},
				"PhoneNumberFunction": {"WX_SECRET", "SESSION_SEAL_KEY"},
			}
			for _, secret := range []string{"WX_SECRET", "SESSION_SEAL_KEY"} {
				wantRef := "sub:{{resolve:secretsmanager:${SecretName}:SecretString:" + secret + "}}"
				switch {
				case slices.Contains(secretsOf[r.logicalID], secret) && env[secret] != wantRef:
					t.Errorf("%s: %s is %q, want the Secrets Manager reference %q", r.logicalID, secret, env[secret], wantRef)
				case !slices.Contains(secretsOf[r.logicalID], secret) && env[secret] != "":
					t.Errorf("%s gets %s, which it never uses", r.logicalID, secret)
				}
			}
		}
		for name, p := range tmpl.Parameters {
			carriesSecret := regexp.MustCompile(`(?i)secret|sealkey|password|token`).MatchString(name) &&
				!strings.HasSuffix(name, "Name") && !strings.HasSuffix(name, "Arn")
			if carriesSecret && (p.NoEcho == nil || !*p.NoEcho || p.Default != nil) {
				t.Errorf("parameter %s would carry a secret: it must be NoEcho with no default", name)
			}
		}
		raw, err := os.ReadFile("template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		// An AppSecret is 32 hex digits; a seal key is 44 characters of base64.
		if m := regexp.MustCompile(`\b[0-9a-f]{32}\b|[A-Za-z0-9+/]{43}=`).Find(raw); m != nil {
			t.Errorf("template.yaml contains what looks like a secret: %q", m)
		}
	})

	t.Run("token function", func(t *testing.T) {
		fn, ok := fns["TokenFunction"]
		if !ok {
			t.Fatal("no TokenFunction")
		}
		if len(fn.Events) != 0 {
			t.Errorf("TokenFunction has events %v; it must be on no route (invoked directly with IAM)", fn.Events)
		}
		for _, secret := range []string{"WX_SECRET", "SESSION_SEAL_KEY"} {
			if want := "sub:{{resolve:secretsmanager:${SecretName}:SecretString:" + secret + "}}"; fn.Environment == nil || fn.Environment.Variables[secret] != want {
				t.Errorf("TokenFunction: %s is not the Secrets Manager reference %q", secret, want)
			}
		}
		resources, _ := tree["Resources"].(map[string]any)
		res, _ := resources["TokenFunction"].(map[string]any)
		props, _ := res["Properties"].(map[string]any)
		policies, _ := props["Policies"].([]any)
		if len(policies) != 1 {
			t.Fatalf("TokenFunction: got %d policies, want one inline document", len(policies))
		}
		doc, _ := policies[0].(map[string]any)
		statements, _ := doc["Statement"].([]any)
		for _, st := range statements {
			s, _ := st.(map[string]any)
			actions := anyStrings(s["Action"])
			sort.Strings(actions)
			if s["Effect"] != "Allow" || s["Resource"] != "getatt:SessionTable.Arn" || !slices.Equal(actions, []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}) {
				t.Errorf("TokenFunction: statement %v, want Allow GetItem and UpdateItem on the session table", s)
			}
			cond, _ := s["Condition"].(map[string]any)
			keys, _ := cond["ForAllValues:StringEquals"].(map[string]any)
			// One token row per app listed: "t#" before each appid of the
			// comma-separated WxAppId (split, joined with ",t#", prefixed,
			// split again).
			if lk := anyStrings(keys["dynamodb:LeadingKeys"]); !slices.Equal(lk, []string{"sub:t#ref:WxAppId"}) {
				t.Errorf("TokenFunction: LeadingKeys %v, want the token rows alone [sub:t#ref:WxAppId]", lk)
			}
		}
	})

	t.Run("outputs", func(t *testing.T) {
		for _, name := range []string{"ApiUrl", "SessionTableName", "ValidateFunctionArn", "TokenFunctionArn"} {
			if _, ok := tmpl.Outputs[name]; !ok {
				t.Errorf("no output %s", name)
			}
		}
	})
}

func TestServerlessYML(t *testing.T) {
	fns, f := deployedFunctions(t)
	if f.Component != "multi-scf" || f.Inputs.SrcDir.Src != "./dist/scf" {
		t.Errorf("got component %q src %q, want multi-scf from ./dist/scf (make build-scf)", f.Component, f.Inputs.SrcDir.Src)
	}
	// The component replaces an environment map with the environments list,
	// so a map anywhere is a setting silently lost.
	if f.Inputs.Environment != nil {
		t.Error("inputs.environment is a map; multi-scf reads only environments: [{key, value}]")
	}
	envVar := regexp.MustCompile(`^\$\{env:[A-Z][A-Z0-9_]*\}$`)
	// Each function gets only the secrets it uses (as on AWS).
	needs := map[string][]string{"login": {"WX_SECRET", "SESSION_SEAL_KEY"}, "decrypt": {"SESSION_SEAL_KEY"}, "phonenumber": {"WX_SECRET", "SESSION_SEAL_KEY"}}
	var names []string
	for _, r := range routes {
		names = append(names, r.function)
		d, ok := fns[r.function]
		if !ok {
			t.Errorf("no function %s", r.function)
			continue
		}
		if fn := f.Inputs.Functions[r.function]; fn.Environment != nil {
			t.Errorf("%s: environment is a map; multi-scf ignores it (use environments)", r.function)
		}
		if d.runtime != "Go1" || d.typ != "web" || d.handler != "scf_bootstrap" || d.src != "./"+r.function {
			t.Errorf("%s: got runtime %q type %q handler %q src %q, want Go1 web scf_bootstrap ./%s", r.function, d.runtime, d.typ, d.handler, d.src, r.function)
		}
		if d.timeout < 8 || d.timeout > 30 {
			t.Errorf("%s: timeout %d s; want 8..30 (a WeChat call with its retry)", r.function, d.timeout)
		}
		if d.memory != 128 || !d.publicAccess {
			t.Errorf("%s: memory %d public access %v, want 128 MB and public access (api.weixin.qq.com)", r.function, d.memory, d.publicAccess)
		}
		if d.env["SESSION_STORE"] != "redis" {
			t.Errorf("%s: SESSION_STORE=%q, want redis set explicitly", r.function, d.env["SESSION_STORE"])
		}
		for _, k := range []string{"WX_APPID", "WX_SECRET", "SESSION_SEAL_KEY", "REDIS_URL"} {
			needed := k == "WX_APPID" || k == "REDIS_URL" || slices.Contains(needs[r.function], k)
			_, has := d.env[k]
			switch {
			case needed && !envVar.MatchString(d.env[k]):
				t.Errorf("%s: %s=%q, want it from the deploy environment (${env:...}), never written in the file", r.function, k, d.env[k])
			case !needed && has:
				t.Errorf("%s gets %s, which it never uses", r.function, k)
			}
		}
		if !envVar.MatchString(d.vpc.VpcID) || !envVar.MatchString(d.vpc.SubnetID) {
			t.Errorf("%s: got VPC %+v, want the VPC of the Redis instance from the environment", r.function, d.vpc)
		}
	}
	// token: an event function with the secrets it uses and no function URL
	// (checked below: URLs go to the routes' functions only).
	if d, ok := fns["token"]; !ok {
		t.Error("no function token")
	} else {
		if d.runtime != "Go1" || d.typ != "event" || d.handler != "main" || d.src != "./token" {
			t.Errorf("token: got runtime %q type %q handler %q src %q, want Go1 event main ./token (SCF Invoke API only)", d.runtime, d.typ, d.handler, d.src)
		}
		for _, k := range []string{"WX_APPID", "WX_SECRET", "SESSION_SEAL_KEY", "REDIS_URL"} {
			if !envVar.MatchString(d.env[k]) {
				t.Errorf("token: %s=%q, want it from the deploy environment", k, d.env[k])
			}
		}
	}
	if len(fns) != len(routes)+1 {
		t.Errorf("serverless.yml deploys %d functions, want exactly %v and token", len(fns), names)
	}

	// One public function URL per function, and no API Gateway (switched
	// off on 2025-06-30).
	var urls []string
	for _, tr := range f.Inputs.Triggers {
		if tr.Type != "http" {
			t.Errorf("trigger type %q: want only http (function URLs)", tr.Type)
			continue
		}
		urls = append(urls, tr.Function)
		net, _ := tr.Parameters["netConfig"].(map[string]any)
		if tr.Parameters["authType"] != "NONE" || net["enableExtranet"] != true {
			t.Errorf("%s: function URL %v is not public without CAM auth; the mini-program cannot sign requests", tr.Function, tr.Parameters)
		}
	}
	sort.Strings(urls)
	sort.Strings(names)
	if !slices.Equal(urls, names) {
		t.Errorf("function URLs for %v, want one for each of %v", urls, names)
	}
}

func TestSCFBootstrap(t *testing.T) {
	st, err := os.Stat("scf_bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 != 0o111 {
		t.Errorf("scf_bootstrap has mode %v; the runtime needs it executable (chmod 755)", st.Mode().Perm())
	}
	b, _ := os.ReadFile("scf_bootstrap")
	s := string(b)
	if strings.Contains(s, "\r") || !strings.HasPrefix(s, "#!/bin/bash\n") {
		t.Error("scf_bootstrap must start with #!/bin/bash and use LF line ends")
	}
	for _, want := range []string{`export PORT="${WXSESSION_WEB_PORT:-9000}"`, "unset _LAMBDA_SERVER_PORT AWS_LAMBDA_RUNTIME_API", "exec ./main"} {
		if !strings.Contains(s, want) {
			t.Errorf("scf_bootstrap lacks %q", want)
		}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func anyStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

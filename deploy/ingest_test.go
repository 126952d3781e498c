package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"votes/infra/functions"
)

// deployed are the template's resources that CloudFormation creates: those
// without a condition, and those whose condition holds.
func deployed(t *testing.T, tpl cfn) map[string]cfn {
	t.Helper()
	out := map[string]cfn{}
	for k, r := range resources(tpl) {
		if c, ok := r["Condition"].(string); ok && !eval(t, tpl, cfn{"Condition": c}).(bool) {
			continue
		}
		out[k] = r
	}
	return out
}

// ofType are the resources of type typ, by logical ID.
func ofType(res map[string]cfn, typ string) map[string]cfn {
	out := map[string]cfn{}
	for k, r := range res {
		if r["Type"] == typ {
			out[k] = r
		}
	}
	return out
}

// routeKeys are the HTTP API's routes.
func routeKeys(res map[string]cfn) []string {
	var routes []string
	for _, r := range ofType(res, "AWS::ApiGatewayV2::Route") {
		routes = append(routes, fmt.Sprint(props(r)["RouteKey"]))
	}
	slices.Sort(routes)
	return routes
}

// publicPermissions are the function policy statements open to anyone
// (Principal "*"), as "Action on Function" with their conditions.
func publicPermissions(res map[string]cfn) map[string]cfn {
	out := map[string]cfn{}
	for _, r := range ofType(res, "AWS::Lambda::Permission") {
		p := props(r)
		if p["Principal"] == "*" {
			out[fmt.Sprintf("%v on %s", p["Action"], getAtt(p["FunctionName"]))] = p
		}
	}
	return out
}

// receiverEnv is the receiver's environment.
func receiverEnv(res map[string]cfn) cfn {
	return props(res["ReceiverLambdaFunction"])["Environment"].(cfn)["Variables"].(cfn)
}

// TestIngestURL: with --param ingest=url, POST /votes reaches the receiver
// through its own public function URL (AuthType NONE, both statements a
// public URL needs, CORS from corsOrigins) and no longer through the HTTP
// API, which keeps the reads with their throttling, access log and CORS.
// What the authorizer did, the receiver does: it is given the issuer and
// audience to verify tokens against.
func TestIngestURL(t *testing.T) {
	tpl := template(t, "prod", append(slices.Clone(prodParams), "ingest=url")...)
	res := deployed(t, tpl)

	urls := ofType(res, "AWS::Lambda::Url")
	if len(urls) != 1 {
		t.Fatalf("function URLs %v, want the receiver's alone", urls)
	}
	for id, u := range urls {
		p := props(u)
		if getAtt(p["TargetFunctionArn"]) != "ReceiverLambdaFunction.Arn" || p["AuthType"] != "NONE" {
			t.Errorf("%s: target %v, auth type %v; want the receiver's, NONE", id, getAtt(p["TargetFunctionArn"]), p["AuthType"])
		}
		cors, _ := eval(t, tpl, p["Cors"]).(cfn)
		if cors == nil {
			t.Fatalf("%s has no CORS configuration for the origins given", id)
		}
		list := func(k string) []string {
			var out []string
			l, _ := cors[k].([]any)
			for _, v := range l {
				out = append(out, strings.ToLower(fmt.Sprint(v)))
			}
			return out
		}
		if got, want := list("AllowOrigins"), []string{"https://vote.example.com", "https://www.example.com"}; !slices.Equal(got, want) {
			t.Errorf("%s allows origins %v, want %v", id, got, want)
		}
		if !slices.Equal(list("AllowMethods"), []string{"post"}) {
			t.Errorf("%s allows methods %v, want POST alone (the URL serves POST /votes)", id, cors["AllowMethods"])
		}
		for _, h := range []string{"authorization", "content-type", "idempotency-key"} {
			if !slices.Contains(list("AllowHeaders"), h) {
				t.Errorf("%s does not allow header %s: %v", id, h, cors["AllowHeaders"])
			}
		}
		if cors["AllowCredentials"] == true {
			t.Errorf("%s allows credentials: the receiver takes a bearer token, never cookies", id)
		}
	}

	// Since October 2025 a public URL needs both statements; each is
	// limited to the URL.
	public := publicPermissions(res)
	if len(public) != 2 {
		t.Errorf("public permissions %v, want the two of the receiver's URL", public)
	}
	if p := public["lambda:InvokeFunctionUrl on ReceiverLambdaFunction.Arn"]; p == nil || p["FunctionUrlAuthType"] != "NONE" {
		t.Errorf("no lambda:InvokeFunctionUrl for everyone on the receiver with FunctionUrlAuthType NONE: %v", public)
	}
	if p := public["lambda:InvokeFunction on ReceiverLambdaFunction.Arn"]; p == nil || p["InvokedViaFunctionUrl"] != true {
		t.Errorf("no lambda:InvokeFunction for everyone on the receiver, limited to its URL (InvokedViaFunctionUrl): %v", public)
	}

	// The HTTP API keeps the reads, public, throttled, logged, with CORS.
	want := functions.QueryRoutes()
	slices.Sort(want)
	if routes := routeKeys(res); !slices.Equal(routes, want) {
		t.Errorf("HTTP API routes %v, want %v: POST /votes goes to the function URL", routes, want)
	}
	if a := ofType(res, "AWS::ApiGatewayV2::Authorizer"); len(a) != 0 {
		t.Errorf("authorizers %v, which no route uses", a)
	}
	checkThrottling(t, res, 1000, 2000)
	checkAccessLogs(t, res)
	checkCORS(t, tpl, []string{"https://vote.example.com", "https://www.example.com"})

	// The receiver verifies tokens itself, against the stage's issuer and
	// audience; no other function is told of them.
	env := receiverEnv(res)
	if env["VOTES_JWT_ISSUER"] != "https://id.example.com/" || env["VOTES_JWT_AUDIENCE"] != "votes-api" {
		t.Errorf("receiver's JWT environment %v %v, want the stage's issuer and audience", env["VOTES_JWT_ISSUER"], env["VOTES_JWT_AUDIENCE"])
	}
	for id, fn := range ofType(res, "AWS::Lambda::Function") {
		if id == "ReceiverLambdaFunction" {
			continue
		}
		if vars := props(fn)["Environment"].(cfn)["Variables"].(cfn); vars["VOTES_JWT_ISSUER"] != nil || vars["VOTES_JWT_AUDIENCE"] != nil {
			t.Errorf("%s is given the JWT issuer or audience", id)
		}
	}
	// Its reserved concurrency is what caps it now.
	if rc := props(res["ReceiverLambdaFunction"])["ReservedConcurrentExecutions"]; rc != float64(100) {
		t.Errorf("receiver's reserved concurrency %v, want the parameter's 100", rc)
	}
	if out, _ := tpl["Outputs"].(cfn)["VotesUrl"].(cfn); out == nil || getAtt(out["Value"]) != "ReceiverFunctionUrl.FunctionUrl" {
		t.Errorf("no output naming the URL that takes votes: %v", tpl["Outputs"])
	}
}

// TestIngestURLWithoutAuth: dev with ingest=url takes the body's voterId,
// as dev does through the HTTP API: the receiver is told no issuer, and
// the URL has no CORS without corsOrigins.
func TestIngestURLWithoutAuth(t *testing.T) {
	tpl := template(t, "dev", "ingest=url")
	res := deployed(t, tpl)
	env := receiverEnv(res)
	if env["VOTES_JWT_ISSUER"] != nil || env["VOTES_JWT_AUDIENCE"] != nil {
		t.Errorf("auth=none gives the receiver an issuer %v and audience %v", env["VOTES_JWT_ISSUER"], env["VOTES_JWT_AUDIENCE"])
	}
	urls := ofType(res, "AWS::Lambda::Url")
	if u := urls["ReceiverFunctionUrl"]; u == nil {
		t.Fatalf("no receiver URL: %v", urls)
	} else if cors := eval(t, tpl, props(u)["Cors"]); cors != nil {
		t.Errorf("CORS open without corsOrigins: %v", cors)
	}
	if routes := routeKeys(res); slices.Contains(routes, "POST /votes") {
		t.Errorf("HTTP API routes %v still take POST /votes", routes)
	}
	checkNoAuth(t, res)
}

// TestIngestAPIUnchanged: ingest=api, the default, deploys what the stage
// deployed before the option existed: POST /votes on the HTTP API behind
// its authorizer, no function URL, nothing public, no issuer given to the
// receiver; asking for it by name changes nothing.
func TestIngestAPIUnchanged(t *testing.T) {
	byDefault := template(t, "prod", prodParams...)
	res := deployed(t, byDefault)
	if urls := ofType(res, "AWS::Lambda::Url"); len(urls) != 0 {
		t.Errorf("function URLs %v with ingest=api", urls)
	}
	if public := publicPermissions(res); len(public) != 0 {
		t.Errorf("public permissions %v with ingest=api", public)
	}
	if routes := routeKeys(res); !slices.Contains(routes, "POST /votes") {
		t.Errorf("routes %v: POST /votes missing", routes)
	}
	checkJWT(t, res, "https://id.example.com/", "votes-api")
	if env := receiverEnv(res); env["VOTES_JWT_ISSUER"] != nil || env["VOTES_JWT_AUDIENCE"] != nil {
		t.Errorf("behind the authorizer the receiver is given an issuer %v and audience %v", env["VOTES_JWT_ISSUER"], env["VOTES_JWT_AUDIENCE"])
	}
	if _, ok := byDefault["Outputs"].(cfn)["VotesUrl"]; ok && deployedOutput(t, byDefault, "VotesUrl") {
		t.Error("an output names a function URL that is not deployed")
	}
	named := template(t, "prod", append(slices.Clone(prodParams), "ingest=api")...)
	if a, b := withoutArtifactKeys(t, named), withoutArtifactKeys(t, byDefault); a != b {
		t.Errorf("ingest=api differs from the default:\n%s\nvs\n%s", a, b)
	}
}

// artifactKey is where a package puts the functions' zips in the
// deployment bucket: a folder named for the time of packaging.
var artifactKey = regexp.MustCompile(`serverless/votes/[^/]+/\d+-[^/]+/`)

// withoutArtifactKeys is the template's resources and outputs as JSON,
// with the zips' folder, which differs from one packaging to the next, left
// out.
func withoutArtifactKeys(t *testing.T, tpl cfn) string {
	t.Helper()
	b, err := json.MarshalIndent(cfn{"Resources": tpl["Resources"], "Outputs": tpl["Outputs"]}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return artifactKey.ReplaceAllString(string(b), "serverless/votes/STAGE/PACKAGED/")
}

// deployedOutput reports whether the template's output name is created.
func deployedOutput(t *testing.T, tpl cfn, name string) bool {
	t.Helper()
	out := tpl["Outputs"].(cfn)[name].(cfn)
	c, ok := out["Condition"].(string)
	return !ok || eval(t, tpl, cfn{"Condition": c}).(bool)
}

// TestUnknownIngestIsRefused: an ingest value other than api or url stops
// packaging with a message naming the parameter and the two values, and so
// does ingest=url with auth=jwt but no issuer or audience: the receiver
// would have nothing to verify tokens against.
func TestUnknownIngestIsRefused(t *testing.T) {
	for _, c := range []struct {
		stage  string
		params []string
		want   []string
	}{
		{"prod", append(slices.Clone(prodParams), "ingest=lambda"), []string{`Stage "prod"`, `--param ingest=lambda is neither "api"`, `nor "url"`}},
		{"dev", []string{"ingest=URL"}, []string{`Stage "dev"`, `--param ingest=URL is neither "api"`}},
		{"prod", []string{"ingest=url"}, []string{`Stage "prod" has the receiver verify the JWT of POST /votes itself`, "without its issuer and audience",
			"--param jwtIssuer=https://", "--param jwtAudience=", "--param auth=none"}},
	} {
		t.Run(c.stage+" "+strings.Join(c.params, " "), func(t *testing.T) {
			dir, out, err := pack(t, c.stage, c.params...)
			if err == nil {
				t.Fatalf("packaged:\n%s", out)
			}
			t.Logf("serverless package --stage %s %v: %v\n%s", c.stage, c.params, err, out)
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("the message does not say %q", w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "cloudformation-template-update-stack.json")); err == nil {
				t.Error("a template was written all the same")
			}
		})
	}
}

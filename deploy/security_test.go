package deploy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// eval gives a template value as CloudFormation would deploy it, for the
// functions this template's conditional parts use: Fn::If on a condition
// (Fn::Not, Fn::Equals, Condition), Fn::Split, and AWS::NoValue (nil).
func eval(t *testing.T, tpl cfn, v any) any {
	t.Helper()
	switch v := v.(type) {
	case cfn:
		if len(v) == 1 {
			for fn, arg := range v {
				switch fn {
				case "Ref":
					if arg == "AWS::NoValue" {
						return nil
					}
					return v
				case "Condition":
					return eval(t, tpl, tpl["Conditions"].(cfn)[arg.(string)])
				case "Fn::Not":
					return !eval(t, tpl, arg.([]any)[0]).(bool)
				case "Fn::Equals":
					a := arg.([]any)
					return fmt.Sprint(eval(t, tpl, a[0])) == fmt.Sprint(eval(t, tpl, a[1]))
				case "Fn::If":
					a := arg.([]any)
					if eval(t, tpl, tpl["Conditions"].(cfn)[a[0].(string)]).(bool) {
						return eval(t, tpl, a[1])
					}
					return eval(t, tpl, a[2])
				case "Fn::Split":
					a := arg.([]any)
					var out []any
					for _, s := range strings.Split(fmt.Sprint(eval(t, tpl, a[1])), a[0].(string)) {
						out = append(out, s)
					}
					return out
				}
			}
		}
		out := cfn{}
		for k, e := range v {
			if e := eval(t, tpl, e); e != nil {
				out[k] = e
			}
		}
		return out
	case []any:
		var out []any
		for _, e := range v {
			out = append(out, eval(t, tpl, e))
		}
		return out
	}
	return v
}

// routeAuthorizers maps each route of the HTTP API to the logical ID of
// the authorizer it runs, "" for none.
func routeAuthorizers(t *testing.T, res map[string]cfn) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range res {
		if r["Type"] != "AWS::ApiGatewayV2::Route" {
			continue
		}
		p := props(r)
		key := fmt.Sprint(p["RouteKey"])
		switch typ, _ := p["AuthorizationType"].(string); typ {
		case "", "NONE":
			out[key] = ""
		default:
			out[key] = getAtt(p["AuthorizerId"])
		}
	}
	return out
}

// stage returns the HTTP API's stage, the one that serves its routes.
func stage(t *testing.T, res map[string]cfn) cfn {
	t.Helper()
	var stages []cfn
	for _, r := range res {
		if r["Type"] == "AWS::ApiGatewayV2::Stage" && getAtt(props(r)["ApiId"]) == "HttpApi" {
			stages = append(stages, r)
		}
	}
	if len(stages) != 1 || props(stages[0])["StageName"] != "$default" || props(stages[0])["AutoDeploy"] != true {
		t.Fatalf("want one auto-deployed $default stage of the HTTP API, have %v", stages)
	}
	return stages[0]
}

// checkJWT: POST /votes runs the JWT authorizer with the stage's issuer
// and audience on the Authorization header; reads and the health check
// stay public.
func checkJWT(t *testing.T, res map[string]cfn, issuer, audience string) {
	t.Helper()
	auth := routeAuthorizers(t, res)
	id, ok := auth["POST /votes"]
	if !ok || id == "" {
		t.Fatalf("POST /votes runs no authorizer (%v): the body's voterId would be taken on trust", auth)
	}
	a := res[id]
	if a == nil || a["Type"] != "AWS::ApiGatewayV2::Authorizer" {
		t.Fatalf("POST /votes names authorizer %s, which the template does not define", id)
	}
	p := props(a)
	jwt, _ := p["JwtConfiguration"].(cfn)
	if p["AuthorizerType"] != "JWT" || jwt == nil || jwt["Issuer"] != issuer || !slices.Equal(jwt["Audience"].([]any), []any{audience}) {
		t.Errorf("authorizer %s: type %v, configuration %v; want JWT from issuer %s for audience %s", id, p["AuthorizerType"], jwt, issuer, audience)
	}
	if !slices.Equal(p["IdentitySource"].([]any), []any{"$request.header.Authorization"}) {
		t.Errorf("authorizer %s reads the token from %v, want the Authorization header", id, p["IdentitySource"])
	}
	for route, id := range auth {
		if route != "POST /votes" && id != "" {
			t.Errorf("%s is behind authorizer %s: reads and the health check are public", route, id)
		}
	}
}

// checkNoAuth: POST /votes takes the body's voterId, with no authorizer
// defined at all.
func checkNoAuth(t *testing.T, res map[string]cfn) {
	t.Helper()
	if id := routeAuthorizers(t, res)["POST /votes"]; id != "" {
		t.Errorf("POST /votes runs authorizer %s with auth=none", id)
	}
	for k, r := range res {
		if r["Type"] == "AWS::ApiGatewayV2::Authorizer" {
			t.Errorf("auth=none still defines authorizer %s", k)
		}
	}
}

// checkThrottling: the stage's default route throttling is rate requests/s
// with a bucket of burst.
func checkThrottling(t *testing.T, res map[string]cfn, rate, burst float64) {
	t.Helper()
	s, _ := props(stage(t, res))["DefaultRouteSettings"].(cfn)
	num := func(v any) float64 { // a --param reaches the template as a string, which CloudFormation takes
		f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
		if err != nil {
			return -1
		}
		return f
	}
	if s == nil || num(s["ThrottlingRateLimit"]) != rate || num(s["ThrottlingBurstLimit"]) != burst {
		t.Errorf("stage throttling %v, want %v requests/s, burst %v", s, rate, burst)
	}
}

// checkAccessLogs: the stage writes a JSON access log line per request,
// with what an abuse investigation needs, to a log group kept as long as
// the functions' logs; never the caller's token claims.
func checkAccessLogs(t *testing.T, res map[string]cfn) {
	t.Helper()
	st := stage(t, res)
	als, _ := props(st)["AccessLogSettings"].(cfn)
	if als == nil {
		t.Fatal("the HTTP API stage writes no access log")
	}
	group := strings.TrimSuffix(getAtt(als["DestinationArn"]), ".Arn")
	lg := res[group]
	if lg == nil || lg["Type"] != "AWS::Logs::LogGroup" {
		t.Fatalf("access logs go to %v, not a log group of the stack", als["DestinationArn"])
	}
	if got, want := props(lg)["RetentionInDays"], props(res["ReceiverLogGroup"])["RetentionInDays"]; got == nil || got != want {
		t.Errorf("access logs kept %v days, the functions' logs %v", got, want)
	}
	format := fmt.Sprint(als["Format"])
	var line map[string]string
	if err := json.Unmarshal([]byte(format), &line); err != nil {
		t.Fatalf("access log format is not a JSON object of strings: %v\n%s", err, format)
	}
	logged := map[string]bool{}
	for _, v := range line {
		logged[v] = true
	}
	for _, v := range []string{
		"$context.requestId", "$context.identity.sourceIp", "$context.routeKey", "$context.status",
		"$context.responseLatency", "$context.identity.userAgent", "$context.requestTime",
	} {
		if !logged[v] {
			t.Errorf("access log lacks %s: %s", v, format)
		}
	}
	if strings.Contains(format, "$context.authorizer.claims") || strings.Contains(strings.ToLower(format), "authorization") {
		t.Errorf("access log carries the caller's identity: %s", format)
	}
}

// checkCORS: browsers on origins may call the API, and no other; a
// preflight is answered by API Gateway, never by a function or the
// authorizer. No origins: no CORS configuration at all.
func checkCORS(t *testing.T, tpl cfn, origins []string) {
	t.Helper()
	res := resources(tpl)
	cors, _ := eval(t, tpl, props(res["HttpApi"])["CorsConfiguration"]).(cfn)
	if len(origins) == 0 {
		if len(cors) > 0 {
			t.Errorf("CORS open without corsOrigins: %v", cors)
		}
		return
	}
	if cors == nil {
		t.Fatalf("no CORS configuration for origins %v", origins)
	}
	var got []string
	for _, o := range cors["AllowOrigins"].([]any) {
		got = append(got, o.(string))
	}
	if !slices.Equal(got, origins) {
		t.Errorf("CORS allows origins %q, want %q", got, origins)
	}
	if cors["AllowCredentials"] == true {
		t.Error("CORS allows credentials: the API takes a bearer token, never cookies")
	}
	list := func(k string) []string {
		var out []string
		l, _ := cors[k].([]any)
		for _, v := range l {
			out = append(out, strings.ToLower(fmt.Sprint(v)))
		}
		return out
	}
	for _, m := range []string{"get", "post"} {
		if !slices.Contains(list("AllowMethods"), m) {
			t.Errorf("CORS does not allow %s: %v", m, cors["AllowMethods"])
		}
	}
	for _, h := range []string{"authorization", "content-type", "idempotency-key"} { // what a POST /votes sends
		if !slices.Contains(list("AllowHeaders"), h) {
			t.Errorf("CORS does not allow header %s: %v", h, cors["AllowHeaders"])
		}
	}
	// API Gateway answers a preflight itself only when no route matches
	// OPTIONS: an ANY route or $default would take it to the function,
	// through the route's authorizer, which a preflight (it carries no
	// token) cannot pass.
	for route, id := range routeAuthorizers(t, res) {
		method, _, _ := strings.Cut(route, " ")
		if method == "ANY" || method == "OPTIONS" || route == "$default" {
			t.Errorf("route %s (authorizer %q) would take CORS preflights", route, id)
		}
	}
}

// TestDevStage: a dev stage is disposable, its event table too; it takes
// the body's voterId unless asked for JWT; no CORS unless asked; the
// throttling and stream parallelization parameters reach the stage.
func TestDevStage(t *testing.T) {
	tpl := template(t, "dev", "throttleRate=50", "throttleBurst=100", "projectorParallelization=2")
	res := resources(tpl)
	ev := res["EventsTable"]
	if ev["DeletionPolicy"] != "Delete" || props(ev)["DeletionProtectionEnabled"] != false {
		t.Errorf("dev event table: policy %v, protection %v", ev["DeletionPolicy"], props(ev)["DeletionProtectionEnabled"])
	}
	checkNoAuth(t, res)
	checkCORS(t, tpl, nil)
	checkThrottling(t, res, 50, 100)
	checkAccessLogs(t, res)
	var factors []any
	for _, r := range res {
		if r["Type"] == "AWS::Lambda::EventSourceMapping" && getAtt(props(r)["EventSourceArn"]) == "EventsTable.StreamArn" {
			factors = append(factors, props(r)["ParallelizationFactor"])
		}
	}
	if !slices.Equal(factors, []any{float64(2)}) {
		t.Errorf("stream mappings' parallelization factors %v, want one, the parameter's 2", factors)
	}
}

// TestAuthNoneIsAChoice: outside dev, a stage takes the body's voterId on
// trust only when told to.
func TestAuthNoneIsAChoice(t *testing.T) {
	checkNoAuth(t, resources(template(t, "prod", "auth=none")))
}

// TestIncompleteAuthorizerIsRefused: a stage with the JWT authorizer (every
// stage but dev, unless auth=none) cannot be packaged, so not deployed,
// without an https issuer and an audience, and the message says which
// parameter to pass.
func TestIncompleteAuthorizerIsRefused(t *testing.T) {
	for _, c := range []struct {
		stage       string
		params      []string
		want, never []string
	}{
		{"prod", nil, []string{`Stage "prod"`, "without its issuer and audience", "--param jwtIssuer=https://", "--param jwtAudience=", "--param auth=none"}, nil},
		{"qa", []string{"jwtIssuer=https://id.example.com/"}, []string{`Stage "qa"`, "without its audience", "--param jwtAudience="}, []string{"--param jwtIssuer"}},
		{"dev", []string{"auth=jwt", "jwtIssuer=http://id.example.com/", "jwtAudience=votes-api"}, []string{`Stage "dev"`, "without its issuer.", "--param jwtIssuer=https://"}, []string{"--param jwtAudience"}},
		{"prod", []string{"auth=JWT"}, []string{`--param auth=JWT is neither "jwt" nor "none"`}, nil},
	} {
		t.Run(c.stage+" "+cmp.Or(strings.Join(c.params, " "), "no params"), func(t *testing.T) {
			dir, out, err := pack(t, c.stage, c.params...)
			if err == nil {
				t.Fatalf("packaged:\n%s", out)
			}
			msg := string(out)
			t.Logf("serverless package --stage %s %v: %v\n%s", c.stage, c.params, err, msg)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the message does not say %q", w)
				}
			}
			for _, n := range c.never {
				if strings.Contains(msg, n) {
					t.Errorf("the message asks for %q, which was given", n)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "cloudformation-template-update-stack.json")); err == nil {
				t.Error("a template was written all the same")
			}
		})
	}
}

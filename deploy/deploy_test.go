package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/infra/local"
	"votes/infra/queue"
)

// prodParams are what a production deploy must be given: the JWT
// authorizer's issuer and audience (auth=jwt is the default outside dev),
// and here the origins of a web front end.
var prodParams = []string{
	"jwtIssuer=https://id.example.com/", "jwtAudience=votes-api",
	"corsOrigins=https://vote.example.com,https://www.example.com",
}

// pack packages serverless.yml for stage, with each of params as a
// --param, with the Serverless Framework the repository pins (npm ci
// installs it). It returns the directory of the package and the framework's
// output, or the error the framework exited with.
func pack(t *testing.T, stage string, params ...string) (dir string, out []byte, err error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sls := filepath.Join(root, "node_modules", ".bin", "serverless")
	if _, err := os.Stat(sls); err != nil {
		t.Fatalf("the Serverless Framework is not installed: run `npm ci` in %s (make test does): %v", root, err)
	}
	buildZips(t)
	dir = t.TempDir()
	args := []string{"package", "--stage", stage, "--region", "eu-west-1", "--package", dir}
	for _, p := range params {
		args = append(args, "--param", p)
	}
	cmd := exec.Command(sls, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SLS_TELEMETRY_DISABLED=1", "SLS_NOTIFICATIONS_MODE=off")
	out, err = cmd.CombinedOutput()
	return dir, out, err
}

var (
	templatesMu sync.Mutex
	templates   = map[string]map[string]any{}
)

// template packages serverless.yml for stage with params and returns the
// CloudFormation, once per test binary for the same stage and params (the
// tests only read it).
func template(t *testing.T, stage string, params ...string) map[string]any {
	t.Helper()
	key := stage + " " + strings.Join(params, " ")
	templatesMu.Lock()
	defer templatesMu.Unlock()
	if tpl, ok := templates[key]; ok {
		return tpl
	}
	dir, out, err := pack(t, stage, params...)
	if err != nil {
		t.Fatalf("serverless package: %v\n%s", err, out)
	}
	t.Logf("serverless package --stage %s %v:\n%s", stage, params, out)
	raw, err := os.ReadFile(filepath.Join(dir, "cloudformation-template-update-stack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl map[string]any
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	templates[key] = tpl
	return tpl
}

var (
	buildOnce sync.Once
	buildOut  []byte
	buildErr  error
)

// buildZips runs make build once per test binary: the Lambda zips that
// serverless.yml packages.
func buildZips(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("make", "-s", "build")
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("make build: %v\n%s", buildErr, buildOut)
	}
}

// cfn is a generic view of a CloudFormation value.
type cfn = map[string]any

func resources(tpl cfn) map[string]cfn {
	out := map[string]cfn{}
	for k, v := range tpl["Resources"].(cfn) {
		out[k] = v.(cfn)
	}
	return out
}

func props(r cfn) cfn { return r["Properties"].(cfn) }

func getAtt(v any) string {
	if m, ok := v.(cfn); ok {
		if ga, ok := m["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("%v.%v", ga[0], ga[1])
		}
		if ref, ok := m["Ref"]; ok {
			return fmt.Sprintf("%v", ref)
		}
	}
	return fmt.Sprintf("%v", v)
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func TestServerlessWiring(t *testing.T) {
	const stage = "prod"
	tpl := template(t, stage, prodParams...)
	res := resources(tpl)
	settings := local.DefaultSettings()
	tables := dynamo.TablesFor(stage)
	queues := queue.NamesFor(stage)

	t.Run("functions", func(t *testing.T) {
		var deployed, want []string
		for logical, r := range res {
			if r["Type"] == "AWS::Lambda::Function" {
				deployed = append(deployed, logical)
			}
		}
		for _, name := range functions.Names() {
			want = append(want, title(name)+"LambdaFunction")
		}
		slices.Sort(deployed)
		slices.Sort(want)
		if !slices.Equal(deployed, want) {
			t.Errorf("serverless.yml deploys %v; the code has %v (functions.Names)", deployed, want)
		}
		for _, name := range functions.Names() {
			fn, ok := res[title(name)+"LambdaFunction"]
			if !ok {
				t.Fatalf("no function %s", name)
			}
			p := props(fn)
			if p["Runtime"] != "provided.al2023" || !slices.Equal(p["Architectures"].([]any), []any{"arm64"}) || p["Handler"] != "bootstrap" {
				t.Errorf("%s: runtime %v, architectures %v, handler %v", name, p["Runtime"], p["Architectures"], p["Handler"])
			}
			if timeout, ok := p["Timeout"].(float64); !ok || timeout != settings.Timeouts[name].Seconds() {
				t.Errorf("%s: timeout %v s, the local stack cuts invocations off at %v", name, p["Timeout"], settings.Timeouts[name])
			}
			if rc, ok := p["ReservedConcurrentExecutions"].(float64); !ok || rc != float64(settings.ReservedConcurrency[name]) || rc < 1 {
				t.Errorf("%s: reserved concurrency %v, want %d", name, p["ReservedConcurrentExecutions"], settings.ReservedConcurrency[name])
			}
			if role := getAtt(p["Role"]); role != title(name)+"Role.Arn" {
				t.Errorf("%s runs as %s, want its own role", name, role)
			}
			env := p["Environment"].(cfn)["Variables"].(cfn)
			for k, want := range map[string]string{
				"VOTES_EVENTS_TABLE": tables.Events, "VOTES_BALLOTS_TABLE": tables.Ballots, "VOTES_TALLIES_TABLE": tables.Tallies,
				"VOTES_REPAIR_MAX_RECEIVES": fmt.Sprint(settings.RepairMaxReceiveCount),
			} {
				if env[k] != want {
					t.Errorf("%s: %s = %v, want %s", name, k, env[k], want)
				}
			}
			for k, want := range map[string]string{
				"VOTES_SUBMISSIONS_QUEUE_URL": "SubmissionsQueue", "VOTES_DEAD_LETTER_QUEUE_URL": "SubmissionsDeadLetterQueue",
				"VOTES_PROJECTOR_FAILURE_QUEUE_URL": "ProjectorFailureQueue", "VOTES_REPAIR_FAILED_QUEUE_URL": "RepairFailedQueue",
			} {
				if got := getAtt(env[k]); got != want {
					t.Errorf("%s: %s refers to %s, want %s", name, k, got, want)
				}
			}
			if name == "processor" {
				for k, want := range map[string]time.Duration{
					"VOTES_RETRY_FAILING_FOR": settings.Retry.Failing, "VOTES_RETRY_NEWER_SCHEMA_FOR": settings.Retry.NewerSchema,
				} {
					if got, err := time.ParseDuration(fmt.Sprint(env[k])); err != nil || got != want {
						t.Errorf("processor: %s = %v, the local stack plays %v", k, env[k], want)
					}
				}
			}
			lg := res[title(name)+"LogGroup"]
			if lg == nil || props(lg)["RetentionInDays"] == nil {
				t.Errorf("%s: log group without retention", name)
			}
		}
	})

	t.Run("tables match the adapters", func(t *testing.T) {
		logical := map[string]string{tables.Events: "EventsTable", tables.Ballots: "BallotsTable", tables.Tallies: "TalliesTable", tables.Titles: "TitlesTable"}
		for _, spec := range tables.Specs() {
			r := res[logical[spec.Name]]
			if r == nil {
				t.Fatalf("no table resource for %s", spec.Name)
			}
			p := props(r)
			if p["TableName"] != spec.Name || p["BillingMode"] != "PAY_PER_REQUEST" {
				t.Errorf("%s: name %v, billing %v", spec.Name, p["TableName"], p["BillingMode"])
			}
			want := spec.CreateInput()
			var keys, attrs []string
			for _, k := range p["KeySchema"].([]any) {
				keys = append(keys, fmt.Sprintf("%v:%v", k.(cfn)["AttributeName"], k.(cfn)["KeyType"]))
			}
			for _, a := range p["AttributeDefinitions"].([]any) {
				attrs = append(attrs, fmt.Sprintf("%v:%v", a.(cfn)["AttributeName"], a.(cfn)["AttributeType"]))
			}
			var wantKeys, wantAttrs []string
			for _, k := range want.KeySchema {
				wantKeys = append(wantKeys, fmt.Sprintf("%s:%s", *k.AttributeName, k.KeyType))
			}
			for _, a := range want.AttributeDefinitions {
				wantAttrs = append(wantAttrs, fmt.Sprintf("%s:%s", *a.AttributeName, a.AttributeType))
			}
			if !slices.Equal(keys, wantKeys) || !slices.Equal(attrs, wantAttrs) {
				t.Errorf("%s: keys %v attributes %v, the adapters use %v %v", spec.Name, keys, attrs, wantKeys, wantAttrs)
			}
			view := ""
			if ss, ok := p["StreamSpecification"].(cfn); ok {
				view = fmt.Sprint(ss["StreamViewType"])
			}
			if view != string(spec.StreamView) {
				t.Errorf("%s: stream view %q, the projector needs %q", spec.Name, view, spec.StreamView)
			}
		}
		ev := res["EventsTable"]
		if ev["DeletionPolicy"] != "Retain" || ev["UpdateReplacePolicy"] != "Retain" || props(ev)["DeletionProtectionEnabled"] != true {
			t.Errorf("the %s event table can be deleted: policy %v, protection %v", stage, ev["DeletionPolicy"], props(ev)["DeletionProtectionEnabled"])
		}
		if pitr := props(ev)["PointInTimeRecoverySpecification"].(cfn); pitr["PointInTimeRecoveryEnabled"] != true {
			t.Error("the event table has no point-in-time recovery")
		}
	})

	t.Run("queues and event sources match the local stack", func(t *testing.T) {
		names := map[string]string{
			"SubmissionsQueue": queues.Submissions, "SubmissionsDeadLetterQueue": queues.DeadLetters,
			"ProjectorFailureQueue": queues.ProjectorFailed, "RepairFailedQueue": queues.RepairFailed,
		}
		for logical, name := range names {
			if got := props(res[logical])["QueueName"]; got != name {
				t.Errorf("%s is named %v, the code expects %s", logical, got, name)
			}
		}
		sq := props(res["SubmissionsQueue"])
		procTimeout := props(res["ProcessorLambdaFunction"])["Timeout"].(float64)
		if vt := sq["VisibilityTimeout"].(float64); vt != settings.VisibilityTimeout.Seconds() || vt < 6*procTimeout {
			t.Errorf("visibility timeout %v s: want %v s, and at least 6 x the processor's %v s", vt, settings.VisibilityTimeout.Seconds(), procTimeout)
		}
		rp := sq["RedrivePolicy"].(cfn)
		if getAtt(rp["deadLetterTargetArn"]) != "SubmissionsDeadLetterQueue.Arn" || rp["maxReceiveCount"] != float64(settings.MaxReceiveCount) {
			t.Errorf("redrive policy %v", rp)
		}
		// The processor gives up on a message, with the reason, long
		// before SQS's redrive would move it without one.
		redriveAfter := time.Duration(settings.MaxReceiveCount) * settings.VisibilityTimeout
		if limit := max(settings.Retry.Failing, settings.Retry.NewerSchema); redriveAfter < 2*limit {
			t.Errorf("redrive after %d receives (%v at the visibility timeout) comes before the processor gives up (%v)", settings.MaxReceiveCount, redriveAfter, limit)
		}
		retention := map[string]time.Duration{
			"SubmissionsQueue": settings.Retention, "SubmissionsDeadLetterQueue": settings.DeadLetterRetention, "ProjectorFailureQueue": settings.DeadLetterRetention,
		}
		for logical, want := range retention {
			if got := props(res[logical])["MessageRetentionPeriod"]; got != want.Seconds() {
				t.Errorf("%s keeps messages %v s, the local stack %v", logical, got, want)
			}
		}
		if settings.DeadLetterRetention <= settings.Retention {
			t.Errorf("dead letters kept %v, no longer than their source queue's %v: SQS counts their age from the first send", settings.DeadLetterRetention, settings.Retention)
		}

		fq := props(res["ProjectorFailureQueue"])
		repairTimeout := props(res["RepairerLambdaFunction"])["Timeout"].(float64)
		if vt, _ := fq["VisibilityTimeout"].(float64); vt != settings.RepairVisibility.Seconds() || vt < 6*repairTimeout {
			t.Errorf("failure queue visibility timeout %v s: want %v s, and at least 6 x the repairer's %v s", vt, settings.RepairVisibility.Seconds(), repairTimeout)
		}
		if rp, _ := fq["RedrivePolicy"].(cfn); rp == nil || getAtt(rp["deadLetterTargetArn"]) != "RepairFailedQueue.Arn" || rp["maxReceiveCount"] != float64(settings.RepairMaxReceiveCount) {
			t.Errorf("failure queue redrive policy %v, want to RepairFailedQueue after %d receives", fq["RedrivePolicy"], settings.RepairMaxReceiveCount)
		}

		var sqsESM, streamESM, repairESM cfn
		for _, r := range res {
			if r["Type"] == "AWS::Lambda::EventSourceMapping" {
				switch getAtt(props(r)["EventSourceArn"]) {
				case "SubmissionsQueue.Arn":
					sqsESM = props(r)
				case "EventsTable.StreamArn":
					streamESM = props(r)
				case "ProjectorFailureQueue.Arn":
					repairESM = props(r)
				}
			}
		}
		if sqsESM == nil || streamESM == nil || repairESM == nil {
			t.Fatal("missing event-source mappings")
		}
		if getAtt(sqsESM["FunctionName"]) != "ProcessorLambdaFunction.Arn" || getAtt(streamESM["FunctionName"]) != "ProjectorLambdaFunction.Arn" ||
			getAtt(repairESM["FunctionName"]) != "RepairerLambdaFunction.Arn" {
			t.Error("event sources invoke the wrong functions")
		}
		r := settings.Repairer
		window, _ := repairESM["MaximumBatchingWindowInSeconds"].(float64) // absent: none
		if repairESM["BatchSize"] != float64(r.BatchSize) || window != r.Window.Seconds() ||
			!slices.Equal(repairESM["FunctionResponseTypes"].([]any), []any{"ReportBatchItemFailures"}) {
			t.Errorf("failure queue mapping %v, the local stack plays batch %d window %v", repairESM, r.BatchSize, r.Window)
		}
		p := settings.Processor
		for fn, m := range map[string]struct {
			esm cfn
			max int
		}{"processor": {sqsESM, p.MaxConcurrency}, "repairer": {repairESM, r.MaxConcurrency}} {
			if sc, _ := m.esm["ScalingConfig"].(cfn); sc == nil || sc["MaximumConcurrency"] != float64(m.max) ||
				m.max > settings.ReservedConcurrency[fn] || m.max < 2 {
				t.Errorf("%s's SQS mapping scaling %v: want maximum concurrency %d, from 2 to its reserved %d (else the trigger is throttled)",
					fn, m.esm["ScalingConfig"], m.max, settings.ReservedConcurrency[fn])
			}
		}
		if sqsESM["BatchSize"] != float64(p.BatchSize) || sqsESM["MaximumBatchingWindowInSeconds"] != p.Window.Seconds() ||
			!slices.Equal(sqsESM["FunctionResponseTypes"].([]any), []any{"ReportBatchItemFailures"}) {
			t.Errorf("SQS mapping %v, the local stack plays batch %d window %v", sqsESM, p.BatchSize, p.Window)
		}
		s := settings.Projector
		if streamESM["BatchSize"] != float64(s.BatchSize) || streamESM["MaximumBatchingWindowInSeconds"] != s.Window.Seconds() ||
			streamESM["MaximumRetryAttempts"] != float64(s.MaxRetryAttempts) || streamESM["BisectBatchOnFunctionError"] != s.Bisect ||
			streamESM["StartingPosition"] != "TRIM_HORIZON" || streamESM["ParallelizationFactor"] != float64(s.Parallelization) ||
			!slices.Equal(streamESM["FunctionResponseTypes"].([]any), []any{"ReportBatchItemFailures"}) {
			t.Errorf("stream mapping %v, the local stack plays %+v", streamESM, s)
		}
		// Several batches of a shard at once (steps on a cell are serialised
		// by their conditional write, whoever runs them), and
		// the projector's reserved concurrency holds at least one shard's.
		if s.Parallelization < 2 || s.Parallelization > 10 || s.Parallelization > settings.ReservedConcurrency["projector"] {
			t.Errorf("stream parallelization factor %d: want 2 to 10, and within the projector's reserved concurrency %d",
				s.Parallelization, settings.ReservedConcurrency["projector"])
		}
		dest := streamESM["DestinationConfig"].(cfn)["OnFailure"].(cfn)["Destination"]
		if getAtt(dest) != "ProjectorFailureQueue.Arn" {
			t.Errorf("stream on-failure destination %v", dest)
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		// role -> action -> the resource it may act on
		want := map[string]map[string]string{
			"ReceiverRole": {"sqs:SendMessage": "SubmissionsQueue.Arn"},
			"QueryRole":    {"dynamodb:BatchGetItem": "TalliesTable.Arn", "dynamodb:GetItem": "TalliesTable.Arn TitlesTable.Arn", "dynamodb:PutItem": "TalliesTable.Arn", "dynamodb:Query": "TitlesTable.Arn"},
			"ProcessorRole": {
				"sqs:ReceiveMessage": "SubmissionsQueue.Arn", "sqs:DeleteMessage": "SubmissionsQueue.Arn",
				"sqs:GetQueueAttributes": "SubmissionsQueue.Arn", "sqs:ChangeMessageVisibility": "SubmissionsQueue.Arn",
				"sqs:SendMessage":  "SubmissionsDeadLetterQueue.Arn",
				"dynamodb:PutItem": "EventsTable.Arn", "dynamodb:GetItem": "EventsTable.Arn",
			},
			"ProjectorRole": {
				"dynamodb:DescribeStream": "EventsTable.StreamArn", "dynamodb:GetRecords": "EventsTable.StreamArn",
				"dynamodb:GetShardIterator": "EventsTable.StreamArn", "dynamodb:ListStreams": "*",
				"dynamodb:BatchGetItem": "BallotsTable.Arn TalliesTable.Arn", "dynamodb:PutItem": "BallotsTable.Arn TitlesTable.Arn",
				"dynamodb:GetItem": "BallotsTable.Arn TalliesTable.Arn TitlesTable.Arn", "dynamodb:UpdateItem": "TalliesTable.Arn TitlesTable.Arn",
				"sqs:SendMessage": "ProjectorFailureQueue.Arn",
			},
			"RepairerRole": {
				"sqs:ReceiveMessage": "ProjectorFailureQueue.Arn", "sqs:DeleteMessage": "ProjectorFailureQueue.Arn",
				"sqs:GetQueueAttributes": "ProjectorFailureQueue.Arn", "sqs:ChangeMessageVisibility": "ProjectorFailureQueue.Arn",
				"dynamodb:GetShardIterator": "EventsTable.StreamArn", "dynamodb:GetRecords": "EventsTable.StreamArn",
				"dynamodb:BatchGetItem": "BallotsTable.Arn TalliesTable.Arn", "dynamodb:PutItem": "BallotsTable.Arn TitlesTable.Arn",
				"dynamodb:GetItem": "BallotsTable.Arn TalliesTable.Arn TitlesTable.Arn", "dynamodb:UpdateItem": "TalliesTable.Arn TitlesTable.Arn",
				"sqs:SendMessage": "RepairFailedQueue.Arn",
			},
			"RankerRole": {
				"dynamodb:GetItem": "TalliesTable.Arn TitlesTable.Arn", "dynamodb:Query": "TitlesTable.Arn", "dynamodb:PutItem": "TitlesTable.Arn",
			},
		}
		var roles []string
		for k, r := range res {
			if r["Type"] == "AWS::IAM::Role" {
				roles = append(roles, k)
			}
		}
		slices.Sort(roles)
		if !slices.Equal(roles, []string{"ProcessorRole", "ProjectorRole", "QueryRole", "RankerRole", "ReceiverRole", "RepairerRole"}) {
			t.Fatalf("roles %v, want one per function", roles)
		}
		for role, actions := range want {
			got := map[string][]string{}
			for _, pol := range props(res[role])["Policies"].([]any) {
				for _, st := range pol.(cfn)["PolicyDocument"].(cfn)["Statement"].([]any) {
					st := st.(cfn)
					for _, a := range st["Action"].([]any) {
						action := a.(string)
						if strings.Contains(action, "*") {
							t.Errorf("%s allows wildcard action %s", role, action)
						}
						if strings.HasPrefix(action, "logs:") {
							logGroup := fmt.Sprint(st["Resource"])
							fn := strings.ToLower(strings.TrimSuffix(role, "Role"))
							if !strings.Contains(logGroup, "log-group:/aws/lambda/votes-${sls:stage}-"+fn+":*") && !strings.Contains(logGroup, "/aws/lambda/votes-"+stage+"-"+fn+":*") {
								t.Errorf("%s writes logs to %s, want only its own log group", role, logGroup)
							}
							continue
						}
						got[action] = append(got[action], getAtt(st["Resource"]))
					}
				}
			}
			for action, resources := range got {
				slices.Sort(resources)
				if w, ok := actions[action]; !ok || strings.Join(resources, " ") != w {
					t.Errorf("%s: %s on %v, want %q", role, action, resources, w)
				}
			}
			for action := range actions {
				if _, ok := got[action]; !ok {
					t.Errorf("%s lacks %s, which its function calls", role, action)
				}
			}
		}
		// The query function writes its tally summaries and nothing else:
		// not a cell, not the version registry.
		for _, pol := range props(res["QueryRole"])["Policies"].([]any) {
			for _, st := range pol.(cfn)["PolicyDocument"].(cfn)["Statement"].([]any) {
				st := st.(cfn)
				if !slices.Contains(st["Action"].([]any), any("dynamodb:PutItem")) {
					continue
				}
				keys, _ := st["Condition"].(cfn)["ForAllValues:StringLike"].(cfn)["dynamodb:LeadingKeys"].([]any)
				if len(st["Action"].([]any)) != 1 || !slices.Equal(keys, []any{dynamo.SummaryPrefix + "*"}) {
					t.Errorf("QueryRole puts %v with condition %v, want PutItem alone, on keys %s* alone", st["Action"], st["Condition"], dynamo.SummaryPrefix)
				}
			}
		}
	})

	t.Run("routes", func(t *testing.T) {
		var routes []string
		for _, r := range res {
			if r["Type"] == "AWS::ApiGatewayV2::Route" {
				routes = append(routes, fmt.Sprint(props(r)["RouteKey"]))
			}
		}
		slices.Sort(routes)
		// Each route names its method: an ANY route would take a CORS
		// preflight to the function (and the authorizer) instead of letting
		// API Gateway answer it.
		want := append(functions.QueryRoutes(), "POST /votes")
		slices.Sort(want)
		if !slices.Equal(routes, want) {
			t.Errorf("routes %v, want %v", routes, want)
		}
	})

	t.Run("JWT authorizer on POST /votes only", func(t *testing.T) {
		checkJWT(t, res, "https://id.example.com/", "votes-api")
	})

	t.Run("stage throttling", func(t *testing.T) {
		// The defaults: within the account's own HTTP API quota per
		// region (10,000 requests/s, burst 5,000), above which a stage's
		// limit does nothing, and under the ~5,000 votes/s the receiver's
		// reserved concurrency takes.
		checkThrottling(t, res, 1000, 2000)
	})

	t.Run("access logs", func(t *testing.T) { checkAccessLogs(t, res) })

	t.Run("CORS", func(t *testing.T) {
		checkCORS(t, tpl, []string{"https://vote.example.com", "https://www.example.com"})
	})

	t.Run("alarms", func(t *testing.T) {
		alarmed := map[string]bool{}
		for _, r := range res {
			if r["Type"] != "AWS::CloudWatch::Alarm" {
				continue
			}
			p := props(r)
			dim := p["Dimensions"].([]any)[0].(cfn)["Value"]
			alarmed[fmt.Sprintf("%v %v", p["MetricName"], dim)] = true
			if len(p["AlarmActions"].([]any)) == 0 {
				t.Errorf("alarm on %v %v notifies nobody", p["MetricName"], dim)
			}
		}
		want := []string{
			"ApproximateNumberOfMessagesVisible " + queues.DeadLetters,
			"ApproximateNumberOfMessagesVisible " + queues.ProjectorFailed,
			"ApproximateNumberOfMessagesVisible " + queues.RepairFailed,
			"IteratorAge votes-" + stage + "-projector",
		}
		for _, fn := range functions.Names() {
			want = append(want, "Errors votes-"+stage+"-"+fn, "Throttles votes-"+stage+"-"+fn)
		}
		for _, w := range want {
			if !alarmed[w] {
				t.Errorf("no alarm on %s", w)
			}
		}
	})
}

// TestLambdaBinariesLeaveOutTheLocalStack: the functions ship only what
// runs in Lambda: no emulator, no local runtime.
func TestLambdaBinariesLeaveOutTheLocalStack(t *testing.T) {
	for _, fn := range functions.Names() {
		out, err := exec.Command("go", "list", "-deps", "votes/cmd/"+fn).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for dep := range strings.Lines(string(out)) {
			dep = strings.TrimSpace(dep)
			if strings.Contains(dep, "sivchari/kumo") || strings.HasPrefix(dep, "votes/infra/local") || strings.HasPrefix(dep, "votes/internal/kumotest") ||
				strings.HasPrefix(dep, "votes/infra/faults") {
				t.Errorf("%s links %s", fn, dep)
			}
		}
		buildZips(t)
		bin := filepath.Join("..", "bin", fn, "bootstrap")
		mods, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go version -m: %v\n%s", err, mods)
		}
		if strings.Contains(string(mods), "sivchari/kumo") {
			t.Errorf("%s's binary holds kumo:\n%s", fn, mods)
		}
		zip, err := os.Stat(filepath.Join("..", "bin", fn+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s.zip: %d bytes", fn, zip.Size())
	}
}

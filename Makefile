# Lambda zips for serverless.yml: one bootstrap per function, linux/arm64,
# static, stripped, without the RPC shim (provided.al2023). The functions
# are the artifacts serverless.yml packages; a deployment test holds those
# to the code's list (functions.Names).
FUNCTIONS := $(shell sed -n 's|^ *artifact: bin/\(.*\)\.zip$$|\1|p' serverless.yml)
ZIPS := $(FUNCTIONS:%=bin/%.zip)
GO_LAMBDA := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags='-s -w -buildid='

# The Lambda Runtime Interface Emulator that votes dev --runtime rie runs
# each function under (infra/local.RIEVersion names the same).
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d

.PHONY: build clean package test bench microbench web-vendor rie
build: $(ZIPS)
	@for f in $(FUNCTIONS); do printf '%-10s %8d bytes zipped, %8d bytes unzipped\n' $$f $$(stat -c %s bin/$$f.zip) $$(stat -c %s bin/$$f/bootstrap); done

bin/%.zip: FORCE
	@mkdir -p bin/$*
	$(GO_LAMBDA) -o bin/$*/bootstrap ./cmd/$*
	@rm -f $@ && cd bin/$* && touch -d 2000-01-01T00:00:00Z bootstrap && zip -q -X ../$*.zip bootstrap

FORCE:

package: build
	npx --no-install serverless package --stage $${STAGE:-dev} --region $${REGION:-us-east-1}

# aws-lambda-rie into $(go env GOPATH)/bin (or GOBIN), where votes dev
# --runtime rie and its tests find it even off PATH.
rie:
	go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

# The README's test command: installs the pinned Serverless Framework (the
# deployment tests package serverless.yml with it), then runs every test.
test: node_modules/.bin/serverless
	go test -race -count=1 -timeout 45m ./...
	cd third_party/kumo && go test -race -count=1 ./internal/streams/

node_modules/.bin/serverless: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Headline figures on the local stack, one "name: value" line each, in
# about six minutes on 2 cores. The rebuild runs over the event table the
# other steps filled (about 80,000 events) and 20,000 seeded ones;
# scripts/rebuild-bench.sh times larger rebuilds.
bench:
	go run ./cmd/bench -rebuild-events 20000

# Go benchmarks of the hot paths, with allocations, each beside its floor.
microbench:
	go test -run '^$$' -bench . -benchmem ./domain ./projections ./infra/dynamo

# The dashboard's front-end dependencies (web/package.json, pinned), copied
# with their licences into web/static/vendor, which is committed: go build
# needs no npm. Run after changing web/package.json.
web-vendor:
	cd web && npm ci --no-audit --no-fund && npm run vendor

clean:
	rm -rf bin .serverless

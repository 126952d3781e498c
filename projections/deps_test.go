package projections

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayersPointDown keeps the domain and the projections free of AWS and
// Lambda types (they are the part of the product that does not change with
// where it runs), the Lambda handlers free of the adapters and the AWS
// SDK: handlers take Lambda events and call interfaces they declare, and
// the engineers' use cases in admin free of both, and of the handlers:
// admin calls interfaces it declares, which infra implements.
func TestLayersPointDown(t *testing.T) {
	for _, tc := range []struct {
		pkgs      []string
		forbidden []string
	}{
		{[]string{"votes/domain", "votes/projections"}, []string{"github.com/aws/", "votes/infra", "votes/handlers"}},
		{[]string{"votes/handlers"}, []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go", "votes/infra"}},
		{[]string{"votes/admin"}, []string{"github.com/aws/", "votes/infra", "votes/handlers", "votes/cmd"}},
	} {
		out, err := exec.Command("go", append([]string{"list", "-deps"}, tc.pkgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for dep := range strings.Lines(string(out)) {
			dep = strings.TrimSpace(dep)
			for _, f := range tc.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%v depend on %s", tc.pkgs, dep)
				}
			}
		}
	}
}

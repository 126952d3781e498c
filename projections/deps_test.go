package projections

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoAWSInTheCore keeps the domain and the projections free of AWS and
// Lambda types: they are the part of the product that does not change with
// where it runs.
func TestNoAWSInTheCore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "votes/domain", "votes/projections").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		if strings.HasPrefix(dep, "github.com/aws/") || strings.HasPrefix(dep, "votes/infra") || strings.HasPrefix(dep, "votes/handlers") {
			t.Errorf("domain or projections depend on %s", dep)
		}
	}
}

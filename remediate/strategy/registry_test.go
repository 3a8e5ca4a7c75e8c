package strategy

import (
	"slices"
	"testing"
)

// TestNeedsLacking: the capabilities a provider lacks, in the needs' order.
func TestNeedsLacking(t *testing.T) {
	n := Needs{Capabilities: []string{"power", "disks", "os-disk-detach", "helpers"}}
	has := func(caps ...string) func(string) bool {
		return func(c string) bool { return slices.Contains(caps, c) }
	}
	if got := n.Lacking(has("power", "disks", "os-disk-detach", "helpers")); got != nil {
		t.Errorf("all present: lacking %v, want none", got)
	}
	if got, want := n.Lacking(has("disks")), []string{"power", "os-disk-detach", "helpers"}; !slices.Equal(got, want) {
		t.Errorf("lacking %v, want %v", got, want)
	}
}

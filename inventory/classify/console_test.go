package classify

import (
	"errors"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
)

// TestConsoleReports: reports attest the VMs they name, by ID or name, with
// their note; a VM listed twice is an error naming the line; a VM named but
// never seen is an *UnmatchedReportsError listing it.
func TestConsoleReports(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		readErr   string   // substring; "" for none
		attested  []string // IDs
		unmatched []string
	}{
		{name: "by ID and name, notes kept", text: "# seen\n\nvm-1 BSOD\nweb-2\n", attested: []string{"vm-1", "vm-2"}},
		{name: "listed twice", text: "vm-1\nvm-1 again\n", readErr: "f.txt:2: vm-1 is listed twice"},
		{name: "typo", text: "vm-1\nvm-99\n", attested: []string{"vm-1"}, unmatched: []string{"vm-99"}},
	}
	fleet := []inventory.VM{{ID: "vm-1", Name: "db-1"}, {ID: "vm-2", Name: "web-2"}, {ID: "vm-3"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadConsoleReports(strings.NewReader(tt.text), "f.txt")
			if tt.readErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.readErr) {
					t.Fatalf("read: %v, want %q", err, tt.readErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, vm := range fleet {
				if a := r.attested(vm); a != nil {
					if a.Source != "f.txt" {
						t.Errorf("%s attested by %q", vm.ID, a.Source)
					}
					if vm.ID == "vm-1" && tt.name == "by ID and name, notes kept" && a.Note != "BSOD" {
						t.Errorf("note %q, want BSOD", a.Note)
					}
					got = append(got, vm.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.attested, ",") {
				t.Errorf("attested %v, want %v", got, tt.attested)
			}
			var ue *UnmatchedReportsError
			err = r.unmatched()
			switch {
			case tt.unmatched == nil && err != nil:
				t.Errorf("unmatched: %v, want none", err)
			case tt.unmatched != nil && (!errors.As(err, &ue) || strings.Join(ue.VMs, ",") != strings.Join(tt.unmatched, ",")):
				t.Errorf("unmatched: %v, want %v", err, tt.unmatched)
			}
		})
	}
}

package plan

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

var update = flag.Bool("update", false, "rewrite testdata/plan.golden.json")

// goldenInput is a small mixed fleet covering every strategy.
func goldenInput() Input {
	fleet := []inventory.Assessed{
		vmIn("prod", "vm-healthy", inventory.StateHealthy),
		vmIn("prod", "vm-loop", inventory.StateBootLoop),
		vmIn("prod", "vm-safe", inventory.StateSafeMode),
		vmIn("dev", "vm-unknown", inventory.StateUnknown),
		vmIn("dev", "vm-loop2", inventory.StateBootLoop),
		vmIn("ops", "vm-restore", inventory.StateBootLoop),
	}
	fleet[4].VM.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"}
	fleet[4].VM.Backups = []inventory.Backup{badBackup}
	in := baseInput(fleet...)
	in.Policy.AllowDataLoss = true
	in.Policy.Canary = 2
	in.Policy.WaveSize = 2
	in.Accounts["acme/ops"] = Account{Capabilities: []string{"backups", "power", "disks", "os-disk-detach"}, Helpers: []providers.HelperImage{image("is1a", "2019")}}
	return in
}

func TestGolden(t *testing.T) {
	p, err := Build(goldenInput())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "plan.golden.json")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("plan differs from %s (run go test -run TestGolden -update and review the diff)", golden)
	}
	// Round trip.
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("round trip differs:\n%+v\n%+v", got, p)
	}
	strategies := map[string]string{}
	for _, v := range got.VMs {
		strategies[v.ID] = string(v.Strategy)
	}
	want2 := map[string]string{"vm-healthy": "none", "vm-loop": "reboot-retry", "vm-safe": "delete-file",
		"vm-unknown": "manual", "vm-loop2": "reboot-retry", "vm-restore": "reboot-retry"}
	if !reflect.DeepEqual(strategies, want2) {
		t.Errorf("strategies %v", strategies)
	}
}

// TestReadStrict reads the malformed plans under testdata/bad: each file
// names, in its first error expectation below, what Read must say.
func TestReadStrict(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"empty.json", []string{"empty document"}},
		{"not-json.json", []string{"read plan"}},
		{"unknown-field.json", []string{`unknown field "approved"`}},
		{"unknown-vm-field.json", []string{`vms[2] (acme/prod/vm-safe): json: unknown field "colour"`}},
		{"wrong-type.json", []string{`vms[1] (acme/prod/vm-loop): json: cannot unmarshal number into Go struct field`}},
		{"future-version.json", []string{`version: "fixfleet.plan/v2" is not supported`}},
		{"wrong-version.json", []string{`version: "fixfleet.plan/v0" is not supported; this fixfleet reads "fixfleet.plan/v1"`}},
		{"no-version.json", []string{"version: missing"}},
		{"missing-fields.json", []string{"vms[1] (acme/prod/vm-loop): zone: missing", "vms[2] (acme/prod/vm-safe): id: missing", "created_at: missing"}},
		{"unknown-strategy.json", []string{`vms[1] (acme/prod/vm-loop): strategy "reimage" is not valid; valid strategies are none, reboot-retry`}},
		{"unknown-fallback.json", []string{`vms[1] (acme/prod/vm-loop): fallback "pray" is not valid`}},
		{"duplicate-vm.json", []string{`vms[2] (acme/prod/vm-loop): key "acme/prod/vm-loop" duplicates vms[1]`}},
		{"healthy-touched.json", []string{"vms[0] (acme/prod/vm-healthy): a healthy VM must have strategy none (has reboot-retry)"}},
		{"restore-not-allowed.json", []string{"vms[5] (acme/ops/vm-restore): restore-backup is planned but the plan's policy.allow_data_loss is false"}},
		{"bad-policy.json", []string{"policy.reboot_retry.max_restarts: 99 is out of range"}},
		{"wave-unknown-vm.json", []string{`waves[0]: VM "acme/prod/vm-ghost" is not in vms`}},
		{"trailing.json", []string{"unexpected data after the plan document"}},
		{"bad-state.json", []string{`vms[3] (acme/dev/vm-unknown): state "sick" is not valid`}},
		{"stopped-reboot.json", []string{"vms[3] (acme/dev/vm-unknown): strategy reboot-retry does not apply to a stopped VM"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "bad", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = Read(f)
			if err == nil {
				t.Fatal("Read accepted a malformed plan")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

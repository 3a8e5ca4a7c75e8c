package policy

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func parse(t *testing.T, src string) (Policy, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	var n *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		n = doc.Content[0]
	}
	return Parse(n)
}

func TestDefaultValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	d := Default()
	d.Strategies[0] = "x" // Default must hand out its own slice
	if Default().Strategies[0] != RebootRetry {
		t.Fatal("Default shares its strategy slice")
	}
	if p, err := Parse(nil); err != nil || !reflect.DeepEqual(p, Default()) {
		t.Fatalf("Parse(nil) = %+v, %v", p, err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want func(p *Policy)
	}{
		{"empty mapping", "{}", func(p *Policy) {}},
		{"null", "~", func(p *Policy) {}},
		{"partial", `
strategies: [helper-mount, reboot-retry]
reboot_retry: {max_restarts: 15}
allow_data_loss: true
helper_version: any
concurrency: {per_account: 5}
canary: 2
wave_size: 10
failure_threshold: 1
force_stop: true
stopped_vms: start
api_error_threshold: 0.25
`, func(p *Policy) {
			p.Strategies = []Strategy{HelperMount, RebootRetry}
			p.RebootRetry.MaxRestarts = 15
			p.AllowDataLoss = true
			p.HelperVersion = HelperAny
			p.Concurrency.PerAccount = 5
			p.Canary = 2
			p.WaveSize = 10
			p.FailureThreshold = 1
			p.ForceStop = true
			p.StoppedVMs = StoppedStart
			p.APIErrorThreshold = 0.25
		}},
		{"nested null keeps defaults", "reboot_retry:\nconcurrency: ~\n", func(p *Policy) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown top key", "canaries: 3", []string{"policy.canaries (line 1): unknown key", "valid keys are strategies, reboot_retry, allow_data_loss"}},
		{"unknown nested key", "reboot_retry:\n  maxrestarts: 4", []string{"policy.reboot_retry.maxrestarts (line 2): unknown key; valid keys are max_restarts, last_resort_restarts"}},
		{"wrong type", "reboot_retry:\n  max_restarts: lots", []string{"policy.reboot_retry.max_restarts (line 2)", "lots"}},
		{"fraction for int", "canary: 1.5", []string{`policy.canary (line 1): "1.5" is not a whole number`}},
		{"not a bool", "allow_data_loss: maybe", []string{`policy.allow_data_loss (line 1): "maybe" is not true or false`}},
		{"strategies not a list", "strategies: reboot-retry", []string{"policy.strategies (line 1): \"reboot-retry\" is not a list"}},
		{"not a mapping", "[1, 2]", []string{"policy (line 1): must be a mapping"}},
		{"nested not a mapping", "concurrency: 5", []string{"policy.concurrency (line 1): must be a mapping with keys total, per_account"}},
		{"duplicate key", "canary: 1\ncanary: 2", []string{"policy.canary (line 2): given twice"}},
		{"max restarts range", "reboot_retry: {max_restarts: 16}", []string{"policy.reboot_retry.max_restarts: 16 is out of range; valid values are 1 to 15"}},
		{"max restarts zero", "reboot_retry: {max_restarts: 0}", []string{"policy.reboot_retry.max_restarts"}},
		{"last resort below max", "reboot_retry: {max_restarts: 5, last_resort_restarts: 4}", []string{"policy.reboot_retry.last_resort_restarts: 4 is out of range; valid values are reboot_retry.max_restarts (5) to 15"}},
		{"last resort above 15", "reboot_retry: {last_resort_restarts: 16}", []string{"policy.reboot_retry.last_resort_restarts: 16 is out of range"}},
		{"unknown strategy", "strategies: [reboot-retry, reimage]", []string{`policy.strategies[1]: "reimage" is not a strategy; valid strategies are reboot-retry, race-the-boot, delete-file, helper-mount, copy-and-swap, cross-zone-mount, safe-mode-boot, restore-backup`}},
		{"duplicate strategy", "strategies: [delete-file, delete-file]", []string{`policy.strategies[1]: "delete-file" is listed twice`}},
		{"no strategies", "strategies: []", []string{"policy.strategies: at least one"}},
		{"helper version", "helper_version: newest", []string{`policy.helper_version: "newest" is not valid`, `"same"`, `"any"`}},
		{"stopped vms", "stopped_vms: reboot", []string{`policy.stopped_vms: "reboot" is not valid`, `"leave-stopped"`, `"start"`}},
		{"stopped vms not a string", "stopped_vms: true", []string{`policy.stopped_vms (line 1): "true" is not a string`}},
		{"concurrency", "concurrency: {total: 0, per_account: -1}", []string{"policy.concurrency.total", "policy.concurrency.per_account"}},
		{"canary", "canary: 0", []string{"policy.canary: 0 must be at least 1"}},
		{"wave size", "wave_size: 0", []string{"policy.wave_size"}},
		{"failure threshold", "failure_threshold: 0", []string{"policy.failure_threshold: 0 must be greater than 0 and at most 1"}},
		{"api threshold", "api_error_threshold: 1.5", []string{"policy.api_error_threshold: 1.5"}},
		{"several at once", "canary: 0\nwave_size: 0", []string{"policy.canary", "policy.wave_size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.src)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestParseDocumentNode(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("canary: 7"), &doc); err != nil {
		t.Fatal(err)
	}
	p, err := Parse(&doc)
	if err != nil || p.Canary != 7 {
		t.Fatalf("Parse(document) = %d, %v", p.Canary, err)
	}
}

func TestEnabled(t *testing.T) {
	p := Default()
	p.Strategies = []Strategy{DeleteFile}
	if !p.Enabled(DeleteFile) || p.Enabled(RestoreBackup) {
		t.Fatal("Enabled")
	}
}

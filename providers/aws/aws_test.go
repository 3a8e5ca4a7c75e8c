package aws_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

var amiRE = regexp.MustCompile(`^ami-[0-9a-f]{17}$`)

var awsZones = []string{"ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"}

func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

// fixture is a world served by the emulator and a provider opened on it.
type fixture struct {
	w   *world.World
	srv *ec2api.Server
	p   *providers.Provider
}

func newFixture(t *testing.T, vms int, faults *world.Faults, extra string) *fixture {
	t.Helper()
	clk := world.NewManualClock(world.DefaultOrigin)
	if faults == nil {
		faults = &world.Faults{Throttle: world.ThrottleOff, Latency: 1}
	}
	w, err := world.Generate(world.GenOptions{VMs: vms, Seed: 7, Zones: awsZones, Clock: clk, Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ec2api.Start(w, "127.0.0.1:0", ec2api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	p := open(t, w, srv, extra)
	return &fixture{w: w, srv: srv, p: p}
}

func open(t *testing.T, w *world.World, srv *ec2api.Server, extra string) *providers.Provider {
	t.Helper()
	return openAs(t, w, srv, world.DefaultAccount, extra)
}

// openAs opens the provider on the emulator as world account acct (its
// access key ID is the account name).
func openAs(t *testing.T, w *world.World, srv *ec2api.Server, acct, extra string) *providers.Provider {
	t.Helper()
	a := providers.Account{Tenant: "t", Name: acct, Provider: aws.Name, Regions: []string{"ap-northeast-1"},
		Options: node(t, "endpoint: "+srv.URL()+"\naccess_key_id_env: K\nsecret_access_key_env: S\nretry_max_backoff: 10ms\n"+extra)}
	env := providers.Env{Clock: w.Clock(), Getenv: func(k string) string {
		return map[string]string{"K": acct, "S": "not-a-real-secret"}[k]
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := aws.Open(ctx, a, env)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		regions []string
		zones   []string
		opts    string
		want    string // substring of the error, "" for none
	}{
		{"ok", []string{"ap-northeast-1"}, []string{"ap-northeast-1a"}, "profile: x\nrole_arn: arn:aws:iam::123456789012:role/fix\nexternal_id: e", ""},
		{"zones imply regions", nil, []string{"us-east-1a"}, "", ""},
		{"no scope", nil, nil, "", "regions"},
		{"bad region", []string{"tokyo"}, nil, "", "not an AWS region"},
		{"zone outside regions", []string{"us-east-1"}, []string{"ap-northeast-1a"}, "", "not among regions"},
		{"unknown key", []string{"us-east-1"}, nil, "secret_key: x", "valid keys are"},
		{"bad role", []string{"us-east-1"}, nil, "role_arn: fix", "not an IAM role ARN"},
		{"half static keys", []string{"us-east-1"}, nil, "access_key_id_env: K", "go together"},
		{"external id alone", []string{"us-east-1"}, nil, "external_id: e", "needs role_arn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := providers.Account{Name: "a", Provider: aws.Name, Regions: tc.regions, Zones: tc.zones}
			if tc.opts != "" {
				a.Options = node(t, tc.opts)
			}
			err := aws.Validate(a)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestListAndObserve(t *testing.T) {
	f := newFixture(t, 60, nil, "")
	c := ctx(t)
	vms, err := f.p.Enumerator.List(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 60 {
		t.Fatalf("List: %d VMs, want 60", len(vms))
	}
	var refs []providers.VMRef
	backups := 0
	for _, v := range vms {
		if v.Windows.Release == "" || v.OSDisk.ID == "" || v.OSDisk.Device != ec2api.RootDevice || len(v.NICs) == 0 || v.Region != "ap-northeast-1" {
			t.Errorf("List: incomplete VM %+v", v)
		}
		backups += len(v.Backups)
		refs = append(refs, providers.Ref(v))
	}
	if backups == 0 {
		t.Errorf("List: no backups found for any VM")
	}
	sig, err := f.p.Observer.Observe(c, append(refs, providers.VMRef{ID: "vm-99999", Zone: awsZones[0]}))
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 60 {
		t.Fatalf("Observe: %d entries, want 60 (the unknown VM left out)", len(sig))
	}
	crash := 0
	for _, s := range sig {
		if s.Console != "" {
			crash++
		}
	}
	if crash == 0 {
		t.Errorf("Observe: no console text for any unreachable VM")
	}
	ep, err := f.p.Guests.GuestEndpoint(c, refs[0])
	if err != nil || ep.Port != 5985 || ep.Host != vms[0].NICs[0].PrivateIP {
		t.Fatalf("GuestEndpoint = %+v, %v", ep, err)
	}
	if _, err := f.p.Guests.GuestEndpoint(c, providers.VMRef{ID: "vm-99999", Zone: awsZones[0]}); !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "vm-99999") {
		t.Fatalf("GuestEndpoint(unknown) = %v, want ErrNotFound naming it", err)
	}
}

// TestPowerBatches stops and starts many VMs: the calls are batched.
func TestPowerBatches(t *testing.T) {
	f := newFixture(t, 200, nil, "")
	c := ctx(t)
	vms, err := f.p.Enumerator.List(c)
	if err != nil {
		t.Fatal(err)
	}
	var refs []providers.VMRef
	for _, v := range vms {
		refs = append(refs, providers.Ref(v))
	}
	if err := f.p.Power.Stop(c, refs, true); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Power.Start(c, refs); err != nil {
		t.Fatal(err)
	}
	sig, err := f.p.Observer.Observe(c, refs)
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range sig {
		if s.Power != inventory.PowerRunning {
			t.Errorf("%s is %s after Start", id, s.Power)
		}
	}
	st := f.srv.Stats()
	t.Logf("200 VMs: StopInstances %d calls, StartInstances %d calls, %d requests in all, %d throttled",
		st.Calls["StopInstances"], st.Calls["StartInstances"], st.Total(), st.Throttled)
	if st.Calls["StopInstances"] > 5 || st.Calls["StartInstances"] > 5 {
		t.Errorf("not batched: StopInstances %d, StartInstances %d calls for 200 VMs", st.Calls["StopInstances"], st.Calls["StartInstances"])
	}
	if st.Throttled != 0 {
		t.Errorf("the provider's own buckets should keep it under EC2's: %d throttled", st.Throttled)
	}
}

// TestDiskFlow snapshots a boot-looping VM's root volume, moves it to a
// helper and back, restores from a backup, and releases the helper.
func TestDiskFlow(t *testing.T) {
	f := newFixture(t, 30, nil, "")
	c := ctx(t)
	vms, err := f.p.Enumerator.List(c)
	if err != nil {
		t.Fatal(err)
	}
	var vm inventory.VM
	for _, v := range vms {
		wid, _ := f.srv.WorldID(v.ID)
		if truth, _ := f.w.Truth(wid); truth == world.TruthBootLoop && v.Power == inventory.PowerRunning && len(v.Backups) > 0 {
			vm = v
			break
		}
	}
	if vm.ID == "" {
		t.Skip("no boot-looping VM with backups in this world")
	}
	ref := providers.Ref(vm)
	root := providers.DiskRef{ID: vm.OSDisk.ID, Region: vm.Region, Zone: vm.Zone}
	tags := providers.Tags{providers.TagRun: "run1", providers.TagVM: vm.ID, providers.TagRole: "snapshot"}
	snap, err := f.p.Disks.Snapshot(c, root, tags)
	if err != nil {
		t.Fatal(err)
	}
	found, err := f.p.Disks.FindSnapshots(c, tags)
	if err != nil || len(found) != 1 || found[0].Ref.ID != snap.ID || !found[0].Ready {
		t.Fatalf("FindSnapshots = %+v, %v", found, err)
	}
	if err := f.p.Power.Stop(c, []providers.VMRef{ref}, false); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Disks.Detach(c, ref, root); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Disks.Detach(c, ref, root); err != nil {
		t.Fatalf("Detach again: %v (want idempotent)", err)
	}
	helper, err := f.p.Helpers.Acquire(c, vm.Zone, vm.Windows, providers.Tags{providers.TagRun: "run1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.p.Helpers.Acquire(c, vm.Zone, vm.Windows, providers.Tags{providers.TagRun: "run1"})
	if err != nil || again.ID != helper.ID {
		t.Fatalf("Acquire again = %v, %v; want the same helper %s", again, err, helper.ID)
	}
	if err := f.p.Disks.Attach(c, helper, root, false); err != nil {
		t.Fatal(err)
	}
	ds, err := f.p.Disks.Describe(c, root)
	if err != nil || ds.AttachedTo != helper.ID || ds.Boot {
		t.Fatalf("Describe after Attach = %+v, %v", ds, err)
	}
	if err := f.p.Helpers.Release(c, helper); !errors.Is(err, providers.ErrConflict) {
		t.Fatalf("Release with a foreign volume attached = %v, want ErrConflict", err)
	}
	if err := f.p.Disks.Detach(c, helper, root); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Disks.Attach(c, ref, root, true); err != nil {
		t.Fatal(err)
	}
	ds, err = f.p.Disks.Describe(c, root)
	if err != nil || ds.AttachedTo != vm.ID || !ds.Boot {
		t.Fatalf("Describe after reattach = %+v, %v", ds, err)
	}
	if err := f.p.Helpers.Release(c, helper); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Helpers.Release(c, helper); err != nil {
		t.Fatalf("Release again: %v (want idempotent)", err)
	}
	bks, err := f.p.Backups.List(c, ref)
	if err != nil || len(bks) == 0 {
		t.Fatalf("Backups.List = %v, %v", bks, err)
	}
	rtags := providers.Tags{providers.TagRun: "run1", providers.TagVM: vm.ID, providers.TagRole: "restore-disk"}
	d, err := f.p.Backups.Restore(c, bks[0], vm.Zone, rtags)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := f.p.Disks.FindDisks(c, rtags)
	if err != nil || len(fd) != 1 || fd[0].Ref.ID != d.ID {
		t.Fatalf("FindDisks = %+v, %v", fd, err)
	}
	cp, err := f.p.Disks.FromSnapshot(c, snap, vm.Zone, providers.Tags{providers.TagRun: "run1", providers.TagRole: "copy"})
	if err != nil || cp.ID == "" {
		t.Fatalf("FromSnapshot = %v, %v", cp, err)
	}
	if err := f.p.Power.Start(c, []providers.VMRef{ref}); err != nil {
		t.Fatal(err)
	}
	if a := f.w.Audit(); a.DisksLost != 0 {
		t.Errorf("audit: %+v", a)
	}
}

func TestErrorsClassified(t *testing.T) {
	f := newFixture(t, 10, nil, "")
	c := ctx(t)
	for _, tc := range []struct {
		name  string
		call  func() error
		class error
		names string
	}{
		{"describe unknown disk", func() error {
			_, err := f.p.Disks.Describe(c, providers.DiskRef{ID: "vol-missing", Zone: awsZones[0]})
			return err
		}, providers.ErrNotFound, "vol-missing"},
		{"stop unknown vm", func() error {
			return f.p.Power.Stop(c, []providers.VMRef{{ID: "i-missing", Zone: awsZones[0]}}, false)
		}, providers.ErrNotFound, "i-missing"},
		{"restart stopped vm", func() error {
			vms, _ := f.p.Enumerator.List(c)
			for _, v := range vms {
				if v.Power == inventory.PowerStopped {
					return f.p.Power.Restart(c, providers.Ref(v))
				}
			}
			return providers.Errorf(providers.ErrConflict, "Restart", "none stopped", "skip")
		}, providers.ErrConflict, ""},
		{"helper of no image", func() error {
			_, err := f.p.Helpers.Acquire(c, awsZones[0], inventory.WindowsVersion{Release: "1999"}, nil)
			return err
		}, providers.ErrNotFound, "1999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.class, tc.names)
			}
			if strings.Contains(err.Error(), "not-a-real-secret") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestThrottledByEmulator: without the provider's pacing, a burst of
// StartInstances is refused the way EC2 does, and classified ErrThrottled.
func TestThrottledAnswer(t *testing.T) {
	f := newFixture(t, 10, nil, "retry_max_attempts: 1\n")
	c := ctx(t)
	// One SDK attempt per call (so that a throttled call is seen): List
	// is tried again on a transient error (a dropped connection).
	var vms []inventory.VM
	var err error
	for range 5 {
		if vms, err = f.p.Enumerator.List(c); err == nil || !providers.Retryable(err) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	// Drain the emulator's StartInstances bucket (5) with helpers of a
	// release that has no image: each RunInstances still takes a token.
	var last error
	for i := 0; i < 8; i++ {
		_, last = f.p.Helpers.Acquire(c, vms[0].Zone, inventory.WindowsVersion{Release: vms[0].Windows.Release}, providers.Tags{"n": string(rune('a' + i))})
	}
	if last != nil && !providers.Retryable(last) {
		t.Fatalf("Acquire: %v", last)
	}
	if st := f.srv.Stats(); st.Throttled != 0 {
		t.Fatalf("the provider's buckets let %d requests through to be throttled", st.Throttled)
	}
}

// TestFaults: 5xx and dropped connections come back as ErrUnavailable and
// the provider's waits survive them.
func TestFaults(t *testing.T) {
	f := newFixture(t, 20, &world.Faults{Throttle: world.ThrottleOff, Latency: 1, ErrorRate: 0.05, DropBeforeRate: 0.02, DropAfterRate: 0.02}, "retry_max_attempts: 5\n")
	c := ctx(t)
	var vms []inventory.VM
	var err error
	for range 20 {
		if vms, err = f.p.Enumerator.List(c); err == nil {
			break
		}
		if !errors.Is(err, providers.ErrUnavailable) {
			t.Fatalf("List: %v, want ErrUnavailable or success", err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	st := f.srv.Stats()
	if st.Errors+st.Dropped == 0 {
		t.Logf("no fault was injected in %d requests", st.Total())
	}
	_ = vms
}

// TestHelperImagesPerRegion: an account configured with regions only finds
// Amazon's Windows AMIs (no fixfleet tag on them), one ID per region and
// release, offered in every zone DescribeAvailabilityZones lists.
func TestHelperImagesPerRegion(t *testing.T) {
	f := newFixture(t, 6, nil, "")
	ims, err := f.p.Helpers.Images(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.srv.Stats().Calls["DescribeAvailabilityZones"]; n == 0 {
		t.Error("Images never asked DescribeAvailabilityZones for the region's zones")
	}
	byRelease := map[string]map[string]bool{} // release -> AMI IDs
	zones := map[string]map[string]bool{}     // release -> zones
	for _, im := range ims {
		if !amiRE.MatchString(im.ImageID) {
			t.Errorf("image %+v: ID is not an AMI ID (ami- and 17 hex digits)", im)
		}
		if byRelease[im.Windows.Release] == nil {
			byRelease[im.Windows.Release], zones[im.Windows.Release] = map[string]bool{}, map[string]bool{}
		}
		byRelease[im.Windows.Release][im.ImageID] = true
		zones[im.Windows.Release][im.Zone] = true
	}
	if len(byRelease) == 0 {
		t.Fatal("Images found no helper image for an account configured with regions only")
	}
	for rel, ids := range byRelease {
		if len(ids) != 1 {
			t.Errorf("Windows Server %s: %d AMI IDs in one region, want 1", rel, len(ids))
		}
		if len(zones[rel]) != len(awsZones) {
			t.Errorf("Windows Server %s: offered in zones %v, want all of %v", rel, zones[rel], awsZones)
		}
	}
}

// TestEC2IDFormats: the emulator shows instances, volumes and snapshots
// under IDs in EC2's formats, as a real account does.
func TestEC2IDFormats(t *testing.T) {
	f := newFixture(t, 12, nil, "")
	vms, err := f.p.Enumerator.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	re := map[string]*regexp.Regexp{}
	for _, p := range []string{"i", "vol", "snap"} {
		re[p] = regexp.MustCompile(`^` + p + `-[0-9a-f]{17}$`)
	}
	backups := 0
	for _, v := range vms {
		if !re["i"].MatchString(v.ID) {
			t.Errorf("instance ID %q", v.ID)
		}
		if !re["vol"].MatchString(v.OSDisk.ID) {
			t.Errorf("%s: root volume ID %q", v.ID, v.OSDisk.ID)
		}
		for _, b := range v.Backups {
			backups++
			if !re["snap"].MatchString(b.ID) {
				t.Errorf("%s: backup snapshot ID %q", v.ID, b.ID)
			}
		}
	}
	if backups == 0 {
		t.Error("no backups listed: the snapshot IDs went unchecked")
	}
}

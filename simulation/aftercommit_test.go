package simulation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/fixfleet/fixfleet/internal/secretscan"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/fleet"
)

// everyStepWorlds are, by face, the worlds in which every strategy the
// face can run runs (see cmd/fixfleet's TestKillAtEveryStep, which shares
// them). every-step-azure.json is every-step.json with Azure's zone names,
// less vm-00009 and vm-00014, whose backups only a face with backups
// restores, vm-00010 to vm-00013 (cross-zone-mount, which needs os-disk-detach,
// and the powered-off VMs whose disks are read offline), and vm-00015
// and vm-00016 (safe-mode-boot, which needs os-disk-detach).
var everyStepWorlds = map[string]string{FaceSim: "testdata/every-step.json", FaceAzure: "testdata/every-step-azure.json"}

// mutations are the mutating methods of the provider contract
// (providers.go) and the world operation each reaches through the
// simulator's face. Tags are given at creation: the contract has no
// separate tagging call.
var mutations = []struct{ method, op string }{
	{"Power.Stop", "StopVMs"},
	{"Power.Start", "StartVMs"},
	{"Power.Restart", "RestartVM"},
	{"Disks.Snapshot", "Snapshot"},
	{"Disks.Detach", "DetachDisk"},
	{"Disks.Attach", "AttachDisk"},
	{"Disks.FromSnapshot", "DiskFromSnapshot"},
	{"Backups.Restore", "RestoreBackup"},
	{"Helpers.Acquire", "CreateHelper"},
	{"Helpers.Release", "ReleaseHelper"},
	{"OSDiskSwapper.SwapOSDisk", "SwapBootDisk"},
	{"CopyDeleter.DeleteCopy", "DeleteDisk"},
}

// creations are the operations that make a resource: with their reply
// lost, the run must find the resource again by tag, not make another.
var creations = map[string]bool{"Snapshot": true, "DiskFromSnapshot": true, "RestoreBackup": true, "CreateHelper": true}

// incidentOutcome is what one run of the every-step world ended with.
type incidentOutcome struct {
	end   map[string]string // VM ID -> outcome and truth
	audit world.Audit
}

// runEveryStep plans and applies the every-step world through face on
// virtual time, losing the reply of drop's call when drop is set. Call it
// inside a synctest bubble.
func runEveryStep(ctx context.Context, face string, drop *world.DropReply, dir string) (incidentOutcome, error) {
	b, err := Open(Virtual(Options{Face: face, World: WorldOptions{Scenario: everyStepWorlds[face]}}))
	if err != nil {
		return incidentOutcome{}, err
	}
	defer b.Close()
	f, err := b.OpenFleet(ctx)
	if err != nil {
		return incidentOutcome{}, err
	}
	defer f.Close()
	pol := f.Policy
	pol.AllowDataLoss = true
	p, err := f.Plan(ctx, pol, fleet.AssessOptions{})
	if err != nil {
		return incidentOutcome{}, err
	}
	if drop != nil {
		fs := b.World().Faults()
		fs.DropReplies = []world.DropReply{*drop}
		if err := b.World().SetFaults(fs); err != nil {
			return incidentOutcome{}, err
		}
	}
	j, err := f.OpenJournal(ctx, filepath.Join(dir, "fixfleet.db"))
	if err != nil {
		return incidentOutcome{}, err
	}
	defer j.Close()
	res, err := f.Apply(ctx, p, j, fleet.ApplyOptions{})
	if err != nil {
		return incidentOutcome{}, err
	}
	if res.Status != apply.RunDone {
		var why []string
		for _, v := range res.VMs {
			if v.Status == journal.VMFlagged || v.Status == journal.VMFailed {
				why = append(why, fmt.Sprintf("%s %s on %s: %s", v.Key, v.Status, v.Strategy, v.Reason))
			}
		}
		return incidentOutcome{}, fmt.Errorf("run %s: %s; %s", res.Status, res.Message, strings.Join(why, "; "))
	}
	a, err := b.Audit(ctx)
	if err != nil {
		return incidentOutcome{}, err
	}
	return incidentOutcome{end: EndStates(res.VMs, a.Truth), audit: a}, nil
}

// afterCommitFaces are the faces the every-step world is run through:
// the simulator's own, and Azure, whose OS disks are swapped rather than
// detached (copy-and-swap: DiskFromSnapshot, SwapBootDisk).
var afterCommitFaces = []string{FaceSim, FaceAzure}

// TestAfterCommitEveryMutation loses, one run at a time, the reply of
// every call of every mutating operation of the provider contract that an
// uninterrupted run of the every-step world makes, through each of
// afterCommitFaces: the world applies the change and the caller sees a
// dropped connection. Each run must end as the fault-free one did, with no
// invariant break, no leftover, and no creation repeated (a resource whose
// creation's reply was lost is found again by its tags). A mutation that
// no face's run makes fails the test.
func TestAfterCommitEveryMutation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few dozen incidents")
	}
	w, err := NewWorld(WorldOptions{Scenario: everyStepWorlds[FaceSim]}, Frozen)
	if err != nil {
		t.Fatal(err)
	}
	secretscan.Register(t, "winrm-password", w.GuestPassword().Reveal())
	for _, k := range w.EscrowedKeys() {
		secretscan.Register(t, "bitlocker-recovery-key", k.Reveal())
	}
	outputs := secretscan.Dir(t) // journals, scanned for the world's secrets after the package's tests
	var total afterCommitTally
	reached := map[string]bool{}
	for _, face := range afterCommitFaces {
		t.Run(face, func(t *testing.T) {
			dir := filepath.Join(outputs, face)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tally := afterCommitEveryMutation(t, face, dir)
			for op := range tally.applied {
				reached[op] = true
			}
			total.points += tally.points
			total.breaks += tally.breaks
			total.leftovers += tally.leftovers
		})
	}
	for _, m := range mutations {
		if !reached[m.op] {
			t.Errorf("no face's run of the every-step worlds makes %s (%s): choose worlds that do", m.method, m.op)
		}
	}
	t.Logf("%d points, %d invariant breaks, %d leftovers", total.points, total.breaks, total.leftovers)
}

// afterCommitTally is what afterCommitEveryMutation counted on one face.
type afterCommitTally struct {
	points, breaks, leftovers int
	applied                   map[string]int // the fault-free run's applied calls per operation
}

// afterCommitEveryMutation is TestAfterCommitEveryMutation on one face,
// its journals written under outputs.
func afterCommitEveryMutation(t *testing.T, face, outputs string) afterCommitTally {
	ctx := context.Background()
	var clean incidentOutcome
	var err error
	synctest.Test(t, func(t *testing.T) {
		if clean, err = runEveryStep(ctx, face, nil, outputs); err != nil {
			t.Fatal(err)
		}
	})
	if inv := clean.audit.Invariants(); inv != (world.Invariants{}) || clean.audit.Leftovers != 0 {
		t.Fatalf("the fault-free run breaks invariants %+v, leftovers %v", inv, clean.audit.LeftoverList)
	}
	applied := clean.audit.Calls.Applied
	type point struct {
		method string
		drop   world.DropReply
	}
	var points []point
	var unreached []string
	for _, m := range mutations {
		if applied[m.op] == 0 {
			unreached = append(unreached, m.method+" ("+m.op+")")
		}
		for n := 1; n <= applied[m.op]; n++ {
			// Under -race, the first call of each operation only (the
			// whole set runs without it: go test ./simulation -run
			// TestAfterCommitEveryMutation -v).
			if raceDetector && n > 1 {
				break
			}
			points = append(points, point{m.method, world.DropReply{Op: m.op, Nth: n}})
		}
	}

	type result struct {
		out incidentOutcome
		err error
	}
	results := make([]result, len(points))
	t.Run("points", func(t *testing.T) {
		for i, pt := range points {
			dir := filepath.Join(outputs, fmt.Sprintf("%s-%d", pt.drop.Op, pt.drop.Nth))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Run(fmt.Sprintf("%s-%d", pt.drop.Op, pt.drop.Nth), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(*testing.T) {
					out, err := runEveryStep(context.Background(), face, &pt.drop, dir)
					results[i] = result{out, err}
				})
			})
		}
	})

	breaks, leftovers := 0, 0
	for i, pt := range points {
		name := fmt.Sprintf("%s: reply of %s #%d lost", pt.method, pt.drop.Op, pt.drop.Nth)
		r := results[i]
		if r.err != nil {
			t.Errorf("%s: %v", name, r.err)
			continue
		}
		a := r.out.audit
		if a.Calls.Injected != 1 {
			t.Errorf("%s: %d replies lost, want exactly 1 (the run made fewer such calls than the fault-free one)", name, a.Calls.Injected)
		}
		v := a.Violations()
		breaks += len(v)
		for _, s := range v {
			t.Errorf("%s: invariant broken: %s", name, s)
		}
		leftovers += a.Leftovers
		for _, l := range a.LeftoverList {
			t.Errorf("%s: leftover %s %s %s", name, l.Kind, l.ID, l.On)
		}
		for op := range creations {
			if got, want := a.Calls.Applied[op], applied[op]; got != want {
				t.Errorf("%s: %d %s calls applied, the fault-free run %d: a creation of unknown outcome was repeated, not found by tag", name, got, op, want)
			}
		}
		var diff []string
		for vm, want := range clean.end {
			if got := r.out.end[vm]; got != want {
				diff = append(diff, fmt.Sprintf("%s: %s, fault-free %s", vm, got, want))
			}
		}
		sort.Strings(diff)
		if len(diff) > 0 {
			t.Errorf("%s: end state differs:\n%s", name, strings.Join(diff, "\n"))
		}
	}
	var lines []string
	for _, pt := range points {
		lines = append(lines, fmt.Sprintf("%s #%d", pt.drop.Op, pt.drop.Nth))
	}
	t.Logf("lost the reply of %d mutating calls: %s", len(points), strings.Join(lines, ", "))
	if len(unreached) > 0 {
		t.Logf("mutations this face's run never makes: %s", strings.Join(unreached, ", "))
	}
	t.Logf("%s: %d points, %d invariant breaks, %d leftovers", face, len(points), breaks, leftovers)
	return afterCommitTally{points: len(points), breaks: breaks, leftovers: leftovers, applied: applied}
}

package world

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/invdoc"
)

// Incident profiles of FromInventory besides a share list.
const (
	// ProfileAll: every VM boot-loops at once (the seed incident's worst
	// case). The default.
	ProfileAll = "all"
	// ProfileAsIs: each VM as the inventory found it (its state, power and
	// guest access), to rebuild a fleet's own incident.
	ProfileAsIs = "as-is"
)

// InventoryOptions say how FromInventory turns an inventory into a world.
type InventoryOptions struct {
	// Seed draws what the inventory does not say (disk identities,
	// recovery keys, crash timings) and the world's own credentials.
	Seed int64
	// Profile is ProfileAll (""), ProfileAsIs, or shares in ParseMix's
	// syntax ("boot-loop=60,safe-mode=20,healthy=20"), dealt out in a
	// shuffle drawn from Seed.
	Profile string
}

// FromInventory turns an inventory document into a scenario: the same VMs
// (IDs, names, tenants, accounts, tags, zones, releases, OS disk sizes,
// disk identities where known, BitLocker status and whether the key
// source holds the key, backups with their dates), the accounts' helper
// images, and the providers' API throttling (EC2's buckets for aws
// accounts). Nothing secret comes from the inventory (it holds none): the
// world gets its own administrator password and recovery keys, drawn from
// Seed. The incident profile decides which VMs boot-loop, sit in safe mode
// or stay healthy; no looping VM recovers by itself. Errors name the VM
// and field.
func FromInventory(doc invdoc.Document, o InventoryOptions) (Scenario, error) {
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x1f0e))
	now := doc.GeneratedAt.UTC()
	if now.IsZero() {
		now = DefaultOrigin
	}
	if _, ok := inventory.BuiltinIncidents()[doc.Incident]; !ok {
		return Scenario{}, fmt.Errorf("inventory: incident %q is not a built-in profile", doc.Incident)
	}
	kinds, err := profileKinds(doc, o, rng)
	if err != nil {
		return Scenario{}, err
	}
	faults := DefaultFaults()
	sc := Scenario{Version: ScenarioVersion, Seed: o.Seed, Incident: doc.Incident, Now: now,
		GuestAccess: GuestAccessSpec{Username: "Administrator", Password: (&gen{rng: rng}).password()}, Faults: faults}
	zones := map[string]bool{}
	relIdentity := map[string]inventory.DiskIdentity{}
	identityOf := func(rel string) inventory.DiskIdentity {
		if _, ok := relIdentity[rel]; !ok {
			relIdentity[rel] = randIdentity(rng, inventory.PartitionGPT)
		}
		return relIdentity[rel]
	}
	seenImage := map[string]bool{}
	for _, a := range doc.Accounts {
		if a.Provider == "aws" {
			sc.Faults.Throttle = ThrottleEC2
		}
		for _, h := range a.HelperImages {
			zones[h.Zone] = true
			if k := h.Zone + "/" + h.Windows.Release; !seenImage[k] {
				seenImage[k] = true
				sc.Images = append(sc.Images, ImageSpec{Zone: h.Zone, Release: h.Windows.Release, Build: h.Windows.Build,
					ImageID: h.ImageID, Identity: identityOf(h.Windows.Release)})
			}
		}
	}
	for i, v := range doc.VMs {
		zones[v.Zone] = true
		if v.Provider == "aws" {
			sc.Faults.Throttle = ThrottleEC2
		}
		if n := len(v.Evidence.Samples); n > 0 && v.Evidence.Samples[n-1].ConsoleAvailable {
			sc.ConsoleAvailable = true
		}
		vs, err := vmFromInventory(v, i+1, rng, identityOf)
		if err != nil {
			return Scenario{}, err
		}
		if err := Strike(&vs, i+1, kinds[i], doc.Incident, now, o.Seed); err != nil {
			return Scenario{}, fmt.Errorf("inventory: vms[%d] (%s): %w", i, v.ID, err)
		}
		// A drill is the worst case: no VM fetches the fixed file by
		// itself.
		vs.Condition.RecoverAfterBoots = 0
		sc.VMs = append(sc.VMs, vs)
	}
	for z := range zones {
		sc.Zones = append(sc.Zones, z)
	}
	sort.Strings(sc.Zones)
	return sc, nil
}

// vmFromInventory is the VM as the inventory knows it, before the
// incident strikes.
func vmFromInventory(v invdoc.VM, n int, rng *rand.Rand, identityOf func(string) inventory.DiskIdentity) (VMSpec, error) {
	vs := VMSpec{ID: v.ID, Name: v.Name, Tenant: v.Tenant, Account: v.Account, Zone: v.Zone, Tags: cloneTags(v.Tags),
		Windows: v.Windows, PrivateIP: ipOf(uint32(n + n/254*2)), Power: inventory.PowerRunning}
	if vs.Windows.Release == "" {
		return VMSpec{}, fmt.Errorf("inventory: vm %s: windows.release is unknown; the world needs it", v.ID)
	}
	d := &DiskSpec{ID: v.OSDisk.ID}
	if d.ID == "" {
		d.ID = "disk-" + v.ID
	}
	d.SizeGB = v.OSDisk.SizeGB
	if d.SizeGB <= 0 {
		d.SizeGB = 40
	}
	d.Identity = v.OSDisk.Identity
	if d.Identity.IsZero() {
		// Unknown to the control plane: a fresh one, or (as often) the
		// image's, which is the collision helper-mount guards against.
		if rng.Float64() < calib.ShareImageIdentity {
			d.Identity = identityOf(vs.Windows.Release)
		} else {
			d.Identity = randIdentity(rng, inventory.PartitionGPT)
		}
	}
	if enc := v.OSDisk.Encryption; enc.BitLocker {
		keyID := enc.KeyID
		if keyID == "" {
			keyID = randIdentity(rng, inventory.PartitionGPT).ID
		}
		d.BitLocker = &BitLockerSpec{KeyID: keyID, RecoveryKey: randRecoveryKey(rng), Escrowed: v.KeyInSource == nil || *v.KeyInSource}
	}
	vs.OSDisk = d
	for _, b := range v.Backups {
		size := b.SizeGB
		if size <= 0 {
			size = d.SizeGB
		}
		vs.Backups = append(vs.Backups, BackupSpec{ID: b.ID, Kind: b.Kind, TakenAt: b.TakenAt.UTC(), SizeGB: size})
	}
	return vs, nil
}

// profileKinds says, per VM in order, which mix kind the incident gives it.
func profileKinds(doc invdoc.Document, o InventoryOptions, rng *rand.Rand) ([]string, error) {
	kinds := make([]string, len(doc.VMs))
	switch o.Profile {
	case "", ProfileAll:
		for i := range kinds {
			kinds[i] = "boot-loop"
		}
	case ProfileAsIs:
		for i, v := range doc.VMs {
			kinds[i] = asIs(v)
		}
	default:
		m, err := ParseMix(o.Profile)
		if err != nil {
			return nil, fmt.Errorf("incident profile: %w (or %q, %q)", err, ProfileAll, ProfileAsIs)
		}
		for i, c := range m.counts(len(kinds)) {
			for range c {
				kinds = append(kinds, mixTerms[i])
			}
		}
		kinds = kinds[len(doc.VMs):]
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	}
	return kinds, nil
}

// asIs is the kind of VM the inventory saw: its state, power and whether
// its guest answered.
func asIs(v invdoc.VM) string {
	switch {
	case v.Power == inventory.PowerStopped:
		return "stopped"
	case classify.IsAuthError(v.Evidence.Probe):
		return "bad-credentials"
	case v.State == inventory.StateBootLoop:
		return "boot-loop"
	case v.State == inventory.StateSafeMode:
		return "safe-mode"
	case v.State == inventory.StateHealthy:
		return "healthy"
	}
	return "winrm-blocked" // unknown while running: the guest did not answer
}

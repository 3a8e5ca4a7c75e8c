package sakura

import (
	"time"

	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/sacloud/iaas-api-go"
	"github.com/sacloud/iaas-api-go/search"
	"github.com/sacloud/iaas-api-go/types"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// pageSize is how many resources one Find asks for.
const pageSize = 100

// tagHelperWindows marks a helper with its Windows release, so Acquire
// finds a helper of the right release by tags alone.
const tagHelperWindows = "fixfleet-helper-windows"

// EncodeTags turns fixfleet tags into Sakura tags: "key=value", sorted.
func EncodeTags(t providers.Tags) types.Tags {
	out := types.Tags{}
	for _, k := range t.Sorted() {
		out = append(out, k+"="+t[k])
	}
	return out
}

// DecodeTags turns Sakura tags into key/value tags; a tag without "=" is a
// key with an empty value.
func DecodeTags(tags types.Tags) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, _ := strings.Cut(t, "=")
		out[k] = v
	}
	return out
}

func hasAll(have map[string]string, want providers.Tags) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func tagFilter(t providers.Tags) search.Filter {
	if len(t) == 0 {
		return nil
	}
	return search.Filter{search.Key("Tags.Name"): search.TagsAndEqual(EncodeTags(t)...)}
}

func vmRes(id string) string   { return "server " + id }
func diskRes(id string) string { return "disk " + id }

func parseID(op, res, id string) (types.ID, error) {
	n := types.StringID(id)
	if n.IsEmpty() {
		return 0, providers.Errorf(providers.ErrNotFound, op, res, "%q is not a Sakura Cloud ID", id)
	}
	return n, nil
}

// ---- finding, paged ----

func (c *core) findServers(ctx context.Context, zone string, f search.Filter) ([]*iaas.Server, error) {
	var out []*iaas.Server
	for from := 0; ; from += pageSize {
		var r *iaas.ServerFindResult
		err := c.call(ctx, "FindServers", "zone "+zone, func(ctx context.Context) (err error) {
			r, err = c.api.server.Find(ctx, zone, &iaas.FindCondition{Count: pageSize, From: from, Filter: f})
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r.Servers...)
		if len(r.Servers) < pageSize || from+len(r.Servers) >= r.Total {
			return out, nil
		}
	}
}

func (c *core) findDisks(ctx context.Context, zone string, f search.Filter) ([]*iaas.Disk, error) {
	var out []*iaas.Disk
	for from := 0; ; from += pageSize {
		var r *iaas.DiskFindResult
		err := c.call(ctx, "FindDisks", "zone "+zone, func(ctx context.Context) (err error) {
			r, err = c.api.disk.Find(ctx, zone, &iaas.FindCondition{Count: pageSize, From: from, Filter: f})
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r.Disks...)
		if len(r.Disks) < pageSize || from+len(r.Disks) >= r.Total {
			return out, nil
		}
	}
}

func (c *core) findArchives(ctx context.Context, zone string, f search.Filter) ([]*iaas.Archive, error) {
	var out []*iaas.Archive
	for from := 0; ; from += pageSize {
		var r *iaas.ArchiveFindResult
		err := c.call(ctx, "FindArchives", "zone "+zone, func(ctx context.Context) (err error) {
			r, err = c.api.archive.Find(ctx, zone, &iaas.FindCondition{Count: pageSize, From: from, Filter: f})
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r.Archives...)
		if len(r.Archives) < pageSize || from+len(r.Archives) >= r.Total {
			return out, nil
		}
	}
}

func (c *core) readServer(ctx context.Context, op string, vm providers.VMRef) (*iaas.Server, string, error) {
	res := vmRes(vm.String())
	id, err := parseID(op, res, vm.ID)
	if err != nil {
		return nil, "", err
	}
	var last error
	for _, z := range c.zonesFor(vm.Zone) {
		var s *iaas.Server
		err := c.call(ctx, op, res, func(ctx context.Context) (err error) {
			s, err = c.api.server.Read(ctx, z, id)
			return err
		})
		if err == nil {
			return s, z, nil
		}
		if !errors.Is(err, providers.ErrNotFound) {
			return nil, "", err
		}
		last = err
	}
	return nil, "", last
}

func (c *core) readDisk(ctx context.Context, op string, d providers.DiskRef) (*iaas.Disk, string, error) {
	res := diskRes(d.ID)
	id, err := parseID(op, res, d.ID)
	if err != nil {
		return nil, "", err
	}
	var last error
	for _, z := range c.zonesFor(d.Zone) {
		var x *iaas.Disk
		err := c.call(ctx, op, res, func(ctx context.Context) (err error) {
			x, err = c.api.disk.Read(ctx, z, id)
			return err
		})
		if err == nil {
			return x, z, nil
		}
		if !errors.Is(err, providers.ErrNotFound) {
			return nil, "", err
		}
		last = err
	}
	return nil, "", last
}

func (c *core) readArchive(ctx context.Context, op, zone string, id types.ID) (*iaas.Archive, error) {
	var a *iaas.Archive
	err := c.call(ctx, op, "archive "+id.String()+" in "+zone, func(ctx context.Context) (err error) {
		a, err = c.api.archive.Read(ctx, zone, id)
		return err
	})
	return a, err
}

// ---- Windows version from the archive lineage ----

var windowsRE = regexp.MustCompile(`(?i)windows[ _-]*server[ _-]*(20\d\d)`)

// archiveFacts is what the lineage walk needs of one archive.
type archiveFacts struct {
	source  types.ID // its SourceArchive, 0 at the root
	release string   // Windows release its name or tags state, "" if none
	public  bool
	linux   bool
}

func factsOf(a *iaas.Archive) archiveFacts {
	f := archiveFacts{source: a.SourceArchiveID, public: a.Scope == types.Scopes.Shared}
	if m := windowsRE.FindStringSubmatch(a.Name); m != nil {
		f.release = m[1]
	}
	win := false
	for _, t := range a.Tags {
		switch {
		case t == "os-windows":
			win = true
		case t == "os-linux":
			f.linux = true
		case strings.HasPrefix(t, "distro-ver-") && f.release == "":
			if r := strings.TrimPrefix(t, "distro-ver-"); len(r) == 4 && strings.HasPrefix(r, "20") {
				f.release = r
			}
		}
	}
	if f.release != "" && f.linux && !win {
		f.release = ""
	}
	return f
}

// release walks a disk's source archive lineage (disk → archive → its
// source archive ...) and returns the Windows release the root archive (the
// public one it all started from) names; if the root names none, the
// nearest archive that does. "" if none: not Windows, or unknown.
func (c *core) release(ctx context.Context, zone string, archive types.ID, known map[types.ID]archiveFacts) (string, error) {
	var chain []archiveFacts
	seen := map[types.ID]bool{}
	for id := archive; !id.IsEmpty() && !seen[id] && len(chain) < 16; {
		seen[id] = true
		f, ok := known[id]
		if !ok {
			key := zone + "/" + id.String()
			c.mu.Lock()
			f, ok = c.archives[key]
			c.mu.Unlock()
			if !ok {
				a, err := c.readArchive(ctx, "ReadArchive", zone, id)
				if errors.Is(err, providers.ErrNotFound) {
					break // lineage leaves the zone or was deleted
				}
				if err != nil {
					return "", err
				}
				f = factsOf(a)
				c.mu.Lock()
				c.archives[key] = f
				c.mu.Unlock()
			}
		}
		chain = append(chain, f)
		id = f.source
	}
	if len(chain) == 0 {
		return "", nil
	}
	if root := chain[len(chain)-1]; root.public {
		return root.release, nil
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if chain[i].release != "" {
			return chain[i].release, nil
		}
	}
	return "", nil
}

// ---- enumerate ----

type enumerator struct{ *core }

func powerOf(s types.EServerInstanceStatus) inventory.PowerState {
	switch s {
	case types.ServerInstanceStatuses.Up:
		return inventory.PowerRunning
	case types.ServerInstanceStatuses.Down:
		return inventory.PowerStopped
	case types.ServerInstanceStatuses.Cleaning:
		return inventory.PowerStopping
	}
	return inventory.PowerUnknown
}

// bootDisk is the server's first connected disk (ConnectionOrder 1; when
// the API does not number them, as iaas-api-go's fake driver, the first
// listed), nil if none.
func bootDisk(s *iaas.Server) *iaas.ServerConnectedDisk {
	for _, d := range s.Disks {
		if d.ConnectionOrder == 1 {
			return d
		}
	}
	if len(s.Disks) > 0 && s.Disks[0].ConnectionOrder == 0 {
		return s.Disks[0]
	}
	return nil
}

func nicsOf(s *iaas.Server) []inventory.NIC {
	var out []inventory.NIC
	for i, n := range s.Interfaces {
		nic := inventory.NIC{Name: fmt.Sprintf("nic%d", i)}
		if n.UserIPAddress != "" {
			nic.PrivateIP = n.UserIPAddress
			nic.PublicIP = n.IPAddress
		} else {
			nic.PublicIP = n.IPAddress
		}
		out = append(out, nic)
	}
	return out
}

func isFixfleet(tags map[string]string) bool {
	_, run := tags[providers.TagRun]
	return run || tags[providers.TagRole] == "helper"
}

// List implements providers.Enumerator: per zone, the servers (paged), the
// disks and archives (to walk lineages and find backups without one call
// per server). Servers fixfleet created (helpers) are left out, and so are
// servers whose lineage names no Windows release.
func (e enumerator) List(ctx context.Context) ([]inventory.VM, error) {
	var out []inventory.VM
	for _, zone := range e.scope.zones {
		servers, err := e.findServers(ctx, zone, nil)
		if err != nil {
			return nil, err
		}
		if len(servers) == 0 {
			continue
		}
		ds, err := e.findDisks(ctx, zone, nil)
		if err != nil {
			return nil, err
		}
		disks := map[types.ID]*iaas.Disk{}
		for _, d := range ds {
			disks[d.ID] = d
		}
		as, err := e.findArchives(ctx, zone, nil)
		if err != nil {
			return nil, err
		}
		known := map[types.ID]archiveFacts{}
		backupsOf := map[types.ID][]*iaas.Archive{}
		for _, a := range as {
			known[a.ID] = factsOf(a)
			if a.Scope == types.Scopes.User && !a.SourceDiskID.IsEmpty() && !isFixfleet(DecodeTags(a.Tags)) {
				backupsOf[a.SourceDiskID] = append(backupsOf[a.SourceDiskID], a)
			}
		}
		for _, s := range servers {
			tags := DecodeTags(s.Tags)
			if isFixfleet(tags) {
				continue
			}
			bd := bootDisk(s)
			if bd == nil {
				continue
			}
			src := types.ID(0)
			if d := disks[bd.ID]; d != nil {
				src = d.SourceArchiveID
			} else {
				d, _, err := e.readDisk(ctx, "ReadDisk", providers.DiskRef{ID: bd.ID.String(), Zone: zone})
				if err != nil && !errors.Is(err, providers.ErrNotFound) {
					return nil, err
				}
				if d != nil {
					src = d.SourceArchiveID
				}
			}
			rel, err := e.release(ctx, zone, src, known)
			if err != nil {
				return nil, err
			}
			if rel == "" {
				continue
			}
			vm := inventory.VM{
				Location: inventory.Location{Tenant: e.scope.tenant, Account: e.scope.account, Provider: Name, Zone: zone},
				ID:       s.ID.String(), Name: s.Name, Tags: tags, Windows: inventory.WindowsVersion{Release: rel},
				Power:  powerOf(s.InstanceStatus),
				OSDisk: inventory.Disk{ID: bd.ID.String(), SizeGB: bd.SizeMB / 1024, Device: "0"},
				NICs:   nicsOf(s),
			}
			for _, a := range backupsOf[bd.ID] {
				vm.Backups = append(vm.Backups, backupOf(vm.ID, a))
			}
			out = append(out, vm)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func backupOf(vmID string, a *iaas.Archive) inventory.Backup {
	return inventory.Backup{ID: a.ID.String(), VMID: vmID, Kind: "archive", TakenAt: a.CreatedAt, SizeGB: a.SizeMB / 1024}
}

// ---- observe ----

type observer struct{ *core }

// Backlog is how long a call made now would wait for its turn in this
// provider's pacing (pace.Limiter.Backlog).
func (o observer) Backlog() time.Duration { return o.lim.Backlog() }

// batchAt is the number of servers of one zone above which Observe lists
// the zone's servers instead of reading each.
const batchAt = 3

// servers reads the given servers, grouped by zone, in as few calls as
// sensible; missing ones are left out.
func (c *core) servers(ctx context.Context, vms []providers.VMRef) (map[string]*iaas.Server, error) {
	out := map[string]*iaas.Server{}
	byZone := map[string][]providers.VMRef{}
	for _, v := range vms {
		byZone[v.Zone] = append(byZone[v.Zone], v)
	}
	// Zones in a fixed order: the calls' order must not depend on map
	// iteration (a run on virtual time must replay exactly).
	for _, zone := range slices.Sorted(maps.Keys(byZone)) {
		refs := byZone[zone]
		if zone == "" || len(refs) <= batchAt {
			for _, r := range refs {
				s, _, err := c.readServer(ctx, "ReadServer", r)
				if errors.Is(err, providers.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				out[r.ID] = s
			}
			continue
		}
		want := map[string]bool{}
		for _, r := range refs {
			want[r.ID] = true
		}
		all, err := c.findServers(ctx, zone, nil)
		if err != nil {
			return nil, err
		}
		for _, s := range all {
			if want[s.ID.String()] {
				out[s.ID.String()] = s
			}
		}
	}
	return out, nil
}

// Observe implements providers.Observer. Sakura shows the instance status
// (Power) and when it last changed; no boot counter, no reachability check,
// no console text, and no trace of a guest's own restarts.
func (o observer) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	ss, err := o.servers(ctx, vms)
	if err != nil {
		return nil, err
	}
	now := o.clk.Now()
	out := make(map[string]inventory.Signals, len(ss))
	for id, s := range ss {
		// InstanceStatusChangedAt is the last power change the control
		// plane made (a boot or shutdown through the API), not the last
		// boot of a guest that crashes and restarts by itself: reported as
		// LastBootAt it would claim an old boot for a looping VM, so it is
		// left out (zero: unknown), like the boot count.
		out[id] = inventory.Signals{At: now, Power: powerOf(s.InstanceStatus)}
	}
	return out, nil
}

// ---- guest endpoint ----

type guests struct{ *core }

// GuestEndpoint implements providers.Guests: WinRM over HTTP (5985) at the
// server's first NIC address (its switch address if it has one, else its
// shared-segment address).
func (g guests) GuestEndpoint(ctx context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	s, _, err := g.readServer(ctx, "GuestEndpoint", vm)
	if err != nil {
		return providers.Endpoint{}, err
	}
	if ep, ok := endpointOf(nicsOf(s)); ok {
		return ep, nil
	}
	return providers.Endpoint{}, providers.Errorf(providers.ErrUnsupported, "GuestEndpoint", vmRes(vm.String()), "the server has no NIC address")
}

// ListedEndpoint implements endpointcache.Listed: List gives each server
// its NICs as GuestEndpoint reads them.
func (guests) ListedEndpoint(vm inventory.VM) (providers.Endpoint, bool) {
	return endpointOf(vm.NICs)
}

// endpointOf is WinRM over HTTP at the first NIC that has an address: its
// switch address if it has one, else its shared-segment address.
func endpointOf(nics []inventory.NIC) (providers.Endpoint, bool) {
	for _, n := range nics {
		if n.PrivateIP != "" {
			return providers.Endpoint{Host: n.PrivateIP, Port: providers.WinRMPort}, true
		}
		if n.PublicIP != "" {
			return providers.Endpoint{Host: n.PublicIP, Port: providers.WinRMPort}, true
		}
	}
	return providers.Endpoint{}, false
}

// ---- power ----

type power struct{ *core }

// waitStatus waits until every VM shows want; a VM gone is ErrNotFound.
func (c *core) waitStatus(ctx context.Context, op string, vms []providers.VMRef, want types.EServerInstanceStatus) error {
	pending := append([]providers.VMRef(nil), vms...)
	return c.poll(ctx, fmt.Sprintf("%d servers to be %s", len(vms), want), func() (bool, error) {
		ss, err := c.servers(ctx, pending)
		if err != nil {
			return false, err
		}
		var rest []providers.VMRef
		for _, v := range pending {
			s, ok := ss[v.ID]
			if !ok {
				return false, providers.Errorf(providers.ErrNotFound, op, vmRes(v.String()), "the server is gone")
			}
			if s.InstanceStatus != want {
				rest = append(rest, v)
			}
		}
		pending = rest
		return len(pending) == 0, nil
	})
}

// partial joins per-VM errors into one that names every VM, keeping the
// first error's class.
func partial(op string, errs map[string]error) error {
	if len(errs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(errs))
	for id := range errs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 1 {
		return errs[ids[0]]
	}
	var msgs []string
	for _, id := range ids {
		msgs = append(msgs, errs[id].Error())
	}
	class := providers.ErrUnavailable
	var pe *providers.Error
	if errors.As(errs[ids[0]], &pe) {
		class = pe.Class
	}
	return providers.Errorf(class, op, "servers "+strings.Join(ids, ", "), "%s", strings.Join(msgs, "; "))
}

// Stop implements providers.Power: Sakura has no batch call, so one
// shutdown per server (graceful: an ACPI request the guest may ignore —
// a boot-looping Windows does; force: power off), then it waits until all
// are down. Already down is fine.
func (p power) Stop(ctx context.Context, vms []providers.VMRef, force bool) error {
	errs := map[string]error{}
	var wait []providers.VMRef
	for _, v := range vms {
		s, zone, err := p.readServer(ctx, "Stop", v)
		if err != nil {
			errs[v.ID] = err
			continue
		}
		v.Zone = zone
		if s.InstanceStatus == types.ServerInstanceStatuses.Down {
			continue
		}
		wait = append(wait, v)
		if s.InstanceStatus == types.ServerInstanceStatuses.Cleaning {
			continue
		}
		err = p.call(ctx, "Stop", vmRes(v.String()), p.powerCall(vmRes(v.String()), func(ctx context.Context) error {
			return p.api.server.Shutdown(ctx, zone, s.ID, &iaas.ShutdownOption{Force: force})
		}))
		if errors.Is(err, providers.ErrConflict) {
			err = nil // went down meanwhile; the wait tells
		}
		if err != nil {
			errs[v.ID] = err
		}
	}
	if len(errs) > 0 {
		return partial("Stop", errs)
	}
	return p.waitStatus(ctx, "Stop", wait, types.ServerInstanceStatuses.Down)
}

// Start implements providers.Power: one boot per server that is down
// (waiting for one still shutting down), then it waits until all are up.
func (p power) Start(ctx context.Context, vms []providers.VMRef) error {
	errs := map[string]error{}
	var wait []providers.VMRef
	for _, v := range vms {
		err := p.boot(ctx, &v)
		if err != nil {
			errs[v.ID] = err
			continue
		}
		wait = append(wait, v)
	}
	if len(errs) > 0 {
		return partial("Start", errs)
	}
	return p.waitStatus(ctx, "Start", wait, types.ServerInstanceStatuses.Up)
}

// boot boots one server unless it is up, after a shutdown in progress.
func (c *core) boot(ctx context.Context, v *providers.VMRef) error {
	return c.poll(ctx, "server "+v.String()+" to finish shutting down", func() (bool, error) {
		s, zone, err := c.readServer(ctx, "Start", *v)
		if err != nil {
			return false, err
		}
		v.Zone = zone
		switch s.InstanceStatus {
		case types.ServerInstanceStatuses.Up:
			return true, nil
		case types.ServerInstanceStatuses.Cleaning:
			return false, nil
		}
		if bootDisk(s) == nil {
			return false, providers.Errorf(providers.ErrConflict, "Start", vmRes(v.String()), "the server has no boot disk; connect one first")
		}
		err = c.call(ctx, "Start", vmRes(v.String()), c.powerCall(vmRes(v.String()), func(ctx context.Context) error {
			return c.api.server.Boot(ctx, zone, s.ID)
		}))
		if errors.Is(err, providers.ErrConflict) {
			return false, nil // re-read: up already, or a disk still being copied (still_creating)
		}
		return err == nil, err
	})
}

// Restart implements providers.Power: a hard reset, then it waits until
// the server shows up again. ErrConflict unless it is up.
func (p power) Restart(ctx context.Context, vm providers.VMRef) error {
	s, zone, err := p.readServer(ctx, "Restart", vm)
	if err != nil {
		return err
	}
	if s.InstanceStatus != types.ServerInstanceStatuses.Up {
		return providers.Errorf(providers.ErrConflict, "Restart", vmRes(vm.String()), "the server is %s, not up", s.InstanceStatus)
	}
	vm.Zone = zone
	if err := p.call(ctx, "Restart", vmRes(vm.String()), p.powerCall(vmRes(vm.String()), func(ctx context.Context) error {
		return p.api.server.Reset(ctx, zone, s.ID)
	})); err != nil {
		return err
	}
	return p.waitStatus(ctx, "Restart", []providers.VMRef{vm}, types.ServerInstanceStatuses.Up)
}

// ---- disks ----

type disks struct{ *core }

// SnapshotsZoneBound implements providers.ZoneBoundSnapshots: an archive
// makes disks only in its own zone (another zone needs an archive
// transfer, which this provider does not make).
func (disks) SnapshotsZoneBound() {}

func diskState(d *iaas.Disk, zone string) providers.DiskState {
	st := providers.DiskState{Ref: providers.DiskRef{ID: d.ID.String(), Zone: zone}, SizeGB: d.SizeMB / 1024,
		Tags: DecodeTags(d.Tags)}
	if !d.ServerID.IsEmpty() {
		st.AttachedTo = d.ServerID.String()
		st.Boot = d.ConnectionOrder == 1
	}
	return st
}

// isBoot tells whether a connected disk is its server's boot disk: its
// ConnectionOrder, or, where the API leaves it unnumbered (0), whether the
// server lists it first.
func (c *core) isBoot(ctx context.Context, op string, d *iaas.Disk, zone string) (bool, error) {
	if d.ServerID.IsEmpty() || d.ConnectionOrder != 0 {
		return d.ConnectionOrder == 1, nil
	}
	s, _, err := c.readServer(ctx, op, providers.VMRef{ID: d.ServerID.String(), Zone: zone})
	if err != nil {
		return false, err
	}
	b := bootDisk(s)
	return b != nil && b.ID == d.ID, nil
}

func (c *core) describe(ctx context.Context, op string, ref providers.DiskRef) (*iaas.Disk, providers.DiskState, error) {
	x, zone, err := c.readDisk(ctx, op, ref)
	if err != nil {
		return nil, providers.DiskState{}, err
	}
	st := diskState(x, zone)
	if st.Boot, err = c.isBoot(ctx, op, x, zone); err != nil {
		return nil, providers.DiskState{}, err
	}
	return x, st, nil
}

// Describe implements providers.Disks.
func (d disks) Describe(ctx context.Context, ref providers.DiskRef) (providers.DiskState, error) {
	_, st, err := d.describe(ctx, "Describe", ref)
	return st, err
}

// Snapshot implements providers.Disks: an archive made from the disk,
// tagged, and it waits until the archive is available.
func (d disks) Snapshot(ctx context.Context, ref providers.DiskRef, tags providers.Tags) (providers.SnapshotRef, error) {
	x, zone, err := d.readDisk(ctx, "Snapshot", ref)
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	if err := d.waitDisk(ctx, "Snapshot", zone, x.ID); err != nil {
		return providers.SnapshotRef{}, err
	}
	var a *iaas.Archive
	err = d.call(ctx, "Snapshot", diskRes(ref.ID), func(ctx context.Context) (err error) {
		a, err = d.api.archive.Create(ctx, zone, &iaas.ArchiveCreateRequest{SourceDiskID: x.ID,
			Name: "fixfleet-snapshot-" + ref.ID, Description: "fixfleet: copy of disk " + ref.ID + " before any change",
			Tags: EncodeTags(tags)})
		return err
	})
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	s := providers.SnapshotRef{ID: a.ID.String(), Zone: zone}
	return s, d.waitArchive(ctx, "Snapshot", zone, a.ID)
}

func (c *core) waitArchive(ctx context.Context, op, zone string, id types.ID) error {
	return c.poll(ctx, "archive "+id.String(), func() (bool, error) {
		a, err := c.readArchive(ctx, op, zone, id)
		if err != nil {
			return false, err
		}
		if a.Availability == types.Availabilities.Failed {
			return false, providers.Errorf(providers.ErrPermanent, op, "archive "+id.String(), "the archive failed")
		}
		return a.Availability == types.Availabilities.Available, nil
	})
}

func (c *core) waitDisk(ctx context.Context, op, zone string, id types.ID) error {
	return c.poll(ctx, "disk "+id.String(), func() (bool, error) {
		x, _, err := c.readDisk(ctx, op, providers.DiskRef{ID: id.String(), Zone: zone})
		if err != nil {
			return false, err
		}
		if x.Availability == types.Availabilities.Failed {
			return false, providers.Errorf(providers.ErrPermanent, op, diskRes(id.String()), "the disk failed")
		}
		return x.Availability == types.Availabilities.Available, nil
	})
}

// FindSnapshots implements providers.Disks: user archives carrying all tags.
func (d disks) FindSnapshots(ctx context.Context, tags providers.Tags) ([]providers.SnapshotState, error) {
	var out []providers.SnapshotState
	for _, zone := range d.scope.zones {
		as, err := d.findArchives(ctx, zone, tagFilter(tags))
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			t := DecodeTags(a.Tags)
			if a.Scope == types.Scopes.Shared || !hasAll(t, tags) {
				continue
			}
			out = append(out, providers.SnapshotState{Ref: providers.SnapshotRef{ID: a.ID.String(), Zone: zone},
				DiskID: idString(a.SourceDiskID), Ready: a.Availability == types.Availabilities.Available, Tags: t})
		}
	}
	return out, nil
}

func idString(id types.ID) string {
	if id.IsEmpty() {
		return ""
	}
	return id.String()
}

// FindDisks implements providers.Disks.
func (d disks) FindDisks(ctx context.Context, tags providers.Tags) ([]providers.DiskState, error) {
	var out []providers.DiskState
	for _, zone := range d.scope.zones {
		ds, err := d.findDisks(ctx, zone, tagFilter(tags))
		if err != nil {
			return nil, err
		}
		for _, x := range ds {
			if hasAll(DecodeTags(x.Tags), tags) {
				out = append(out, diskState(x, zone))
			}
		}
	}
	return out, nil
}

// Detach implements providers.Disks: it disconnects the disk (a boot disk
// only from a server that is down) and returns when the API has.
func (d disks) Detach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef) error {
	x, st, err := d.describe(ctx, "Detach", ref)
	if err != nil {
		return err
	}
	zone := st.Ref.Zone
	if x.ServerID.String() != vm.ID {
		return nil
	}
	if st.Boot {
		if err := d.waitNotCleaning(ctx, "Detach", diskRes(ref.ID), vm); err != nil {
			return err
		}
	}
	err = d.call(ctx, "Detach", diskRes(ref.ID), func(ctx context.Context) error {
		return d.api.disk.DisconnectFromServer(ctx, zone, x.ID)
	})
	if errors.Is(err, providers.ErrConflict) || errors.Is(err, providers.ErrUnavailable) {
		if y, _, rerr := d.readDisk(ctx, "Detach", providers.DiskRef{ID: ref.ID, Zone: zone}); rerr == nil && y.ServerID.String() != vm.ID {
			return nil
		}
	}
	return err
}

// waitNotCleaning waits while the server is shutting down, and fails with
// ErrConflict if it is up.
func (c *core) waitNotCleaning(ctx context.Context, op, res string, vm providers.VMRef) error {
	return c.poll(ctx, "server "+vm.String()+" to be down", func() (bool, error) {
		s, _, err := c.readServer(ctx, op, vm)
		if err != nil {
			return false, err
		}
		switch s.InstanceStatus {
		case types.ServerInstanceStatuses.Down:
			return true, nil
		case types.ServerInstanceStatuses.Cleaning:
			return false, nil
		}
		return false, providers.Errorf(providers.ErrConflict, op, res, "server %s is %s; shut it down first", vm, s.InstanceStatus)
	})
}

// Attach implements providers.Disks. As a boot disk it must be the first
// connected disk of a server that is down and has none; a data disk goes
// to a server that already has its boot disk.
func (d disks) Attach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef, boot bool) error {
	x, st, err := d.describe(ctx, "Attach", ref)
	if err != nil {
		return err
	}
	zone := st.Ref.Zone
	res := diskRes(ref.ID)
	switch {
	case x.ServerID.String() == vm.ID && st.Boot == boot:
		return nil
	case x.ServerID.String() == vm.ID:
		return providers.Errorf(providers.ErrConflict, "Attach", res, "already connected to %s with boot=%v", vm, !boot)
	case !x.ServerID.IsEmpty():
		return providers.Errorf(providers.ErrConflict, "Attach", res, "connected to server %s; detach it first", x.ServerID)
	case vm.Zone != "" && vm.Zone != zone:
		return providers.Errorf(providers.ErrConflict, "Attach", res, "the disk is in zone %s, server %s in %s", zone, vm, vm.Zone)
	}
	if err := d.waitDisk(ctx, "Attach", zone, x.ID); err != nil {
		return err
	}
	if boot {
		if err := d.waitNotCleaning(ctx, "Attach", res, vm); err != nil {
			return err
		}
	}
	s, szone, err := d.readServer(ctx, "Attach", vm)
	if err != nil {
		return err
	}
	if szone != zone {
		return providers.Errorf(providers.ErrConflict, "Attach", res, "the disk is in zone %s, server %s in %s", zone, vm, szone)
	}
	if boot && len(s.Disks) > 0 {
		return providers.Errorf(providers.ErrConflict, "Attach", res, "server %s already has boot disk %s", vm, s.Disks[0].ID)
	}
	if !boot && bootDisk(s) == nil {
		return providers.Errorf(providers.ErrConflict, "Attach", res, "server %s has no boot disk: this disk would become it", vm)
	}
	err = d.call(ctx, "Attach", res, func(ctx context.Context) error {
		return d.api.disk.ConnectToServer(ctx, zone, x.ID, s.ID)
	})
	if errors.Is(err, providers.ErrUnavailable) {
		if y, _, rerr := d.readDisk(ctx, "Attach", providers.DiskRef{ID: ref.ID, Zone: zone}); rerr == nil && y.ServerID == s.ID {
			return nil
		}
	}
	return err
}

// FromSnapshot implements providers.Disks: a new disk from the archive,
// tagged, and it waits until the disk is available.
func (d disks) FromSnapshot(ctx context.Context, s providers.SnapshotRef, zone string, tags providers.Tags) (providers.DiskRef, error) {
	return d.diskFromArchive(ctx, "FromSnapshot", s.ID, zone, tags)
}

func (c *core) diskFromArchive(ctx context.Context, op, archiveID, zone string, tags providers.Tags) (providers.DiskRef, error) {
	res := "archive " + archiveID
	id, err := parseID(op, res, archiveID)
	if err != nil {
		return providers.DiskRef{}, err
	}
	if !c.zoneOK(zone) {
		return providers.DiskRef{}, providers.Errorf(providers.ErrPermanent, op, "zone "+zone, "not a zone of this account (%s)", strings.Join(c.scope.zones, ", "))
	}
	a, err := c.readArchive(ctx, op, zone, id)
	if err != nil {
		return providers.DiskRef{}, err
	}
	if a.Availability != types.Availabilities.Available {
		if err := c.waitArchive(ctx, op, zone, id); err != nil {
			return providers.DiskRef{}, err
		}
	}
	var x *iaas.Disk
	err = c.call(ctx, op, res, func(ctx context.Context) (err error) {
		x, err = c.api.disk.Create(ctx, zone, &iaas.DiskCreateRequest{DiskPlanID: types.DiskPlans.SSD,
			Connection: types.DiskConnections.VirtIO, SourceArchiveID: id, SizeMB: max(a.SizeMB, 20*1024),
			Name: "fixfleet-" + tags[providers.TagRole] + "-" + archiveID, Description: "fixfleet: disk from archive " + archiveID,
			Tags: EncodeTags(tags)}, nil, 0)
		return err
	})
	if err != nil {
		return providers.DiskRef{}, err
	}
	ref := providers.DiskRef{ID: x.ID.String(), Zone: zone}
	return ref, c.waitDisk(ctx, op, zone, x.ID)
}

// The disks of this provider delete the copies a run made.
var _ providers.CopyDeleter = disks{}

// DeleteCopy implements providers.CopyDeleter: it deletes disk ref, which
// a run made (a copy of a snapshot, a disk restored from a backup), only
// if it carries every one of tags (Sakura's "key=value" string tags,
// matched as FindDisks matches them) and is connected to no server.
// Otherwise it deletes nothing and returns ErrConflict naming the disk: no
// tags given, a tag missing or different, the disk connected to a server
// (disconnect it first), or the disk still being copied (with RetryAfter,
// one poll interval). A disk already gone is fine. Sakura deletes a disk
// synchronously (DELETE /disk/{id} answers 200 once it is gone, never 202),
// so the answer reports it gone; an answer lost on the way is settled by
// reading the disk again. Errors: ErrConflict, ErrThrottled,
// ErrUnavailable, ErrPermanent (the cloud refused: a key without the
// create permission).
func (d disks) DeleteCopy(ctx context.Context, ref providers.DiskRef, tags providers.Tags) error {
	const op = "DeleteCopy"
	res := diskRes(ref.ID)
	if len(tags) == 0 {
		return providers.Errorf(providers.ErrConflict, op, res, "no tags given; only a disk carrying a run's tags is deleted")
	}
	x, zone, err := d.readDisk(ctx, op, ref)
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := providers.DeletableCopy(op, diskState(x, zone), tags); err != nil {
		return err
	}
	switch av := x.Availability; {
	case av.IsMigrating(), av.IsUploading(), av.IsTransfering():
		e := providers.Errorf(providers.ErrConflict, op, res, "the disk is still being copied (%s)", av)
		e.RetryAfter = d.opts.Poll
		return e
	}
	err = d.call(ctx, op, res, func(ctx context.Context) error {
		return d.api.disk.Delete(ctx, zone, x.ID)
	})
	var pe *providers.Error
	switch {
	case err == nil, errors.Is(err, providers.ErrNotFound):
		return nil
	case errors.Is(err, providers.ErrUnavailable):
		// The delete may have been done and its answer lost: the disk tells.
		if _, _, rerr := d.readDisk(ctx, op, providers.DiskRef{ID: ref.ID, Zone: zone}); errors.Is(rerr, providers.ErrNotFound) {
			return nil
		}
	case errors.As(err, &pe) && pe.Class == providers.ErrConflict && pe.RetryAfter == 0:
		// Refused although it looked idle and disconnected: busy since
		// the read (still being copied or disconnected). Another look
		// after a poll tells whether it is connected now.
		pe.RetryAfter = d.opts.Poll
	}
	return err
}

// ---- backups ----

type backups struct{ *core }

// List implements providers.Backups: the user archives made from a disk
// the server has connected, fixfleet's own snapshots excepted.
func (b backups) List(ctx context.Context, vm providers.VMRef) ([]inventory.Backup, error) {
	s, zone, err := b.readServer(ctx, "ListBackups", vm)
	if err != nil {
		return nil, err
	}
	mine := map[types.ID]bool{}
	for _, d := range s.Disks {
		mine[d.ID] = true
	}
	as, err := b.findArchives(ctx, zone, search.Filter{search.Key("Scope"): search.ExactMatch(string(types.Scopes.User))})
	if err != nil {
		return nil, err
	}
	var out []inventory.Backup
	for _, a := range as {
		if a.Scope == types.Scopes.User && mine[a.SourceDiskID] && !isFixfleet(DecodeTags(a.Tags)) {
			out = append(out, backupOf(vm.ID, a))
		}
	}
	return out, nil
}

// Restore implements providers.Backups: a new disk from the backup
// archive; the server and its disks are not touched.
func (b backups) Restore(ctx context.Context, bk inventory.Backup, zone string, tags providers.Tags) (providers.DiskRef, error) {
	return b.diskFromArchive(ctx, "Restore", bk.ID, zone, tags)
}

// ---- helpers ----

type helpers struct{ *core }

// Images implements providers.Helpers: the public archives naming a
// Windows Server release, per zone.
func (h helpers) Images(ctx context.Context) ([]providers.HelperImage, error) {
	var out []providers.HelperImage
	for _, zone := range h.scope.zones {
		as, err := h.findArchives(ctx, zone, search.Filter{search.Key("Scope"): search.ExactMatch(string(types.Scopes.Shared))})
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, a := range as {
			f := factsOf(a)
			if !f.public || f.release == "" || seen[f.release] {
				continue
			}
			seen[f.release] = true
			out = append(out, providers.HelperImage{Zone: zone, Windows: inventory.WindowsVersion{Release: f.release}, ImageID: a.ID.String()})
		}
	}
	return out, nil
}

func helperTags(win inventory.WindowsVersion, tags providers.Tags) providers.Tags {
	t := providers.Tags{tagHelperWindows: win.Release}
	for k, v := range tags {
		t[k] = v
	}
	return t
}

// Acquire implements providers.Helpers. A helper is a server tagged with
// the given tags and its release, with one disk made from the zone's
// public archive of that release; found by tags, or created (server, then
// its disk from the archive, then boot), and it waits until the server is
// up. Acquire continues a helper an earlier call left half made.
func (h helpers) Acquire(ctx context.Context, zone string, win inventory.WindowsVersion, tags providers.Tags) (providers.VMRef, error) {
	res := fmt.Sprintf("helper (Windows Server %s in %s)", win.Release, zone)
	if !h.zoneOK(zone) {
		return providers.VMRef{}, providers.Errorf(providers.ErrPermanent, "Acquire", "zone "+zone, "not a zone of this account (%s)", strings.Join(h.scope.zones, ", "))
	}
	all := helperTags(win, tags)
	found, err := h.findServers(ctx, zone, tagFilter(all))
	if err != nil {
		return providers.VMRef{}, err
	}
	var s *iaas.Server
	for _, x := range found {
		if hasAll(DecodeTags(x.Tags), all) {
			s = x
			break
		}
	}
	if s == nil || len(s.Disks) == 0 {
		img, err := h.image(ctx, zone, win)
		if err != nil {
			return providers.VMRef{}, err
		}
		if s == nil {
			err = h.call(ctx, "Acquire", res, func(ctx context.Context) (err error) {
				s, err = h.api.server.Create(ctx, zone, &iaas.ServerCreateRequest{CPU: 4, MemoryMB: 8 * 1024,
					ConnectedSwitches: []*iaas.ConnectedSwitch{{Scope: types.Scopes.Shared}},
					InterfaceDriver:   types.InterfaceDrivers.VirtIO, Name: "fixfleet-helper-" + win.Release,
					Description: "fixfleet helper: repair disks of Windows Server " + win.Release + " servers",
					Tags:        EncodeTags(all)})
				return err
			})
			if err != nil {
				return providers.VMRef{}, err
			}
		}
		var d *iaas.Disk
		err = h.call(ctx, "Acquire", res, func(ctx context.Context) (err error) {
			d, err = h.api.disk.Create(ctx, zone, &iaas.DiskCreateRequest{DiskPlanID: types.DiskPlans.SSD,
				Connection: types.DiskConnections.VirtIO, SourceArchiveID: img, ServerID: s.ID, SizeMB: 100 * 1024,
				Name: "fixfleet-helper-" + win.Release, Tags: EncodeTags(all)}, nil, 0)
			return err
		})
		if err != nil {
			return providers.VMRef{}, err
		}
		if err := h.waitDisk(ctx, "Acquire", zone, d.ID); err != nil {
			return providers.VMRef{}, err
		}
	}
	ref := providers.VMRef{ID: s.ID.String(), Zone: zone, Name: s.Name}
	if err := h.boot(ctx, &ref); err != nil {
		return providers.VMRef{}, err
	}
	if err := h.waitStatus(ctx, "Acquire", []providers.VMRef{ref}, types.ServerInstanceStatuses.Up); err != nil {
		return providers.VMRef{}, err
	}
	// The server's own ID, as the API now names it (an emulator may
	// rename a server when its disk makes it a helper).
	s, _, err = h.readServer(ctx, "Acquire", ref)
	if err != nil {
		return providers.VMRef{}, err
	}
	return providers.VMRef{ID: s.ID.String(), Zone: zone, Name: s.Name}, nil
}

// image returns the zone's public archive of release win.
func (h helpers) image(ctx context.Context, zone string, win inventory.WindowsVersion) (types.ID, error) {
	ims, err := h.Images(ctx)
	if err != nil {
		return 0, err
	}
	var have []string
	for _, im := range ims {
		if im.Zone != zone {
			continue
		}
		if im.Windows.Release == win.Release {
			return types.StringID(im.ImageID), nil
		}
		have = append(have, im.Windows.Release)
	}
	return 0, providers.Errorf(providers.ErrNotFound, "Acquire", fmt.Sprintf("helper (Windows Server %s in %s)", win.Release, zone),
		"no public archive of Windows Server %s in zone %s (releases there: %s)", win.Release, zone, strings.Join(have, ", "))
}

// FindHelpers lists the servers, in every zone in scope, that carry all of
// tags (found by tag, as Acquire finds a helper, a half-made one too): the
// helper pool's sweep of a run's helpers it does not know. Read-only.
func (h helpers) FindHelpers(ctx context.Context, tags providers.Tags) ([]providers.VMRef, error) {
	var out []providers.VMRef
	for _, zone := range h.scope.zones {
		found, err := h.findServers(ctx, zone, tagFilter(tags))
		if err != nil {
			return nil, err
		}
		for _, x := range found {
			if hasAll(DecodeTags(x.Tags), tags) {
				out = append(out, providers.VMRef{ID: x.ID.String(), Zone: zone, Name: x.Name})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Release implements providers.Helpers: it refuses while a disk other than
// the helper's own is connected, powers the helper off, and deletes it
// with its own disk only. A helper already gone is fine; a server fixfleet
// did not create is never deleted (ErrPermanent).
func (h helpers) Release(ctx context.Context, vm providers.VMRef) error {
	res := vmRes(vm.String())
	s, zone, err := h.readServer(ctx, "Release", vm)
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := DecodeTags(s.Tags)[tagHelperWindows]; !ok {
		return providers.Errorf(providers.ErrPermanent, "Release", res, "not a fixfleet helper (no %s tag); only helpers are ever deleted", tagHelperWindows)
	}
	var own []types.ID
	boot := bootDisk(s)
	for _, d := range s.Disks {
		if boot == nil || d.ID != boot.ID {
			return providers.Errorf(providers.ErrConflict, "Release", res, "disk %s is still connected; detach it first", d.ID)
		}
		x, _, err := h.readDisk(ctx, "Release", providers.DiskRef{ID: d.ID.String(), Zone: zone})
		if err != nil {
			return err
		}
		rel, err := h.release(ctx, zone, x.SourceArchiveID, nil)
		if err != nil {
			return err
		}
		a, err := h.readArchive(ctx, "Release", zone, x.SourceArchiveID)
		if err != nil || a.Scope != types.Scopes.Shared || rel == "" {
			return providers.Errorf(providers.ErrConflict, "Release", res, "its boot disk %s is not the helper's own (not made from a public Windows archive); detach it first", d.ID)
		}
		own = append(own, d.ID)
	}
	if s.InstanceStatus != types.ServerInstanceStatuses.Down {
		ref := providers.VMRef{ID: s.ID.String(), Zone: zone, Name: s.Name}
		if err := (power{h.core}).Stop(ctx, []providers.VMRef{ref}, true); err != nil {
			return err
		}
	}
	err = h.call(ctx, "Release", res, func(ctx context.Context) error {
		if len(own) == 0 {
			return h.api.server.Delete(ctx, zone, s.ID)
		}
		return h.api.server.DeleteWithDisks(ctx, zone, s.ID, &iaas.ServerDeleteWithDisksRequest{IDs: own})
	})
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	return err
}

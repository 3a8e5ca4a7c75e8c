package azureapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Security types (securityProfile.securityType).
const securityTrustedLaunch = "TrustedLaunch"

// Tags the emulator puts on the world's helper images: operators tag their
// own helper images the same way (docs/providers/azure.md).
const (
	TagImageRelease = "fixfleet-windows-release"
	TagImageBuild   = "fixfleet-windows-build"
	TagImageZone    = "fixfleet-zone"
)

type obj = map[string]any

// list answers a subscription-wide list of one resource type, paged.
func (s *Server) list(q *request) *apiError {
	var items []obj
	switch q.kind {
	case kindVMs:
		vms, err := s.w.ListVMs(q.r.Context(), q.account, nil)
		if err != nil {
			return fromWorld(err)
		}
		statusOnly := strings.EqualFold(q.r.URL.Query().Get("statusOnly"), "true")
		ids := make([]string, 0, len(vms))
		for _, v := range vms {
			ids = append(ids, v.ID)
		}
		ids = append(ids, s.created(kindVMs, q.sub)...)
		for _, id := range ids {
			if f, ok := s.w.VMFacts(q.account, id); ok {
				var iv obj
				if statusOnly {
					iv = obj{"statuses": s.statuses(f)}
				}
				items = append(items, s.vmJSON(q, f, iv, ""))
			}
		}
	case "networkInterfaces":
		vms, err := s.w.ListVMs(q.r.Context(), q.account, nil)
		if err != nil {
			return fromWorld(err)
		}
		ids := make([]string, 0, len(vms))
		for _, v := range vms {
			ids = append(ids, v.ID)
		}
		for _, id := range append(ids, s.created(kindVMs, q.sub)...) {
			if f, ok := s.w.VMFacts(q.account, id); ok {
				items = append(items, s.nicJSON(q, f))
			}
		}
	case kindDisks:
		ds, err := s.w.FindDisks(q.r.Context(), q.account, nil)
		if err != nil {
			return fromWorld(err)
		}
		for _, d := range ds {
			items = append(items, s.diskJSON(q, d))
		}
	case kindSnapshots:
		ss, err := s.w.FindSnapshots(q.r.Context(), q.account, nil)
		if err != nil {
			return fromWorld(err)
		}
		for _, x := range ss {
			items = append(items, s.snapJSON(q, x))
		}
	case kindImages:
		ims, err := s.w.HelperImages(q.r.Context(), q.account)
		if err != nil {
			return fromWorld(err)
		}
		for _, im := range ims {
			items = append(items, s.imageJSON(q, im))
		}
	default:
		return errf(404, "InvalidResourceType", "the emulator does not list %s", q.kind)
	}
	from, _ := strconv.Atoi(q.r.URL.Query().Get("$skiptoken"))
	from = min(max(from, 0), len(items))
	to := min(from+s.opts.PageSize, len(items))
	page := obj{"value": append([]obj{}, items[from:to]...)}
	if to < len(items) {
		u := *q.r.URL
		v := u.Query()
		v.Set("$skiptoken", strconv.Itoa(to))
		u.RawQuery = v.Encode()
		page["nextLink"] = s.base(q) + u.RequestURI()
	}
	reply(q, 200, page)
	return nil
}

// created lists the world IDs of the resources of kind clients created in
// sub, sorted.
func (s *Server) created(kind, sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := strings.ToLower(kind + "/" + sub + "/")
	var out []string
	for k, id := range s.byName {
		if strings.HasPrefix(k, prefix) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// get answers a GET of one resource (a VM with $expand=instanceView or its
// instanceView sub-resource observes it).
func (s *Server) get(q *request) *apiError {
	id := s.resolve(q.kind, q.sub, q.name)
	notFound := errf(404, "ResourceNotFound", "The Resource 'Microsoft.Compute/%s/%s' under resource group '%s' was not found.", q.kind, q.name, s.opts.ResourceGroup)
	if id == "" {
		return notFound
	}
	ctx := q.r.Context()
	switch q.kind {
	case kindVMs:
		view := strings.EqualFold(q.action, "instanceView") || strings.EqualFold(q.r.URL.Query().Get("$expand"), "instanceView")
		var sig inventory.Signals
		if view {
			got, err := s.w.Observe(ctx, q.account, []string{id})
			if err != nil {
				return fromWorld(err)
			}
			var ok bool
			if sig, ok = got[id]; !ok {
				return notFound
			}
		} else if _, err := s.w.GuestEndpoint(ctx, q.account, id); err != nil {
			return fromWorld(err)
		}
		f, ok := s.w.VMFacts(q.account, id)
		if !ok {
			return notFound
		}
		if !view {
			reply(q, 200, s.vmJSON(q, f, nil, ""))
			return nil
		}
		iv := s.instanceView(f, sig)
		if strings.EqualFold(q.action, "instanceView") {
			reply(q, 200, iv)
			return nil
		}
		reply(q, 200, s.vmJSON(q, f, iv, ""))
	case kindDisks:
		d, err := s.w.DescribeDisk(ctx, q.account, id)
		if err != nil {
			return fromWorld(err)
		}
		reply(q, 200, s.diskJSON(q, d))
	case kindSnapshots:
		ss, err := s.w.FindSnapshots(ctx, q.account, nil)
		if err != nil {
			return fromWorld(err)
		}
		for _, x := range ss {
			if x.Ref.ID == id {
				reply(q, 200, s.snapJSON(q, x))
				return nil
			}
		}
		return notFound
	case kindImages:
		ims, err := s.w.HelperImages(ctx, q.account)
		if err != nil {
			return fromWorld(err)
		}
		for _, im := range ims {
			if im.ImageID == id {
				reply(q, 200, s.imageJSON(q, im))
				return nil
			}
		}
		return notFound
	default:
		return errf(404, "InvalidResourceType", "the emulator does not serve %s", q.kind)
	}
	return nil
}

// body is what the emulator reads of a PUT or PATCH.
type body struct {
	Location string            `json:"location"`
	Zones    []string          `json:"zones"`
	Tags     map[string]string `json:"tags"`
	Props    struct {
		CreationData *struct {
			CreateOption     string `json:"createOption"`
			SourceResourceID string `json:"sourceResourceId"`
		} `json:"creationData"`
		StorageProfile *struct {
			ImageReference *struct {
				ID string `json:"id"`
			} `json:"imageReference"`
			OSDisk *struct {
				ManagedDisk *struct {
					ID string `json:"id"`
				} `json:"managedDisk"`
			} `json:"osDisk"`
			DataDisks *[]struct {
				ManagedDisk *struct {
					ID string `json:"id"`
				} `json:"managedDisk"`
			} `json:"dataDisks"`
		} `json:"storageProfile"`
	} `json:"properties"`
}

func (s *Server) readBody(q *request) (body, *apiError) {
	var b body
	if err := json.NewDecoder(http.MaxBytesReader(q.rw, q.r.Body, 1<<20)).Decode(&b); err != nil {
		return b, errf(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: %v", err)
	}
	return b, nil
}

// worldOf returns the world ID of an ARM resource ID of kind in the
// caller's subscription, or "".
func (s *Server) worldOf(q *request, kind, armID string) string {
	seg := strings.Split(strings.Trim(armID, "/"), "/")
	if len(seg) != 8 || seg[1] != q.sub || !strings.EqualFold(seg[6], kind) || !strings.EqualFold(seg[3], s.opts.ResourceGroup) {
		return ""
	}
	return s.resolve(kind, q.sub, seg[7])
}

// zoneOf is the world zone of an ARM location and zone list.
func (s *Server) zoneOf(b body) (string, *apiError) {
	if len(b.Zones) != 1 {
		return "", errf(400, "InvalidParameter", "give exactly one availability zone in 'zones'")
	}
	z := b.Location + "-" + b.Zones[0]
	if !slices.Contains(s.w.Zones(), z) {
		return "", errf(400, "InvalidParameter", "zone %s of location %s is not available", b.Zones[0], b.Location)
	}
	return z, nil
}

// put creates a helper VM, a disk from a snapshot, or a snapshot of a disk,
// named by the client. Idempotent by name: an existing resource is
// returned as it is.
func (s *Server) put(q *request) *apiError {
	if id := s.resolve(q.kind, q.sub, q.name); id != "" {
		s.mu.Lock()
		_, mine := s.nameOf[id]
		s.mu.Unlock()
		if mine {
			return s.get(q) // created by a client before: unchanged
		}
		if s.worldHas(q, id) {
			return errf(409, "Conflict", "%s '%s' already exists; the emulator does not update it", q.kind, q.name)
		}
	}
	b, e := s.readBody(q)
	if e != nil {
		return e
	}
	var zone string
	if q.kind != kindSnapshots { // snapshots are regional: in their disk's zone here
		if zone, e = s.zoneOf(b); e != nil {
			return e
		}
	}
	ctx := q.r.Context()
	switch q.kind {
	case kindVMs:
		sp := b.Props.StorageProfile
		if sp == nil || sp.ImageReference == nil || sp.ImageReference.ID == "" {
			return errf(400, "InvalidParameter", "the emulator creates VMs from an image resource ID (storageProfile.imageReference.id) only")
		}
		imgID := s.worldOf(q, kindImages, sp.ImageReference.ID)
		ims, err := s.w.HelperImages(ctx, q.account)
		if err != nil {
			return fromWorld(err)
		}
		var rel string
		for _, im := range ims {
			if im.ImageID == imgID && im.Zone == zone {
				rel = im.Windows.Release
			}
		}
		if rel == "" {
			return errf(404, "ImageNotFound", "image %s is not available in zone %s of %s", sp.ImageReference.ID, b.Zones[0], b.Location)
		}
		h, err := s.w.AcquireHelper(ctx, q.account, zone, inventory.WindowsVersion{Release: rel}, b.Tags, nil)
		if !applied(err) || h.Ref.ID == "" {
			return fromWorld(err)
		}
		s.mu.Lock()
		prev, taken := s.nameOf[h.Ref.ID]
		s.mu.Unlock()
		if taken {
			return errf(409, "Conflict", "a VM with the same tags already exists as %s", prev)
		}
		s.adopt(kindVMs, q.sub, q.name, h.Ref.ID)
		if err != nil {
			return fromWorld(err)
		}
		f, _ := s.w.VMFacts(q.account, h.Ref.ID)
		s.accepted(q, 201, b.Location, h.ReadyAt, s.vmJSON(q, f, nil, "Creating"))
	case kindDisks, kindSnapshots:
		cd := b.Props.CreationData
		if cd == nil || !strings.EqualFold(cd.CreateOption, "Copy") {
			return errf(400, "InvalidParameter", "the emulator creates %s by copy only (creationData.createOption Copy)", q.kind)
		}
		if q.kind == kindDisks {
			snap := s.worldOf(q, kindSnapshots, cd.SourceResourceID)
			if snap == "" {
				return errf(404, "ResourceNotFound", "source snapshot %s not found", cd.SourceResourceID)
			}
			d, err := s.w.DiskFromSnapshot(ctx, q.account, snap, zone, b.Tags)
			if !applied(err) {
				return fromWorld(err)
			}
			s.adopt(kindDisks, q.sub, q.name, d.Ref.ID)
			s.inherit(d.Ref.ID, snap)
			if err != nil {
				return fromWorld(err)
			}
			s.accepted(q, 202, b.Location, d.ReadyAt, s.diskJSON(q, d))
			return nil
		}
		src := s.worldOf(q, kindDisks, cd.SourceResourceID)
		if src == "" {
			return errf(404, "ResourceNotFound", "source disk %s not found", cd.SourceResourceID)
		}
		x, err := s.w.Snapshot(ctx, q.account, src, b.Tags)
		if !applied(err) {
			return fromWorld(err)
		}
		s.adopt(kindSnapshots, q.sub, q.name, x.Ref.ID)
		s.inherit(x.Ref.ID, src)
		if err != nil {
			return fromWorld(err)
		}
		s.accepted(q, 202, b.Location, x.ReadyAt, s.snapJSON(q, x))
	default:
		return errf(405, "MethodNotAllowed", "the emulator does not create %s", q.kind)
	}
	return nil
}

// worldHas tells whether the world holds resource id of the request's
// kind in the caller's account (metadata reads, no fault gate).
func (s *Server) worldHas(q *request, id string) bool {
	switch q.kind {
	case kindVMs:
		_, ok := s.w.VMFacts(q.account, id)
		return ok
	case kindDisks:
		_, ok := s.w.DiskGeneration(q.account, id)
		return ok
	}
	return strings.HasPrefix(id, "snap-") // world snapshot IDs; never a client's name
}

// inherit gives a copy the security type of its source.
func (s *Server) inherit(copyID, sourceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.security[sourceID]; ok {
		s.security[copyID] = t
	}
}

// securityOf is the security type of a VM or disk ("" for Standard).
func (s *Server) securityOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.security[id]
}

// updateVM applies a PATCH: an OS disk swap.
func (s *Server) updateVM(q *request) *apiError {
	id := s.resolve(kindVMs, q.sub, q.name)
	f, ok := s.w.VMFacts(q.account, id)
	if id == "" || !ok {
		return errf(404, "ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/%s' under resource group '%s' was not found.", q.name, s.opts.ResourceGroup)
	}
	b, e := s.readBody(q)
	if e != nil {
		return e
	}
	if sp := b.Props.StorageProfile; sp != nil && sp.DataDisks != nil {
		return errf(400, "InvalidParameter", "the emulator changes data disks through attachDetachDataDisks only, not a VM update")
	}
	ctx := q.r.Context()
	var until time.Time
	if sp := b.Props.StorageProfile; sp != nil && sp.OSDisk != nil && sp.OSDisk.ManagedDisk != nil {
		d := s.worldOf(q, kindDisks, sp.OSDisk.ManagedDisk.ID)
		if d == "" {
			return errf(404, "NotFound", "Disk %s is not found.", sp.OSDisk.ManagedDisk.ID)
		}
		if d != f.BootDisk {
			s.mu.Lock()
			poweredOff := s.poweredOff[id]
			s.mu.Unlock()
			if poweredOff {
				return errf(409, "OperationNotAllowed", "Changing the OS disk of VM '%s' is allowed only when it is deallocated; it is stopped but still allocated.", q.name)
			}
			if vt, dt := s.securityOf(id), s.securityOf(d); vt != dt {
				return errf(400, "BadRequest", "The security type of disk %s (%q) does not match VM '%s' (%q).", sp.OSDisk.ManagedDisk.ID, dt, q.name, vt)
			}
			p, err := s.w.SwapBootDisk(ctx, q.account, id, d)
			if err != nil {
				return fromWorld(err)
			}
			until = later(until, p)
		}
	}
	f, _ = s.w.VMFacts(q.account, id)
	s.accepted(q, 200, s.location(f.Zone), until, s.vmJSON(q, f, nil, "Updating"))
	return nil
}

// deleteVM deletes a helper with its OS disk and NIC (deleteOption Delete).
// A VM already gone is fine (204).
func (s *Server) deleteVM(q *request) *apiError {
	id := s.resolve(kindVMs, q.sub, q.name)
	f, ok := s.w.VMFacts(q.account, id)
	if id == "" || !ok {
		reply(q, 204, nil)
		return nil
	}
	if err := s.w.ReleaseHelper(q.r.Context(), q.account, id); err != nil {
		return fromWorld(err)
	}
	s.accepted(q, 202, s.location(f.Zone), time.Time{}, nil)
	return nil
}

// deleteDisk deletes a managed disk (the world deletes only copies: an
// original or a helper's own disk is refused). A disk already gone is fine
// (204).
func (s *Server) deleteDisk(q *request) *apiError {
	id := s.resolve(kindDisks, q.sub, q.name)
	d, err := s.w.DescribeDisk(q.r.Context(), q.account, id)
	if id == "" || errors.Is(err, providers.ErrNotFound) {
		reply(q, 204, nil)
		return nil
	}
	if err != nil {
		return fromWorld(err)
	}
	if err := s.w.DeleteDisk(q.r.Context(), q.account, id); err != nil {
		return fromWorld(err)
	}
	s.accepted(q, 202, s.location(d.Ref.Zone), time.Time{}, nil)
	return nil
}

// vmAction answers a POST action on a VM.
func (s *Server) vmAction(q *request) *apiError {
	id := s.resolve(kindVMs, q.sub, q.name)
	f, ok := s.w.VMFacts(q.account, id)
	if id == "" || !ok {
		return errf(404, "ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/%s' under resource group '%s' was not found.", q.name, s.opts.ResourceGroup)
	}
	ctx := q.r.Context()
	var p world.Pending
	var err error
	switch strings.ToLower(q.action) {
	case "deallocate":
		if p, err = s.w.StopVMs(ctx, q.account, []string{id}, false); applied(err) {
			s.setPoweredOff(id, false)
		}
	case "poweroff":
		if p, err = s.w.StopVMs(ctx, q.account, []string{id}, strings.EqualFold(q.r.URL.Query().Get("skipShutdown"), "true")); applied(err) {
			s.setPoweredOff(id, true)
		}
	case "start":
		if p, err = s.w.StartVMs(ctx, q.account, []string{id}); applied(err) {
			s.setPoweredOff(id, false)
		}
	case "restart":
		p, err = s.w.RestartVM(ctx, q.account, id)
	case "retrievebootdiagnosticsdata":
		return s.bootDiagData(q, id)
	case "attachdetachdatadisks":
		return s.attachDetach(q, id, f)
	case "runcommand":
		return errf(501, "NotImplemented", "the fixfleet emulator does not serve Run Command yet; reach guests over WinRM")
	default:
		return errf(404, "InvalidResourceType", "no action %q on virtual machines", q.action)
	}
	if err != nil {
		return fromWorld(err)
	}
	s.accepted(q, 202, s.location(f.Zone), p.Until, nil)
	return nil
}

// attachDetach attaches and detaches data disks (the additive
// attachDetachDataDisks action: other attachments are left alone).
func (s *Server) attachDetach(q *request, id string, f world.VMFacts) *apiError {
	var b struct {
		Attach []struct {
			DiskID string `json:"diskId"`
		} `json:"dataDisksToAttach"`
		Detach []struct {
			DiskID string `json:"diskId"`
		} `json:"dataDisksToDetach"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(q.rw, q.r.Body, 1<<20)).Decode(&b); err != nil {
		return errf(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: %v", err)
	}
	ctx := q.r.Context()
	var until time.Time
	for _, x := range b.Detach {
		d := s.worldOf(q, kindDisks, x.DiskID)
		if d == "" {
			return errf(404, "NotFound", "Disk %s is not found.", x.DiskID)
		}
		if d == f.BootDisk {
			return errf(400, "OperationNotAllowed", "Disk %s is the OS disk of VM '%s'; an OS disk cannot be detached.", x.DiskID, q.name)
		}
		p, err := s.w.DetachDisk(ctx, q.account, id, d)
		if err != nil {
			return fromWorld(err)
		}
		until = later(until, p)
	}
	for _, x := range b.Attach {
		d := s.worldOf(q, kindDisks, x.DiskID)
		if d == "" {
			return errf(404, "NotFound", "Disk %s is not found.", x.DiskID)
		}
		p, err := s.w.AttachDisk(ctx, q.account, id, d, false)
		if err != nil {
			return fromWorld(err)
		}
		until = later(until, p)
	}
	s.accepted(q, 202, s.location(f.Zone), until, nil)
	return nil
}

// applied reports whether a world call's change was made: it succeeded,
// or only its reply is to be lost (world.ErrReplyLost). The emulator's own
// bookkeeping of the change (names, power) must then be done too, as a
// cloud that committed it would have done.
func applied(err error) bool { return err == nil || errors.Is(err, world.ErrReplyLost) }

func later(t time.Time, p world.Pending) time.Time {
	if p.Until.After(t) {
		return p.Until
	}
	return t
}

func (s *Server) setPoweredOff(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.poweredOff[id] = true
	} else {
		delete(s.poweredOff, id)
	}
}

// bootDiagData returns SAS-style URIs of the VM's boot diagnostics blobs.
func (s *Server) bootDiagData(q *request, id string) *apiError {
	if _, err := s.w.GuestEndpoint(q.r.Context(), q.account, id); err != nil {
		return fromWorld(err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.diag[tok] = diagTarget{account: q.account, vm: id}
	s.mu.Unlock()
	base := s.base(q) + "/bootdiagnostics/" + tok
	sas := "?sv=2023-11-03&sr=b&sp=r&sig=" + tok
	reply(q, 200, obj{"consoleScreenshotBlobUri": base + "/screenshot.bmp" + sas, "serialConsoleLogBlobUri": base + "/serial.log" + sas})
	return nil
}

// serveBootDiag serves a boot diagnostics blob (no bearer token: the SAS
// signature authorizes). The serial log is the world's console text; the
// screenshot, its screen.
func (s *Server) serveBootDiag(rw http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	q := &request{rw: rw, r: r}
	s.count("BootDiagnostics.Blob")
	s.mu.Lock()
	t, ok := s.diag[seg[min(1, len(seg)-1)]]
	s.mu.Unlock()
	if len(seg) != 3 || !ok || r.URL.Query().Get("sig") != seg[1] {
		s.fail(q, "", errf(403, "AuthenticationFailed", "Server failed to authenticate the request."))
		return
	}
	if seg[2] == "screenshot.bmp" {
		s.serveScreenshot(rw, q, t)
		return
	}
	if seg[2] != "serial.log" {
		s.fail(q, "", errf(404, "BlobNotFound", "The specified blob does not exist."))
		return
	}
	got, err := s.w.Observe(r.Context(), t.account, []string{t.vm})
	if e := fromWorld(err); e != nil {
		s.fail(q, "", e)
		return
	}
	sig, ok := got[t.vm]
	if !ok {
		s.fail(q, "", errf(404, "BlobNotFound", "The specified blob does not exist."))
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = rw.Write([]byte(sig.Console))
}

// getNIC answers a GET of a VM's network interface ("<vm>-nic"): its
// private address.
func (s *Server) getNIC(q *request) *apiError {
	vmName, ok := strings.CutSuffix(q.name, "-nic")
	id := s.resolve(kindVMs, q.sub, vmName)
	if !ok || id == "" {
		return errf(404, "NotFound", "Resource %s not found.", q.name)
	}
	if _, err := s.w.GuestEndpoint(q.r.Context(), q.account, id); err != nil {
		return fromWorld(err)
	}
	f, ok := s.w.VMFacts(q.account, id)
	if !ok {
		return errf(404, "NotFound", "Resource %s not found.", q.name)
	}
	reply(q, 200, s.nicJSON(q, f))
	return nil
}

// nicJSON renders a VM's network interface: its private address.
func (s *Server) nicJSON(q *request, f world.VMFacts) obj {
	name := s.name(f.ID)
	return obj{"id": s.nicID(q.sub, name), "name": name + "-nic", "type": "Microsoft.Network/networkInterfaces",
		"location": s.location(f.Zone),
		"properties": obj{"provisioningState": "Succeeded", "primary": true, "virtualMachine": obj{"id": s.armID(q.sub, kindVMs, f.ID)},
			"ipConfigurations": []obj{{"name": "ipconfig1",
				"properties": obj{"primary": true, "privateIPAddress": f.PrivateIP, "privateIPAllocationMethod": "Dynamic"}}}}}
}

func (s *Server) nicID(sub, vmName string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + s.opts.ResourceGroup + "/providers/Microsoft.Network/networkInterfaces/" + vmName + "-nic"
}

func (s *Server) location(zone string) string {
	l, _, _ := splitZone(zone)
	return l
}

func (s *Server) zoneList(zone string) []string {
	_, z, _ := splitZone(zone)
	return []string{z}
}

// name is the ARM name of a world resource.
func (s *Server) name(worldID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nameOf[worldID]; ok {
		return n
	}
	return worldID
}

// vmJSON renders a VM resource; iv is its instance view (nil: none);
// state overrides provisioningState.
func (s *Server) vmJSON(q *request, f world.VMFacts, iv obj, state string) obj {
	if state == "" {
		state = "Succeeded"
	}
	name := s.name(f.ID)
	osDisk := obj{"osType": "Windows", "createOption": "FromImage", "deleteOption": "Detach", "caching": "ReadWrite"}
	if f.BootDisk != "" {
		osDisk["name"] = s.name(f.BootDisk)
		osDisk["managedDisk"] = obj{"id": s.armID(q.sub, kindDisks, f.BootDisk)}
	}
	var image obj
	if f.Helper {
		osDisk["deleteOption"] = "Delete"
		image = obj{"id": s.armID(q.sub, kindImages, f.ImageID)}
	} else {
		sku := f.Windows.Release + "-datacenter"
		if f.Generation == world.GenerationV2 {
			sku += "-gensecond"
		}
		image = obj{"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": sku, "version": "latest"}
		if f.Windows.Build != "" {
			image["exactVersion"] = f.Windows.Build
		}
	}
	var data []obj
	for i, d := range f.DataDisks {
		data = append(data, obj{"lun": f.DataLUNs[i], "name": s.name(d), "createOption": "Attach", "managedDisk": obj{"id": s.armID(q.sub, kindDisks, d)}})
	}
	props := obj{
		"vmId": f.ID, "provisioningState": state,
		"hardwareProfile":    obj{"vmSize": "Standard_D2s_v5"},
		"storageProfile":     obj{"imageReference": image, "osDisk": osDisk, "dataDisks": append([]obj{}, data...)},
		"osProfile":          obj{"computerName": name},
		"networkProfile":     obj{"networkInterfaces": []obj{{"id": s.nicID(q.sub, name), "properties": obj{"primary": true}}}},
		"diagnosticsProfile": obj{"bootDiagnostics": obj{"enabled": true}},
	}
	if t := s.securityOf(f.ID); t != "" {
		props["securityProfile"] = obj{"securityType": t, "uefiSettings": obj{"secureBootEnabled": true, "vTpmEnabled": true}}
	}
	if iv != nil {
		props["instanceView"] = iv
	}
	return obj{"id": s.armID(q.sub, kindVMs, f.ID), "name": name, "type": "Microsoft.Compute/virtualMachines",
		"location": s.location(f.Zone), "zones": s.zoneList(f.Zone), "tags": f.Tags, "properties": props}
}

// statuses are a VM's provisioning and power states, as the instance view
// lists them.
func (s *Server) statuses(f world.VMFacts) []obj {
	s.mu.Lock()
	poweredOff := s.poweredOff[f.ID]
	s.mu.Unlock()
	var power, display string
	switch f.Power {
	case inventory.PowerRunning:
		power, display = "running", "VM running"
	case inventory.PowerStarting:
		power, display = "starting", "VM starting"
	case inventory.PowerStopping:
		power, display = "deallocating", "VM deallocating"
		if poweredOff {
			power, display = "stopping", "VM stopping"
		}
	default:
		power, display = "deallocated", "VM deallocated"
		if poweredOff {
			power, display = "stopped", "VM stopped"
		}
	}
	return []obj{
		{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
		{"code": "PowerState/" + power, "level": "Info", "displayStatus": display},
	}
}

// instanceView renders a VM's instance view from its signals: the VM
// agent is Ready when the guest answers the platform, and only then are
// the OS name and version known.
func (s *Server) instanceView(f world.VMFacts, sig inventory.Signals) obj {
	agent := obj{"vmAgentVersion": "Unknown", "statuses": []obj{{"code": "ProvisioningState/Unavailable", "level": "Warning",
		"displayStatus": "Not Ready", "message": "VM status blob is found but not yet populated."}}}
	iv := obj{"computerName": s.name(f.ID), "hyperVGeneration": f.Generation, "statuses": s.statuses(f), "vmAgent": agent,
		"bootDiagnostics": obj{}}
	if sig.InstanceReachable != nil && *sig.InstanceReachable {
		agent["vmAgentVersion"] = "2.7.41491.1102"
		agent["statuses"] = []obj{{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
			"message": "GuestAgent is running and processing the extensions."}}
		iv["osName"] = "Windows Server " + f.Windows.Release + " Datacenter"
		if f.Windows.Build != "" {
			iv["osVersion"] = f.Windows.Build
		}
	}
	return iv
}

func (s *Server) diskJSON(q *request, d world.DiskInfo) obj {
	now := s.w.Clock().Now()
	state, diskState := "Succeeded", "Unattached"
	if !d.ReadyAt.IsZero() && now.Before(d.ReadyAt) {
		state = "Creating"
	}
	out := obj{"id": s.armID(q.sub, kindDisks, d.Ref.ID), "name": s.name(d.Ref.ID), "type": "Microsoft.Compute/disks",
		"location": s.location(d.Ref.Zone), "zones": s.zoneList(d.Ref.Zone), "tags": d.Tags, "sku": obj{"name": "Premium_LRS"}}
	props := obj{"diskSizeGB": d.SizeGB, "provisioningState": state, "osType": "Windows"}
	if gen, ok := s.w.DiskGeneration(q.account, d.Ref.ID); ok {
		props["hyperVGeneration"] = gen
	}
	if t := s.securityOf(d.Ref.ID); t != "" {
		props["securityProfile"] = obj{"securityType": t}
	}
	if d.AttachedTo != "" {
		diskState = "Attached"
		out["managedBy"] = s.armID(q.sub, kindVMs, d.AttachedTo)
	}
	props["diskState"] = diskState
	out["properties"] = props
	return out
}

func (s *Server) snapJSON(q *request, x world.SnapshotInfo) obj {
	state, pct := "Succeeded", 100.0
	if !x.Ready {
		state, pct = "Creating", 0
	}
	props := obj{"provisioningState": state, "completionPercent": pct, "incremental": true, "osType": "Windows",
		"timeCreated": x.TakenAt.Format(time.RFC3339), "creationData": obj{"createOption": "Copy", "sourceResourceId": s.armID(q.sub, kindDisks, x.DiskID)}}
	if gen, ok := s.w.DiskGeneration(q.account, x.DiskID); ok {
		props["hyperVGeneration"] = gen
	}
	if t := s.securityOf(x.Ref.ID); t != "" {
		props["securityProfile"] = obj{"securityType": t}
	}
	return obj{"id": s.armID(q.sub, kindSnapshots, x.Ref.ID), "name": s.name(x.Ref.ID), "type": "Microsoft.Compute/snapshots",
		"location": s.location(x.Ref.Zone), "tags": x.Tags, "properties": props}
}

func (s *Server) imageJSON(q *request, im providers.HelperImage) obj {
	tags := map[string]string{TagImageRelease: im.Windows.Release, TagImageZone: im.Zone}
	if im.Windows.Build != "" {
		tags[TagImageBuild] = im.Windows.Build
	}
	return obj{"id": s.armID(q.sub, kindImages, im.ImageID), "name": im.ImageID, "type": "Microsoft.Compute/images",
		"location": s.location(im.Zone), "tags": tags,
		"properties": obj{"provisioningState": "Succeeded", "storageProfile": obj{"osDisk": obj{"osType": "Windows", "osState": "Generalized"}}}}
}

package sakuraapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sacloud/iaas-api-go/naked"
	"github.com/sacloud/iaas-api-go/types"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// ---- find conditions ----

// findCond is a decoded Find request: paging and the filters the
// emulator supports. An unsupported filter key is a 400, not a silent
// match-all.
type findCond struct {
	Count, From int
	tagsAll     []string // Tags.Name: all of these
	ids         []int64  // ID: any of these
	names       []string // Name: all of these substrings
	scopes      []string // Scope: any of these
}

func parseFind(q *req) (findCond, error) {
	var fc findCond
	raw := q.r.URL.RawQuery
	if raw == "" {
		return fc, nil
	}
	if s, err := url.PathUnescape(raw); err == nil {
		raw = s
	}
	var body struct {
		Count, From      int
		Filter           map[string]json.RawMessage
		Sort             json.RawMessage
		Include, Exclude []string
	}
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		return fc, fmt.Errorf("the query string is not a JSON find condition: %v", err)
	}
	fc.Count, fc.From = body.Count, body.From
	for k, v := range body.Filter {
		vals, nested, err := filterValues(v)
		if err != nil {
			return fc, fmt.Errorf("Filter.%s: %v", k, err)
		}
		switch k {
		case "Tags.Name", "Tags":
			_ = nested // nested (AND) or flat: the emulator treats both as "all of"
			fc.tagsAll = append(fc.tagsAll, vals...)
		case "ID":
			for _, s := range vals {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return fc, fmt.Errorf("Filter.ID: %q is not an ID", s)
				}
				fc.ids = append(fc.ids, n)
			}
		case "Name":
			for _, s := range vals {
				fc.names = append(fc.names, strings.Fields(s)...)
			}
		case "Scope":
			fc.scopes = append(fc.scopes, vals...)
		default:
			return fc, fmt.Errorf("Filter.%s: the emulator supports filters on Tags.Name, ID, Name and Scope only", k)
		}
	}
	return fc, nil
}

// filterValues flattens a filter value: "a", ["a","b"] or [["a","b"]].
func filterValues(v json.RawMessage) ([]string, bool, error) {
	var one any
	if err := json.Unmarshal(v, &one); err != nil {
		return nil, false, err
	}
	var out []string
	nested := false
	var walk func(x any, depth int) error
	walk = func(x any, depth int) error {
		switch t := x.(type) {
		case string:
			out = append(out, t)
		case float64:
			out = append(out, strconv.FormatFloat(t, 'f', -1, 64))
		case []any:
			if depth > 0 {
				nested = true
			}
			for _, e := range t {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unsupported value %v", x)
		}
		return nil
	}
	return out, nested, walk(one, 0)
}

func (fc findCond) match(id int64, name string, tags []string, scope string) bool {
	if len(fc.ids) > 0 && !containsID(fc.ids, id) {
		return false
	}
	for _, n := range fc.names {
		if !strings.Contains(strings.ToLower(name), strings.ToLower(n)) {
			return false
		}
	}
	for _, t := range fc.tagsAll {
		if !contains(tags, t) {
			return false
		}
	}
	if len(fc.scopes) > 0 && !contains(fc.scopes, scope) {
		return false
	}
	return true
}

func containsID(xs []int64, x int64) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// page applies From and Count to n results: the slice bounds.
func (fc findCond) page(n int) (int, int) {
	from := min(max(fc.From, 0), n)
	to := n
	if fc.Count > 0 {
		to = min(from+fc.Count, n)
	}
	return from, to
}

func decodeBody(q *req, into any) error {
	b, err := io.ReadAll(io.LimitReader(q.r.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, into)
}

// ---- model builders ----

func tptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Second)
	return &t
}

func (s *Server) zoneObj(q *req) *naked.Zone {
	return &naked.Zone{ID: types.ID(hashedID(kindOther, "zone:"+q.szone)), Name: q.szone}
}

// status returns the instance status shown for a world VM, with the
// previous one and when it changed, as the emulator has seen it.
func (s *Server) status(id string, p inventory.PowerState, now time.Time) statusRec {
	st := "down"
	switch p {
	case inventory.PowerRunning:
		st = "up"
	case inventory.PowerStopping:
		st = "cleaning"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.statuses[id]
	switch {
	case !ok:
		rec = statusRec{status: st, at: s.started}
	case rec.status != st:
		rec = statusRec{status: st, before: rec.status, at: now}
	}
	s.statuses[id] = rec
	return rec
}

type vmView struct {
	id, name, ip string
	tags         map[string]string
	power        inventory.PowerState
	helper       bool
}

// servers returns the account's servers in q's zone: fleet VMs, helpers
// and shells, sorted by ID.
func (s *Server) servers(q *req) ([]*naked.Server, error) {
	vms, err := s.w.ListVMs(q.ctx, q.acct, []string{q.zone})
	if err != nil {
		return nil, err
	}
	disks, err := s.w.FindDisks(q.ctx, q.acct, nil)
	if err != nil {
		return nil, err
	}
	byVM := map[string][]world.DiskInfo{}
	for _, d := range disks {
		if d.AttachedTo != "" {
			byVM[d.AttachedTo] = append(byVM[d.AttachedTo], d)
		}
	}
	var views []vmView
	for _, v := range vms {
		ip := ""
		if len(v.NICs) > 0 {
			ip = v.NICs[0].PrivateIP
		}
		views = append(views, vmView{id: v.ID, name: v.Name, ip: ip, tags: v.Tags, power: v.Power})
	}
	s.mu.Lock()
	var hids []string
	for id, h := range s.helpers {
		if h.acct == q.acct && h.zone == q.zone {
			hids = append(hids, id)
		}
	}
	s.mu.Unlock()
	if len(hids) > 0 {
		sort.Strings(hids)
		sig, err := s.w.Observe(q.ctx, q.acct, hids)
		if err != nil {
			return nil, err
		}
		for _, id := range hids {
			sg, ok := sig[id]
			if !ok { // released elsewhere
				s.mu.Lock()
				delete(s.helpers, id)
				s.mu.Unlock()
				continue
			}
			s.mu.Lock()
			h := s.helpers[id]
			s.mu.Unlock()
			if h.ip == "" {
				if ep, err := s.w.GuestEndpoint(q.ctx, q.acct, id); err == nil {
					h.ip = ep.Host
					s.mu.Lock()
					s.helpers[id] = h
					s.mu.Unlock()
				}
			}
			views = append(views, vmView{id: id, name: h.name, ip: h.ip, tags: h.tags, power: sg.Power, helper: true})
		}
	}
	now := s.w.Clock().Now()
	var out []*naked.Server
	for _, v := range views {
		out = append(out, s.serverObj(q, v, byVM[v.id], now))
	}
	s.mu.Lock()
	for _, sh := range s.shells {
		if sh.acct == q.acct && sh.zone == q.zone {
			out = append(out, s.shellObj(q, sh))
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Server) serverObj(q *req, v vmView, disks []world.DiskInfo, now time.Time) *naked.Server {
	st := s.status(v.id, v.power, now)
	s.mu.Lock()
	id := s.idOf(v.id)
	s.mu.Unlock()
	sv := &naked.Server{
		ID: types.ID(id), Name: v.name, Tags: types.Tags(encodeTags(v.tags)),
		Availability: types.Availabilities.Available, InterfaceDriver: types.InterfaceDrivers.VirtIO,
		ServerPlan: &naked.ServerPlan{ID: types.ID(100004004), Name: "4Core-4GB", CPU: 4, MemoryMB: 4096, Generation: 200,
			Commitment: types.Commitments.Standard},
		Zone: s.zoneObj(q),
		Instance: &naked.Instance{Status: types.EServerInstanceStatus(st.status), BeforeStatus: types.EServerInstanceStatus(st.before),
			StatusChangedAt: tptr(st.at)},
	}
	sort.Slice(disks, func(i, j int) bool {
		if disks[i].Boot != disks[j].Boot {
			return disks[i].Boot
		}
		return disks[i].Ref.ID < disks[j].Ref.ID
	})
	order := 1
	for _, d := range disks {
		if !d.Boot && order == 1 {
			order = 2 // no boot disk: the data disks keep their places
		}
		sv.Disks = append(sv.Disks, &naked.Disk{ID: types.ID(s.lockedID(d.Ref.ID)), Name: d.Ref.ID,
			Availability: availability(d), Connection: types.DiskConnections.VirtIO, ConnectionOrder: order,
			SizeMB: d.SizeGB * 1024, Plan: ssd()})
		order++
	}
	if v.ip != "" {
		sv.Interfaces = []*naked.Interface{{ID: types.ID(hashedID(kindOther, "nic:"+v.id)), MACAddress: mac(v.id),
			UserIPAddress: v.ip, Switch: &naked.Switch{ID: types.ID(hashedID(kindOther, "switch:"+q.zone)), Name: "fleet", Scope: types.Scopes.User}}}
	}
	return sv
}

func (s *Server) lockedID(worldID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idOf(worldID)
}

func (s *Server) shellObj(q *req, sh *shell) *naked.Server {
	return &naked.Server{ID: types.ID(sh.id), Name: sh.name, Description: sh.desc, Tags: types.Tags(sh.tags),
		CreatedAt: tptr(sh.createdAt), Availability: types.Availabilities.Available, InterfaceDriver: types.InterfaceDrivers.VirtIO,
		ServerPlan: &naked.ServerPlan{CPU: sh.cpu, MemoryMB: sh.memory, Generation: 200, Commitment: types.Commitments.Standard},
		Zone:       s.zoneObj(q),
		Instance:   &naked.Instance{Status: types.ServerInstanceStatuses.Down, StatusChangedAt: tptr(sh.createdAt)}}
}

func mac(id string) string {
	n := uint64(hashedID(0, "mac:"+id))
	return fmt.Sprintf("9C:A3:BA:%02X:%02X:%02X", byte(n>>16), byte(n>>8), byte(n))
}

func ssd() *naked.DiskPlan {
	return &naked.DiskPlan{ID: types.DiskPlans.SSD, Name: "SSDプラン", StorageClass: "iscsi1204"}
}

func availability(d world.DiskInfo) types.EAvailability {
	if !d.ReadyAt.IsZero() {
		return types.Availabilities.Migrating
	}
	return types.Availabilities.Available
}

// baseID is the user archive a zone's fleet disks of release come from.
func baseID(zone, release string) int64 { return hashedID(kindBase, "base:"+zone+":"+release) }

func releaseName(rel string) string { return "Windows Server " + rel + " Datacenter Edition" }

func windowsTags(rel string) []string {
	return []string{"distro-ver-" + rel, "distro-windows", "os-windows"}
}

func (s *Server) diskObj(q *req, d world.DiskInfo) *naked.Disk {
	s.mu.Lock()
	p, known := s.prov[d.Ref.ID]
	id := s.idOf(d.Ref.ID)
	var src, srv int64
	if known && p.ref != "" {
		src = s.idOf(p.ref)
	}
	if d.AttachedTo != "" {
		srv = s.idOf(d.AttachedTo)
	}
	s.mu.Unlock()
	nd := &naked.Disk{ID: types.ID(id), Name: d.Ref.ID, Tags: types.Tags(encodeTags(d.Tags)),
		Availability: availability(d), SizeMB: d.SizeGB * 1024, Connection: types.DiskConnections.VirtIO, Plan: ssd()}
	if known {
		switch p.kind {
		case "original":
			if p.release != "" {
				nd.SourceArchive = &naked.Archive{ID: types.ID(baseID(d.Ref.Zone, p.release))}
			}
		case "image", "snapshot", "backup":
			nd.SourceArchive = &naked.Archive{ID: types.ID(src)}
		}
	}
	if srv != 0 {
		nd.Server = &naked.Server{ID: types.ID(srv)}
		nd.ConnectionOrder = 2
		if d.Boot {
			nd.ConnectionOrder = 1
		}
	}
	return nd
}

// archives returns the account's archives in q's zone: public images,
// base images, backups and snapshots, sorted by ID.
func (s *Server) archives(q *req, tags map[string]string) ([]*naked.Archive, error) {
	snaps, err := s.w.FindSnapshots(q.ctx, q.acct, tags)
	if err != nil {
		return nil, err
	}
	var out []*naked.Archive
	for _, sn := range snaps {
		if sn.Ref.Zone == q.zone {
			out = append(out, s.snapObj(sn))
		}
	}
	if len(tags) == 0 {
		out = append(out, s.staticArchives(q)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Server) staticArchives(q *req) []*naked.Archive {
	var out []*naked.Archive
	rels := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, im := range s.images {
		rels[im.Release] = true
		if im.Zone == q.zone {
			out = append(out, s.imageObj(im))
		}
	}
	for _, p := range s.prov {
		if p.kind == "original" && p.release != "" {
			rels[p.release] = true
		}
	}
	for rel := range rels {
		out = append(out, s.baseObj(q.zone, rel))
	}
	for id, b := range s.backups {
		if b.acct == q.acct && b.zone == q.zone {
			out = append(out, s.backupObj(id, b))
		}
	}
	return out
}

// imageObj, baseObj, backupObj: callers hold mu.
func (s *Server) imageObj(im world.ImageSpec) *naked.Archive {
	return &naked.Archive{ID: types.ID(s.idOf(im.ImageID)), Name: releaseName(im.Release), Description: "build " + im.Build,
		Tags: types.Tags(windowsTags(im.Release)), Availability: types.Availabilities.Available, Scope: types.Scopes.Shared,
		SizeMB: 102400, Plan: ssd(), CreatedAt: tptr(time.Date(2024, 7, 10, 0, 0, 0, 0, time.UTC))}
}

func (s *Server) baseObj(zone, rel string) *naked.Archive {
	a := &naked.Archive{ID: types.ID(baseID(zone, rel)), Name: "Windows Server " + rel + " base image (" + zone + ")",
		Tags: types.Tags(windowsTags(rel)), Availability: types.Availabilities.Available, Scope: types.Scopes.User,
		SizeMB: 102400, Plan: ssd(), CreatedAt: tptr(time.Date(2024, 7, 10, 0, 0, 0, 0, time.UTC))}
	for _, im := range s.images {
		if im.Zone == zone && im.Release == rel {
			a.SourceArchive = &naked.Archive{ID: types.ID(s.idOf(im.ImageID))}
		}
	}
	return a
}

func (s *Server) backupObj(id string, b backupRec) *naked.Archive {
	return &naked.Archive{ID: types.ID(s.idOf(id)), Name: b.vmName + " " + b.spec.Kind + " " + b.spec.TakenAt.UTC().Format("2006-01-02 15:04"),
		Tags: types.Tags{}, Availability: types.Availabilities.Available, Scope: types.Scopes.User,
		SizeMB: b.spec.SizeGB * 1024, Plan: ssd(), CreatedAt: tptr(b.spec.TakenAt),
		SourceDisk: &naked.Disk{ID: types.ID(s.idOf(b.disk))}}
}

func (s *Server) snapObj(sn world.SnapshotInfo) *naked.Archive {
	s.mu.Lock()
	defer s.mu.Unlock()
	av := types.Availabilities.Migrating
	if sn.Ready {
		av = types.Availabilities.Available
	}
	return &naked.Archive{ID: types.ID(s.idOf(sn.Ref.ID)), Name: "snapshot of " + sn.DiskID,
		Tags: types.Tags(encodeTags(sn.Tags)), Availability: av, Scope: types.Scopes.User, Plan: ssd(),
		CreatedAt: tptr(sn.TakenAt), SourceDisk: &naked.Disk{ID: types.ID(s.idOf(sn.DiskID))}}
}

// ---- servers ----

func (s *Server) serverFind(q *req) {
	fc, ok := s.decodeFind(q)
	if !ok {
		return
	}
	all, err := s.servers(q)
	if err != nil {
		s.fail(q, err)
		return
	}
	var sel []*naked.Server
	for _, sv := range all {
		if fc.match(int64(sv.ID), sv.Name, sv.Tags, "") {
			sel = append(sel, sv)
		}
	}
	replyPage(q, fc, "Servers", sel)
}

// decodeFind is parseFind for a handler; ok false if it has answered 400.
func (s *Server) decodeFind(q *req) (findCond, bool) {
	fc, err := parseFind(q)
	if err != nil {
		s.bad(q, "%v", err)
		return fc, false
	}
	return fc, true
}

// replyPage answers a Find: the page of sel that fc asks for, under key.
func replyPage[T any](q *req, fc findCond, key string, sel []T) {
	from, to := fc.page(len(sel))
	q.reply(http.StatusOK, map[string]any{"Total": len(sel), "From": from, "Count": to - from, key: nonNil(sel[from:to])})
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// findServer returns the server id in q's zone (following a shell's alias).
func (s *Server) findServer(q *req, id int64) (*naked.Server, bool, error) {
	all, err := s.servers(q)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	if h, ok := s.alias[id]; ok {
		id = s.idOf(h)
	}
	s.mu.Unlock()
	for _, sv := range all {
		if int64(sv.ID) == id {
			return sv, true, nil
		}
	}
	return nil, false, nil
}

func (s *Server) serverRead(q *req) {
	id, ok := pathID(q, "id")
	if !ok {
		s.notFound(q, "server "+q.r.PathValue("id"))
		return
	}
	sv, found, err := s.findServer(q, id)
	switch {
	case err != nil:
		s.fail(q, err)
	case !found:
		s.notFound(q, "server "+q.r.PathValue("id"))
	default:
		q.reply(http.StatusOK, map[string]any{"Server": sv})
	}
}

func (s *Server) serverCreate(q *req) {
	var body struct{ Server *naked.Server }
	if err := decodeBody(q, &body); err != nil || body.Server == nil {
		s.bad(q, "the body must be {\"Server\": {...}}")
		return
	}
	if body.Server.Name == "" {
		s.bad(q, "Server.Name is required")
		return
	}
	if err := s.gate(q); err != nil {
		s.fail(q, err)
		return
	}
	sh := &shell{acct: q.acct, zone: q.zone, name: body.Server.Name, desc: body.Server.Description,
		tags: append([]string(nil), body.Server.Tags...), createdAt: s.w.Clock().Now(), cpu: 4, memory: 4096}
	if p := body.Server.ServerPlan; p != nil && p.CPU > 0 {
		sh.cpu, sh.memory = p.CPU, p.MemoryMB
	}
	s.mu.Lock()
	s.seq++
	sh.id = compose(kindShell, s.seq)
	s.shells[sh.id] = sh
	s.mu.Unlock()
	q.reply(http.StatusCreated, map[string]any{"Server": s.shellObj(q, sh)})
}

// target resolves {id} to a world VM or helper ID, or an unbound shell.
func (s *Server) target(q *req) (string, *shell, bool) {
	id, ok := pathID(q, "id")
	if !ok {
		return "", nil, false
	}
	s.mu.Lock()
	sh := s.shells[id]
	s.mu.Unlock()
	if sh != nil {
		return "", sh, sh.acct == q.acct && sh.zone == q.zone
	}
	w, ok := s.worldOf(id, kindVM, kindHelper)
	return w, nil, ok
}

// power reads one VM's power state for the emulator's own bookkeeping (not
// an observation by the orchestrator); ok false if it does not exist.
func (s *Server) power(q *req, id string) (inventory.PowerState, bool, error) {
	ps, err := s.w.PowerStates(q.ctx, q.acct, []string{id})
	if err != nil {
		return "", false, err
	}
	p, ok := ps[id]
	return p, ok, nil
}

// serverTarget is target for a handler of /server/{id}; ok false if it has
// answered 404.
func (s *Server) serverTarget(q *req) (string, *shell, bool) {
	id, sh, ok := s.target(q)
	if !ok {
		s.notFound(q, "server "+q.r.PathValue("id"))
	}
	return id, sh, ok
}

// serverPower is power for a handler of /server/{id}; ok false if it has
// answered the error or 404.
func (s *Server) serverPower(q *req, id string) (inventory.PowerState, bool) {
	p, exists, err := s.power(q, id)
	if err != nil {
		s.fail(q, err)
		return "", false
	}
	if !exists {
		s.notFound(q, "server "+q.r.PathValue("id"))
		return "", false
	}
	return p, true
}

func (s *Server) serverDelete(q *req) {
	id, sh, ok := s.serverTarget(q)
	if !ok {
		return
	}
	var body struct{ WithDisk []types.ID }
	if err := decodeBody(q, &body); err != nil {
		s.bad(q, "bad body: %v", err)
		return
	}
	if sh != nil {
		if err := s.gate(q); err != nil {
			s.fail(q, err)
			return
		}
		s.mu.Lock()
		delete(s.shells, sh.id)
		s.mu.Unlock()
		q.reply(http.StatusOK, map[string]any{})
		return
	}
	s.mu.Lock()
	h, isHelper := s.helpers[id]
	s.mu.Unlock()
	if !isHelper {
		s.bad(q, "server %s: the simulated world never deletes fleet servers", q.r.PathValue("id"))
		return
	}
	p, ok := s.serverPower(q, id)
	if !ok {
		return
	}
	if p != inventory.PowerStopped {
		s.conflict(q, "server %s is %s; shut it down before deleting it", q.r.PathValue("id"), p)
		return
	}
	if h.bootDisk == "" {
		// Its creation's answer failed before the disk was recorded.
		d, err := s.helperBootDisk(q, id)
		if err != nil {
			s.fail(q, err)
			return
		}
		h.bootDisk = d.Ref.ID
	}
	own := s.lockedID(h.bootDisk)
	for _, d := range body.WithDisk {
		if int64(d) != own {
			s.bad(q, "WithDisk: disk %s is not the server's own boot disk; the emulator deletes only that", d)
			return
		}
	}
	if h.bootDisk != "" && len(body.WithDisk) == 0 {
		s.bad(q, "the emulator deletes a helper together with its boot disk: pass WithDisk [%d]", own)
		return
	}
	err := s.w.ReleaseHelper(q.ctx, q.acct, id)
	if err == nil || applied(err) {
		s.mu.Lock()
		delete(s.helpers, id)
		for a, w := range s.alias {
			if w == id {
				delete(s.alias, a)
			}
		}
		s.mu.Unlock()
	}
	if err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusOK, map[string]any{})
}

func (s *Server) serverStatus(q *req) {
	id, sh, ok := s.serverTarget(q)
	if !ok {
		return
	}
	status := types.ServerInstanceStatuses.Down
	if sh == nil {
		p, ok := s.serverPower(q, id)
		if !ok {
			return
		}
		status = types.EServerInstanceStatus(s.status(id, p, s.w.Clock().Now()).status)
	} else if err := s.gate(q); err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusOK, map[string]any{"Instance": &naked.Instance{Status: status}})
}

func (s *Server) serverBoot(q *req) {
	id, sh, ok := s.serverTarget(q)
	if !ok {
		return
	}
	if sh != nil {
		s.conflict(q, "server %s has no disk", q.r.PathValue("id"))
		return
	}
	p, ok := s.serverPower(q, id)
	if !ok {
		return
	}
	if p == inventory.PowerRunning {
		s.conflict(q, "server %s is already up", q.r.PathValue("id"))
		return
	}
	if _, err := s.w.StartVMs(q.ctx, q.acct, []string{id}); err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusAccepted, map[string]any{})
}

func (s *Server) serverShutdown(q *req) {
	id, sh, ok := s.serverTarget(q)
	if !ok {
		return
	}
	var body struct{ Force bool }
	if err := decodeBody(q, &body); err != nil {
		s.bad(q, "bad body: %v", err)
		return
	}
	if sh != nil {
		s.conflict(q, "server %s is already down", q.r.PathValue("id"))
		return
	}
	p, ok := s.serverPower(q, id)
	if !ok {
		return
	}
	if p == inventory.PowerStopped {
		s.conflict(q, "server %s is already down", q.r.PathValue("id"))
		return
	}
	if _, err := s.w.StopVMs(q.ctx, q.acct, []string{id}, body.Force); err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusAccepted, map[string]any{})
}

func (s *Server) serverReset(q *req) {
	id, sh, ok := s.serverTarget(q)
	if !ok {
		return
	}
	if sh != nil {
		s.conflict(q, "server %s is down", q.r.PathValue("id"))
		return
	}
	if _, err := s.w.RestartVM(q.ctx, q.acct, id); err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusAccepted, map[string]any{})
}

// ---- disks ----

func (s *Server) diskFind(q *req) {
	fc, ok := s.decodeFind(q)
	if !ok {
		return
	}
	ds, err := s.w.FindDisks(q.ctx, q.acct, decodeTags(fc.tagsAll))
	if err != nil {
		s.fail(q, err)
		return
	}
	var sel []*naked.Disk
	for _, d := range ds {
		if d.Ref.Zone != q.zone {
			continue
		}
		nd := s.diskObj(q, d)
		if fc.match(int64(nd.ID), nd.Name, nd.Tags, "") {
			sel = append(sel, nd)
		}
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].ID < sel[j].ID })
	replyPage(q, fc, "Disks", sel)
}

func (s *Server) diskByPath(q *req) (string, bool) {
	id, ok := pathID(q, "id")
	if !ok {
		return "", false
	}
	return s.worldOf(id, kindDisk)
}

// zoneDisk describes world disk id, which must be in q's zone; ok false if
// it has answered the error, or 404 naming what.
func (s *Server) zoneDisk(q *req, id, what string) (world.DiskInfo, bool) {
	d, err := s.w.DescribeDisk(q.ctx, q.acct, id)
	if err != nil {
		s.fail(q, err)
		return d, false
	}
	if d.Ref.Zone != q.zone {
		s.notFound(q, what)
		return d, false
	}
	return d, true
}

func (s *Server) diskRead(q *req) {
	id, ok := s.diskByPath(q)
	if !ok {
		s.notFound(q, "disk "+q.r.PathValue("id"))
		return
	}
	d, ok := s.zoneDisk(q, id, "disk "+q.r.PathValue("id"))
	if !ok {
		return
	}
	q.reply(http.StatusOK, map[string]any{"Disk": s.diskObj(q, d)})
}

func (s *Server) diskCreate(q *req) {
	var body struct{ Disk *naked.Disk }
	if err := decodeBody(q, &body); err != nil || body.Disk == nil {
		s.bad(q, "the body must be {\"Disk\": {...}}")
		return
	}
	nd := body.Disk
	if nd.SourceDisk != nil {
		s.bad(q, "Disk.SourceDisk: the emulator creates disks from archives only")
		return
	}
	if nd.SourceArchive == nil || nd.SourceArchive.ID == 0 {
		s.bad(q, "Disk.SourceArchive.ID is required by the emulator (blank disks are not simulated)")
		return
	}
	src := int64(nd.SourceArchive.ID)
	tags := decodeTags(nd.Tags)
	var serverID int64
	if nd.Server != nil {
		serverID = int64(nd.Server.ID)
	}
	var info world.DiskInfo
	var err error
	role := s.roleOf(src)
	switch role {
	case kindSnap, kindBackup:
		if serverID != 0 {
			s.bad(q, "Disk.Server: the emulator connects a disk made from a snapshot or backup only after it is created")
			return
		}
		wid, ok := s.worldOf(src, kindSnap, kindBackup)
		if !ok {
			s.notFound(q, "archive "+strconv.FormatInt(src, 10))
			return
		}
		if role == kindSnap {
			info, err = s.w.DiskFromSnapshot(q.ctx, q.acct, wid, q.zone, tags)
		} else {
			s.mu.Lock()
			b, ok := s.backups[wid]
			s.mu.Unlock()
			if !ok || b.zone != q.zone || b.acct != q.acct {
				s.notFound(q, "archive "+strconv.FormatInt(src, 10))
				return
			}
			info, err = s.w.RestoreBackup(q.ctx, q.acct, wid, q.zone, tags)
		}
		if err == nil || applied(err) {
			s.mu.Lock()
			s.prov[info.Ref.ID] = provenance{kind: map[int]string{kindSnap: "snapshot", kindBackup: "backup"}[role], ref: wid}
			s.mu.Unlock()
		}
		if err != nil {
			s.fail(q, err)
			return
		}
		q.reply(http.StatusAccepted, map[string]any{"Disk": s.diskObj(q, info)})
	case kindImage:
		s.diskForHelper(q, src, serverID)
	default:
		s.bad(q, "Disk.SourceArchive: archive %d cannot be copied in the simulated world (only public archives, snapshots and backups)", src)
	}
}

// diskForHelper creates a shell server's disk from a public archive: the
// world's helper of that release in this zone, with the shell's tags.
func (s *Server) diskForHelper(q *req, src, serverID int64) {
	s.mu.Lock()
	var im *world.ImageSpec
	for i := range s.images {
		if s.idOf(s.images[i].ImageID) == src && s.images[i].Zone == q.zone {
			im = &s.images[i]
		}
	}
	sh := s.shells[serverID]
	s.mu.Unlock()
	if im == nil {
		s.notFound(q, "archive "+strconv.FormatInt(src, 10))
		return
	}
	if sh == nil || sh.acct != q.acct || sh.zone != q.zone {
		s.bad(q, "Disk.Server: the emulator creates a disk from a public archive only for a server created by the API and without a disk yet")
		return
	}
	tags := decodeTags(sh.tags)
	// The shell's ID is the request's idempotency key: a server gets one
	// disk from its archive, however often the call is retried.
	info, err := s.w.CreateHelper(q.ctx, q.acct, q.zone, inventory.WindowsVersion{Release: im.Release, Build: im.Build}, tags,
		"sakura-server:"+strconv.FormatInt(sh.id, 10))
	if err != nil && !applied(err) {
		s.fail(q, err)
		return
	}
	hid := info.Ref.ID
	s.mu.Lock()
	s.idOf(hid)
	s.alias[sh.id] = hid
	delete(s.shells, sh.id)
	s.helpers[hid] = helperRec{zone: q.zone, acct: q.acct, name: sh.name, tags: tags, windows: info.Windows}
	s.mu.Unlock()
	if err != nil {
		s.fail(q, err)
		return
	}
	d, err := s.helperBootDisk(q, hid)
	if err != nil {
		s.fail(q, err)
		return
	}
	s.mu.Lock()
	s.prov[d.Ref.ID] = provenance{kind: "image", ref: im.ImageID}
	s.mu.Unlock()
	q.reply(http.StatusAccepted, map[string]any{"Disk": s.diskObj(q, d)})
}

// helperBootDisk finds helper hid's own boot disk in the world and records
// it (helperRec.bootDisk), for Release to delete with the server.
func (s *Server) helperBootDisk(q *req, hid string) (world.DiskInfo, error) {
	ds, err := s.w.FindDisks(q.ctx, q.acct, nil)
	if err != nil {
		return world.DiskInfo{}, err
	}
	for _, d := range ds {
		if d.AttachedTo == hid && d.Boot {
			s.mu.Lock()
			h := s.helpers[hid]
			h.bootDisk = d.Ref.ID
			s.helpers[hid] = h
			s.mu.Unlock()
			return d, nil
		}
	}
	return world.DiskInfo{}, providers.Errorf(providers.ErrUnavailable, "Disk.Create", "helper "+hid, "the helper has no boot disk yet")
}

// wait sleeps on the world's clock until the pending operation is done: the
// API's connect and disconnect answer when they are complete.
func (s *Server) wait(q *req, p world.Pending) error {
	for {
		d := p.Until.Sub(s.w.Clock().Now())
		if d <= 0 {
			return nil
		}
		if err := s.w.Clock().Sleep(q.ctx, d); err != nil {
			return err
		}
	}
}

// replyDone answers a connect or disconnect once its pending operation p
// is complete (or the error that started it, or the wait's).
func (s *Server) replyDone(q *req, p world.Pending, err error) {
	if err == nil {
		err = s.wait(q, p)
	}
	if err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusOK, map[string]any{})
}

func (s *Server) diskConnect(q *req) {
	did, ok := s.diskByPath(q)
	if !ok {
		s.notFound(q, "disk "+q.r.PathValue("id"))
		return
	}
	sid, ok := pathID(q, "server")
	if !ok {
		s.notFound(q, "server "+q.r.PathValue("server"))
		return
	}
	s.mu.Lock()
	sh := s.shells[sid]
	s.mu.Unlock()
	if sh != nil {
		s.bad(q, "server %d: the emulator gives a server created by the API its first disk only by creating it from a public archive", sid)
		return
	}
	vm, ok := s.worldOf(sid, kindVM, kindHelper)
	if !ok {
		s.notFound(q, "server "+q.r.PathValue("server"))
		return
	}
	ds, err := s.w.FindDisks(q.ctx, q.acct, nil)
	if err != nil {
		s.fail(q, err)
		return
	}
	boot := true
	for _, d := range ds {
		if d.AttachedTo == vm && d.Ref.ID != did {
			boot = false
		}
	}
	p, err := s.w.AttachDisk(q.ctx, q.acct, vm, did, boot)
	s.replyDone(q, p, err)
}

func (s *Server) diskDisconnect(q *req) {
	did, ok := s.diskByPath(q)
	if !ok {
		s.notFound(q, "disk "+q.r.PathValue("id"))
		return
	}
	d, err := s.w.DescribeDisk(q.ctx, q.acct, did)
	if err != nil {
		s.fail(q, err)
		return
	}
	if d.AttachedTo == "" {
		s.conflict(q, "disk %s is not connected to a server", q.r.PathValue("id"))
		return
	}
	p, err := s.w.DetachDisk(q.ctx, q.acct, d.AttachedTo, did)
	s.replyDone(q, p, err)
}

// diskDelete answers DELETE /disk/{id} as Sakura does: 200 with the disk
// as it was, once it is gone (the API deletes a disk synchronously). Like
// Sakura it refuses (409) a disk connected to a server: disconnect it
// first. The world deletes only copies (disks made from a snapshot or a
// backup): a fleet VM's original disk or a helper's own is refused (400),
// a copy still being created is still_creating (409), and the world's
// faults answer as for any request (outage 503, throttling 429, a reply
// lost after the delete a dropped connection). An unknown disk is 404.
func (s *Server) diskDelete(q *req) {
	what := "disk " + q.r.PathValue("id")
	id, ok := s.diskByPath(q)
	if !ok {
		s.notFound(q, what)
		return
	}
	d, ok := s.zoneDisk(q, id, what)
	if !ok {
		return
	}
	if d.AttachedTo != "" {
		s.conflict(q, "%s is connected to server %d; disconnect it first", what, s.lockedID(d.AttachedTo))
		return
	}
	if err := s.w.DeleteDisk(q.ctx, q.acct, id); err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusOK, map[string]any{"Disk": s.diskObj(q, d)})
}

// ---- archives ----

func (s *Server) archiveFind(q *req) {
	fc, ok := s.decodeFind(q)
	if !ok {
		return
	}
	all, err := s.archives(q, nil)
	if err != nil {
		s.fail(q, err)
		return
	}
	var sel []*naked.Archive
	for _, a := range all {
		if fc.match(int64(a.ID), a.Name, a.Tags, string(a.Scope)) {
			sel = append(sel, a)
		}
	}
	replyPage(q, fc, "Archives", sel)
}

var userArchiveRE = regexp.MustCompile(`^\d+$`)

func (s *Server) archiveRead(q *req) {
	raw := q.r.PathValue("id")
	id, ok := pathID(q, "id")
	if !ok || !userArchiveRE.MatchString(raw) {
		s.notFound(q, "archive "+raw)
		return
	}
	all, err := s.archives(q, nil)
	if err != nil {
		s.fail(q, err)
		return
	}
	for _, a := range all {
		if int64(a.ID) == id {
			q.reply(http.StatusOK, map[string]any{"Archive": a})
			return
		}
	}
	s.notFound(q, "archive "+raw)
}

func (s *Server) archiveCreate(q *req) {
	var body struct{ Archive *naked.Archive }
	if err := decodeBody(q, &body); err != nil || body.Archive == nil {
		s.bad(q, "the body must be {\"Archive\": {...}}")
		return
	}
	a := body.Archive
	if a.SourceDisk == nil || a.SourceDisk.ID == 0 {
		s.bad(q, "Archive.SourceDisk.ID is required by the emulator (archives are made from disks)")
		return
	}
	did, ok := s.worldOf(int64(a.SourceDisk.ID), kindDisk)
	if !ok {
		s.notFound(q, "disk "+a.SourceDisk.ID.String())
		return
	}
	if _, ok := s.zoneDisk(q, did, "disk "+a.SourceDisk.ID.String()); !ok {
		return
	}
	sn, err := s.w.Snapshot(q.ctx, q.acct, did, decodeTags(a.Tags))
	if err != nil {
		s.fail(q, err)
		return
	}
	obj := s.snapObj(sn)
	if a.Name != "" {
		obj.Name = a.Name // shown once; later reads name it after its disk
	}
	q.reply(http.StatusAccepted, map[string]any{"Archive": obj})
}

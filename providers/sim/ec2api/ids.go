package ec2api

import (
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// EC2 resource IDs: the emulator shows world resources under IDs in EC2's
// own formats ("i-", "vol-", "snap-", "r-" and 17 hex digits), derived from
// the world ID, and translates them back on the way in. Inside, every
// handler speaks world IDs; the translation is at the edge (parameters and
// filters in, fields tagged `ec2id:"<prefix>"` out).
const (
	kindInstance = "i"
	kindVolume   = "vol"
	kindSnapshot = "snap"
)

var prefixKinds = map[string]string{"vm": kindInstance, "helper": kindInstance, "disk": kindVolume, "snap": kindSnapshot, "bk": kindSnapshot}

// ID returns the EC2 ID the emulator shows for a world resource ID whose
// kind its prefix tells (vm-, helper-: i-; disk-: vol-; snap-, bk-:
// snap-); any other is taken for an instance. Pure function.
func ID(worldID string) string {
	p, _, _ := strings.Cut(worldID, "-")
	kind, ok := prefixKinds[p]
	if !ok {
		kind = kindInstance
	}
	return ec2ID(kind, worldID)
}

func ec2ID(kind, worldID string) string { return kind + "-" + hex17(kind+"|"+worldID) }

// idMap remembers both directions of every ID the emulator showed.
type idMap struct {
	mu      sync.Mutex
	toWorld map[string]string
	toEC2   map[string]string
}

func newIDMap(w *world.World) *idMap {
	m := &idMap{toWorld: map[string]string{}, toEC2: map[string]string{}}
	sc := w.Export()
	for _, v := range append(sc.VMs, sc.Helpers...) {
		m.out(kindInstance, v.ID)
		if v.OSDisk != nil {
			m.out(kindVolume, v.OSDisk.ID)
		}
		for _, b := range v.Backups {
			m.out(kindSnapshot, b.ID)
		}
	}
	for _, d := range sc.Disks {
		m.out(kindVolume, d.ID)
	}
	for _, sn := range sc.Snapshots {
		m.out(kindSnapshot, sn.ID)
	}
	return m
}

// out is the EC2 ID of world ID wid, of kind.
func (m *idMap) out(kind, wid string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.toEC2[kind+"|"+wid]; ok {
		return id
	}
	id := ec2ID(kind, wid)
	m.toEC2[kind+"|"+wid], m.toWorld[id] = id, wid
	return id
}

// in is the world ID behind an EC2 ID the emulator showed; any other ID
// is returned as it is (the world then finds nothing by it).
func (m *idMap) in(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.toWorld[id]; ok {
		return w
	}
	return id
}

// export rewrites, in the response v points to, every string field tagged
// `ec2id:"<kind>"` from a world ID to its EC2 ID (an "r-" field holds
// "r-" and a world ID).
func (m *idMap) export(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			m.export(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			m.export(v.Index(i))
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			kind := f.Tag.Get("ec2id")
			switch {
			case kind != "" && fv.Kind() == reflect.String && fv.CanSet() && fv.String() != "":
				wid := fv.String()
				if kind == "r" {
					wid = strings.TrimPrefix(wid, "r-")
				}
				fv.SetString(m.out(kind, wid))
			case kind == "" && (f.IsExported() || f.Anonymous):
				m.export(fv)
			}
		}
	}
}

// exported returns a copy of response v with its IDs rewritten (export).
func (m *idMap) exported(v any) any {
	if v == nil {
		return nil
	}
	p := reflect.New(reflect.TypeOf(v))
	p.Elem().Set(reflect.ValueOf(v))
	m.export(p)
	return p.Interface()
}

var idToken = regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9_.-]*`)

// text rewrites the world IDs the emulator has shown that appear in an
// error message.
func (m *idMap) text(msg string) string {
	return idToken.ReplaceAllStringFunc(msg, func(tok string) string {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, k := range []string{kindInstance, kindVolume, kindSnapshot} {
			if id, ok := m.toEC2[k+"|"+tok]; ok {
				return id
			}
		}
		return tok
	})
}

// idParams are the query parameters that carry EC2 IDs (alone or .N);
// idFilters the filters whose values are EC2 IDs.
var (
	idParams  = []string{"InstanceId", "VolumeId", "SnapshotId"}
	idFilters = []string{"instance-id", "volume-id", "snapshot-id", "attachment.instance-id"}
)

// importForm translates the EC2 IDs of a Query request's parameters and
// filters into world IDs, in place.
func (m *idMap) importForm(form map[string][]string) {
	for k, vs := range form {
		base, _, _ := strings.Cut(k, ".")
		isID := false
		for _, p := range idParams {
			isID = isID || base == p
		}
		if strings.HasPrefix(k, "Filter.") && strings.Contains(k, ".Value.") {
			name := form[k[:strings.Index(k, ".Value.")]+".Name"]
			for _, f := range idFilters {
				isID = isID || (len(name) > 0 && name[0] == f)
			}
		}
		if isID {
			for i := range vs {
				vs[i] = m.in(vs[i])
			}
		}
	}
}

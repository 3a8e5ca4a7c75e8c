// Package world is the simulated cloud: a fleet of Windows VMs after a bad
// endpoint-security update, with their disks, snapshots, backups, helper VMs
// and guests, which boots, crashes, recovers, throttles and fails like the
// real clouds do, and referees what an orchestrator does to it.
//
// A World is built by Generate or Load and read back by Export (a Scenario,
// a JSON document). Every operation is a method with plain inputs and
// outputs, safe for concurrent use (one mutex). Nothing runs in the
// background: the state of a VM is advanced lazily from the clock whenever it
// is read or acted on, so a 10,000-VM world costs nothing while idle.
//
// Three faces use a World: the in-process provider (package sim), loopback
// HTTP emulators of the clouds' APIs, and the WinRM server (package winrmd,
// through the Hosts and Machine interfaces the world implements).
package world

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
)

// Truth values: the referee's verdict on a VM.
const (
	TruthHealthy  = "healthy"
	TruthSafeMode = "safe-mode"
	TruthBootLoop = "boot-loop"
)

// WinRM conditions.
const (
	WinRMOpen           = "open"
	WinRMBlocked        = "blocked"
	WinRMBadCredentials = "bad-credentials"
)

// Loop kinds.
const (
	LoopCycling = "cycling"
	LoopStuck   = "stuck"
)

// DefaultAccount is the tenant and account of VMs that name none.
const DefaultAccount = "sim"

// World is the simulated cloud. Use Generate or Load to make one.
type World struct {
	mu       sync.Mutex
	clk      clock.Clock
	seed     int64
	incident inventory.Incident

	zones            []string
	images           []ImageSpec
	user             string
	password         secret.Secret
	consoleAvailable bool
	fullCopies       bool // snapshots are full copies: no incremental discount
	perDiskSnaps     bool // a disk made from a snapshot starts its own snapshot family (Scenario.PerDiskSnapshots)
	zoneBoundSnaps   bool // a snapshot makes disks only in its own zone (Scenario.ZoneBoundSnapshots)
	// serialOf is the serial number a guest sees on a disk (the cloud's
	// ID for it); nil: the world's disk ID.
	serialOf func(diskID string) string

	vms   map[string]*vm // fleet VMs and helpers
	disks map[string]*disk
	snaps map[string]*snapshot
	byIP  map[string]string // private IP -> VM ID
	ipSeq uint32            // last allocated address (host part of 10/8)

	// attempts counts the draws per subject and operation: the attempt
	// number that keys the next one (see drawFor).
	attempts map[string]int

	limits Limits
	gate   gateState
	ref    referee
}

type vm struct {
	id, name, tenant, account, zone string
	tags                            map[string]string
	windows                         inventory.WindowsVersion
	helper                          bool
	imageID                         string
	clientToken                     string // helpers: the create request's client token
	ip                              string
	originalDisk                    string
	bootDisk                        string   // "" if none
	data                            []string // data disks, attach order
	password                        secret.Secret

	power      inventory.PowerState // running, stopped, starting, stopping
	powerUntil time.Time
	bootCount  int
	lastBootAt time.Time
	boot       bootState // the current boot, when running
	cond       condition
	backups    []BackupSpec

	// wrote is the last instant its Windows was seen up, and so writing
	// to its boot disk (noteWrites; referee: lost writes).
	wrote time.Time

	// referee: the last observation whose reply reached the orchestrator
	observed   bool
	obsHealthy bool
	obsAt      time.Time
}

type condition struct {
	recoverAfter, stuckAfter, crashes int
	winrm                             string
	safeModeWinRM                     bool
	winrmWindow                       time.Duration // see ConditionSpec.WinRMWindowSeconds
	deleteDenied                      bool          // see ConditionSpec.DeleteDenied
}

type bitlocker struct {
	keyID    string
	key      secret.Secret
	escrowed bool
}

type file struct {
	name   string
	size   int64
	mod    time.Time
	header string
}

type content struct {
	sizeGB        int
	identity, bcd inventory.DiskIdentity
	bitlocker     *bitlocker
	files         []file
	safeBoot      bool
	hiveDamaged   bool
	// hostname is the computer name the Windows on this disk calls itself.
	hostname string
	// origin is the fleet VM whose original disk (or backup) this content
	// descends from; "" for a helper image's.
	origin string
	// unverified: the identity changed and no guest listing has shown it
	// back at the boot configuration's identity since (referee).
	unverified bool
	// written is the last instant a Windows up from this disk was seen
	// writing to it (noteWrites): a snapshot, and every disk made from
	// it, holds the writes up to its own.
	written time.Time
}

func (c content) clone() content {
	c.files = append([]file(nil), c.files...)
	if c.bitlocker != nil {
		b := *c.bitlocker
		c.bitlocker = &b
	}
	return c
}

type disk struct {
	id, zone, account string
	content
	tags    map[string]string
	source  string
	readyAt time.Time

	attachedTo string
	boot       bool
	busyUntil  time.Time
	busy       string
	// fails: the attach or detach under way ends in failure (Faults.
	// AsyncFailRate); a failed detach puts the disk back on from, as boot
	// disk if fromBoot.
	fails    bool
	from     string
	fromBoot bool

	// inside the host's OS (data disks only)
	number   int
	online   bool
	letter   string
	unlocked bool
}

type snapshot struct {
	id, diskID, zone, account string
	tags                      map[string]string
	takenAt, readyAt          time.Time
	content                   content
}

// Clock returns the clock the world reads.
func (w *World) Clock() clock.Clock { return w.clk }

// Incident returns the incident profile the world simulates.
func (w *World) Incident() inventory.Incident { return w.incident }

// Zones returns the world's zones.
func (w *World) Zones() []string { return append([]string(nil), w.zones...) }

// GuestUser returns the administrator user name the guests accept.
func (w *World) GuestUser() string { return w.user }

// GuestPassword returns the administrator password the guests accept (all
// but the bad-credentials VMs).
func (w *World) GuestPassword() secret.Secret { return w.password }

// UseFullCopySnapshots makes every later snapshot take as long as a first
// one: a face emulating a cloud whose snapshots are full copies (Sakura's
// archives) calls it once, before serving.
func (w *World) UseFullCopySnapshots() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fullCopies = true
}

// UsePerDiskSnapshots makes the first snapshot of a disk made from a
// snapshot a full one (Scenario.PerDiskSnapshots): a face emulating a
// cloud whose snapshot families are per disk (Azure) calls it once,
// before serving.
func (w *World) UsePerDiskSnapshots() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.perDiskSnaps = true
}

// UseZoneBoundSnapshots makes a snapshot make disks only in its own zone
// (Scenario.ZoneBoundSnapshots): a face emulating a cloud whose snapshots
// are zone resources (Sakura's archives) calls it once, before serving.
func (w *World) UseZoneBoundSnapshots() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.zoneBoundSnaps = true
}

// ConsoleAvailable reports whether Observe returns console text.
func (w *World) ConsoleAvailable() bool { return w.consoleAvailable }

// EscrowedKeys returns the recovery keys an operator's key store holds, by
// BitLocker key ID: the escrowed keys of every disk in the world.
func (w *World) EscrowedKeys() map[string]secret.Secret {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]secret.Secret{}
	for _, d := range w.disks {
		if b := d.bitlocker; b != nil && b.escrowed {
			out[b.keyID] = b.key
		}
	}
	return out
}

// keyHash hashes the world's seed and keys. Every random figure of a
// running world comes from such a hash, keyed by what it is about (a VM or
// disk, an operation, an attempt), never from a shared stream: the order in
// which goroutines reach the world cannot change any draw.
func (w *World) keyHash(keys ...any) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(w.seed))
	h.Write(b[:])
	for _, k := range keys {
		fmt.Fprint(h, "|", k)
	}
	// fnv's low bits mix poorly for short keys that differ at the end:
	// finish with a 64-bit mixer (splitmix64's).
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// hashDur draws a duration in r deterministically from the seed and keys.
func (w *World) hashDur(r timing.Range, keys ...any) time.Duration {
	span := int64(r.Max - r.Min)
	if span <= 0 {
		return r.Min
	}
	return r.Min + time.Duration(w.keyHash(keys...)%uint64(span+1))
}

// attempt returns the number of earlier draws of op for subject (0 for the
// first) and counts this one. Caller holds mu.
func (w *World) attempt(subject, op string) int {
	k := subject + "|" + op
	n := w.attempts[k]
	w.attempts[k] = n + 1
	return n
}

// drawFor draws the duration of subject's op in r, keyed by (seed,
// subject, op, attempt): the n-th stop of a VM takes the same time in every
// run of the seed, whatever else runs concurrently. Caller holds mu.
func (w *World) drawFor(r timing.Range, subject, op string) time.Duration {
	return w.hashDur(r, subject, op, w.attempt(subject, op))
}

// unit draws a number in [0, 1) from the seed and keys.
func (w *World) unit(keys ...any) float64 { return float64(w.keyHash(keys...)>>11) / (1 << 53) }

// keyedRand returns a generator seeded by the world's seed and keys.
func (w *World) keyedRand(keys ...any) *rand.Rand {
	return rand.New(rand.NewPCG(w.keyHash(keys...), 0x6b6579))
}

// newID returns a fresh ID like "snap-48213577" for a resource of prefix
// made from (or for) parent, keyed by (seed, prefix, parent, attempt).
// Caller holds mu.
func (w *World) newID(prefix, parent string) string {
	for {
		n := 10_000_000 + w.keyHash("id", prefix, parent, w.attempt(parent, "id:"+prefix))%90_000_000
		id := fmt.Sprintf("%s-%d", prefix, n)
		_, vm := w.vms[id]
		_, d := w.disks[id]
		_, s := w.snaps[id]
		if !vm && !d && !s {
			return id
		}
	}
}

func ipOf(n uint32) string {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}).String()
}

// allocIP returns a fresh private address, never .0 or .255.
func (w *World) allocIP() string {
	for {
		w.ipSeq++
		if b := byte(w.ipSeq); b == 0 || b == 255 {
			continue
		}
		ip := ipOf(w.ipSeq)
		if _, used := w.byIP[ip]; !used {
			return ip
		}
	}
}

func randIdentity(rng *rand.Rand, style inventory.PartitionStyle) inventory.DiskIdentity {
	if style == inventory.PartitionGPT {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		return inventory.DiskIdentity{Style: style, ID: strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))}
	}
	return inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: fmt.Sprintf("%08X", rng.Uint32()|1)}
}

func randRecoveryKey(rng *rand.Rand) string {
	parts := make([]string, 8)
	for i := range parts {
		// Real recovery-key groups are multiples of 11; keep that shape.
		parts[i] = fmt.Sprintf("%06d", rng.IntN(65536)*11)
	}
	return strings.Join(parts, "-")
}

func cloneTags(t map[string]string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// isOriginal reports whether d is some fleet VM's original OS disk.
func (w *World) isOriginal(d *disk) bool { return d.source == "" }

// imageFor returns the image of release in zone.
func (w *World) imageFor(zone, release string) (ImageSpec, bool) {
	for _, im := range w.images {
		if im.Zone == zone && im.Release == release {
			return im, true
		}
	}
	return ImageSpec{}, false
}

// RegionalImages makes the world's helper images regional, as a cloud
// whose images belong to a region does (an EC2 AMI launches in every zone
// of its region): every release with an image in some zone of a region
// gets one in each other zone of that region (same build and disk
// identity). regionOf names a zone's region. It returns how many images it
// added; deterministic (zones and images in the world's order).
func (w *World) RegionalImages(regionOf func(zone string) string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	have := map[string]bool{}
	for _, im := range w.images {
		have[im.ImageID] = true
	}
	added := 0
	for _, im := range slices.Clone(w.images) {
		for _, z := range w.zones {
			if z == im.Zone || regionOf(z) != regionOf(im.Zone) {
				continue
			}
			if _, ok := w.imageFor(z, im.Release); ok {
				continue
			}
			cp := im
			cp.Zone, cp.ImageID = z, im.ImageID+"-"+z
			for have[cp.ImageID] {
				cp.ImageID += "x"
			}
			have[cp.ImageID] = true
			w.images = append(w.images, cp)
			added++
		}
	}
	return added
}

// UseDiskSerials makes guests see each disk's serial number as f gives it
// from the world's disk ID: a face whose cloud shows disks under IDs of its
// own sets it, so that a guest's disk listing names disks as the cloud's
// API does (EC2 shows an EBS volume's ID to the guest). f must be pure and
// cheap (it is called with the world's lock held). Call it before serving.
func (w *World) UseDiskSerials(f func(diskID string) string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.serialOf = f
}

// serial is the serial number guests see on disk id. Caller holds mu.
func (w *World) serial(id string) string {
	if w.serialOf == nil {
		return id
	}
	return w.serialOf(id)
}

package world

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
)

// Mix is the share of each kind of VM in a generated fleet. Shares are
// weights: they need not add up to 100.
type Mix struct {
	Healthy        float64 `json:"healthy"`
	BootLoop       float64 `json:"boot-loop"`       // cycling: crash, reset, crash...
	Stuck          float64 `json:"stuck"`           // at the recovery screen
	SafeMode       float64 `json:"safe-mode"`       // safe mode with networking, bad file still there
	Stopped        float64 `json:"stopped"`         // powered off with the bad file
	WinRMBlocked   float64 `json:"winrm-blocked"`   // healthy, firewall blocks WinRM
	BadCredentials float64 `json:"bad-credentials"` // admin password differs (healthy or safe mode)
	// StoppedClean: powered off before the bad file was published, so its
	// disk never fetched it (not in the default mix).
	StoppedClean float64 `json:"stopped-clean"`
}

// DefaultMixSpec is the default fleet mix, in ParseMix's syntax.
const DefaultMixSpec = "healthy=35,boot-loop=30,stuck=10,safe-mode=10,stopped=3,winrm-blocked=7,bad-credentials=5"

// DefaultMix returns the default fleet mix.
func DefaultMix() Mix {
	m, err := ParseMix(DefaultMixSpec)
	if err != nil {
		panic(err) // a constant
	}
	return m
}

var mixTerms = []string{"healthy", "boot-loop", "stuck", "safe-mode", "stopped", "winrm-blocked", "bad-credentials", "stopped-clean"}

func (m *Mix) field(term string) *float64 {
	switch term {
	case "healthy":
		return &m.Healthy
	case "boot-loop":
		return &m.BootLoop
	case "stuck":
		return &m.Stuck
	case "safe-mode":
		return &m.SafeMode
	case "stopped":
		return &m.Stopped
	case "winrm-blocked":
		return &m.WinRMBlocked
	case "bad-credentials":
		return &m.BadCredentials
	case "stopped-clean":
		return &m.StoppedClean
	}
	return nil
}

// ParseMix parses "healthy=35,boot-loop=30,...": kinds left out get 0.
// Errors name the bad term and list the valid kinds.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		k, val, ok := strings.Cut(term, "=")
		k = strings.TrimSpace(k)
		f := m.field(k)
		switch {
		case !ok:
			return Mix{}, fmt.Errorf("mix: term %q: want kind=share, e.g. healthy=35", term)
		case f == nil:
			return Mix{}, fmt.Errorf("mix: term %q: unknown kind %q; kinds are %s", term, k, strings.Join(mixTerms, ", "))
		case seen[k]:
			return Mix{}, fmt.Errorf("mix: term %q: kind %q given twice", term, k)
		}
		seen[k] = true
		x, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
			return Mix{}, fmt.Errorf("mix: term %q: share %q must be a number >= 0", term, val)
		}
		*f = x
	}
	if m.total() <= 0 {
		return Mix{}, fmt.Errorf("mix: %q: at least one share must be above 0", s)
	}
	return m, nil
}

func (m Mix) total() float64 {
	t := 0.0
	for _, k := range mixTerms {
		t += *m.field(k)
	}
	return t
}

// String formats m in ParseMix's syntax.
func (m Mix) String() string {
	parts := make([]string, 0, len(mixTerms))
	for _, k := range mixTerms {
		if x := *m.field(k); x > 0 {
			parts = append(parts, k+"="+strconv.FormatFloat(x, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

// counts splits n VMs by the mix (largest remainder), in mixTerms order.
func (m Mix) counts(n int) []int {
	t := m.total()
	out := make([]int, len(mixTerms))
	type rem struct {
		i int
		r float64
	}
	var rems []rem
	left := n
	for i, k := range mixTerms {
		exact := float64(n) * *m.field(k) / t
		out[i] = int(exact)
		left -= out[i]
		rems = append(rems, rem{i, exact - float64(out[i])})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.r > b.r:
			return -1
		case a.r < b.r:
			return 1
		}
		return 0
	})
	for j := 0; j < left; j++ {
		out[rems[j%len(rems)].i]++
	}
	return out
}

// GenOptions say what world Generate makes.
type GenOptions struct {
	VMs  int   // number of fleet VMs (0 means 100)
	Seed int64 // same options and seed, same world
	Mix  Mix   // zero value means DefaultMix
	// Zones defaults to DefaultZones.
	Zones []string
	// Accounts spreads the VMs round-robin over these accounts (default
	// just "sim"); each is also its own tenant.
	Accounts []string
	// Origin is the scenario's "now" (default DefaultOrigin). Clock should
	// read Origin when Generate is called.
	Origin time.Time
	// Clock is the clock the world reads. Required.
	Clock clock.Clock
	// Faults defaults to simple throttling and calibrated latency, no
	// injected errors.
	Faults *Faults
	// NoConsole makes Observe report no console (ConsoleAvailable false).
	NoConsole bool
}

// DefaultFaults is the fault configuration of a generated world: calibrated
// latency, one request bucket per account, nothing failing.
func DefaultFaults() Faults { return Faults{Throttle: ThrottleSimple, Latency: 1} }

// Generate makes a world from options, deterministically: the same options
// and seed give the same world.
func Generate(opts GenOptions) (*World, error) {
	if opts.Clock == nil {
		return nil, errors.New("generate: Clock is required")
	}
	sc, err := GenerateScenario(opts)
	if err != nil {
		return nil, err
	}
	return Load(sc, opts.Clock)
}

// GenerateScenario makes a scenario from options, deterministically. Clock
// is not needed.
func GenerateScenario(opts GenOptions) (Scenario, error) {
	if opts.VMs == 0 {
		opts.VMs = 100
	}
	if opts.VMs < 0 || opts.VMs > 1_000_000 {
		return Scenario{}, fmt.Errorf("generate: VMs: %d must be 1-1000000", opts.VMs)
	}
	if opts.Mix.total() <= 0 {
		opts.Mix = DefaultMix()
	}
	if len(opts.Zones) == 0 {
		opts.Zones = DefaultZones
	}
	if len(opts.Accounts) == 0 {
		opts.Accounts = []string{DefaultAccount}
	}
	if opts.Origin.IsZero() {
		opts.Origin = DefaultOrigin
	}
	faults := DefaultFaults()
	if opts.Faults != nil {
		faults = opts.Faults.clone()
	}
	g := &gen{rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e4e)), now: opts.Origin.UTC(),
		inc: inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]}
	sc := Scenario{
		Version:          ScenarioVersion,
		Seed:             opts.Seed,
		Incident:         inventory.CrowdStrike20240719,
		Now:              g.now,
		Zones:            append([]string(nil), opts.Zones...),
		GuestAccess:      GuestAccessSpec{Username: "Administrator", Password: g.password()},
		ConsoleAvailable: !opts.NoConsole,
		Faults:           faults,
	}
	// One stock image identity per release, replicated in every zone;
	// the first release is missing in the last zone.
	relIdentity := map[string]inventory.DiskIdentity{}
	for _, r := range calib.Releases {
		relIdentity[r.Release] = g.identity(inventory.PartitionStyle(r.Style))
	}
	for zi, z := range opts.Zones {
		for ri, r := range calib.Releases {
			if ri == 0 && zi == len(opts.Zones)-1 {
				continue
			}
			sc.Images = append(sc.Images, ImageSpec{Zone: z, Release: r.Release, Build: r.Build,
				ImageID: "img-win" + r.Release + "-" + z, Identity: relIdentity[r.Release]})
		}
	}
	// Kinds, shuffled deterministically.
	var kinds []string
	for i, c := range opts.Mix.counts(opts.VMs) {
		for range c {
			kinds = append(kinds, mixTerms[i])
		}
	}
	g.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var ip uint32
	for i, kind := range kinds {
		n := i + 1
		for ip++; byte(ip) == 0 || byte(ip) == 255; ip++ {
		}
		acct := opts.Accounts[i%len(opts.Accounts)]
		vs := g.vm(n, kind, opts.Zones, relIdentity)
		vs.Tenant, vs.Account, vs.PrivateIP = acct, acct, ipOf(ip)
		sc.VMs = append(sc.VMs, vs)
	}
	return sc, nil
}

type gen struct {
	rng *rand.Rand
	now time.Time
	inc inventory.Incident
}

func (g *gen) password() string {
	const chars = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%+="
	b := make([]byte, 20)
	for i := range b {
		b[i] = chars[g.rng.IntN(len(chars))]
	}
	return string(b)
}

func (g *gen) identity(style inventory.PartitionStyle) inventory.DiskIdentity {
	return randIdentity(g.rng, style)
}

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

func (g *gen) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(g.rng.Int64N(int64(hi-lo)+1))
}

// recoverAfter draws the boot on which a looping VM fetches the fixed file:
// geometric with p = timing.NaturalRecoveryPerBoot, never past the cap.
func (g *gen) recoverAfter() int {
	p := timing.NaturalRecoveryPerBoot
	k := 1 + int(math.Floor(math.Log(1-g.rng.Float64())/math.Log(1-p)))
	if k > calib.NaturalRecoveryCap {
		return 0
	}
	return k
}

var roles = []string{"web", "app", "db", "file", "sql", "rds", "batch", "iis"}

func (g *gen) vm(n int, kind string, zones []string, relIdentity map[string]inventory.DiskIdentity) VMSpec {
	rel := calib.Releases[len(calib.Releases)-1]
	x := g.rng.Float64()
	for _, r := range calib.Releases {
		if x < r.Share {
			rel = r
			break
		}
		x -= r.Share
	}
	role := roles[g.rng.IntN(len(roles))]
	env := "prod"
	if g.chance(0.2) {
		env = "stg"
	}
	vs := VMSpec{
		ID:      fmt.Sprintf("vm-%05d", n),
		Name:    fmt.Sprintf("%s-%05d", role, n),
		Zone:    zones[g.rng.IntN(len(zones))],
		Tags:    map[string]string{"role": role, "env": env},
		Windows: inventory.WindowsVersion{Release: rel.Release, Build: rel.Build},
	}
	d := &DiskSpec{ID: fmt.Sprintf("disk-%05d", n)}
	d.SizeGB = []int{40, 60, 80, 100}[g.rng.IntN(4)]
	if g.chance(calib.ShareImageIdentity) {
		d.Identity = relIdentity[rel.Release]
	} else {
		d.Identity = g.identity(inventory.PartitionStyle(rel.Style))
	}
	if g.chance(calib.ShareBitLocker) {
		d.BitLocker = &BitLockerSpec{KeyID: randIdentity(g.rng, inventory.PartitionGPT).ID, RecoveryKey: randRecoveryKey(g.rng), Escrowed: g.chance(calib.ShareEscrowed)}
	}
	vs.OSDisk = d
	switch x := g.rng.Float64(); {
	case x < calib.ShareDailyBackup:
		for day := 2; day >= 0; day-- {
			t := time.Date(2024, 7, 19-day, 0, 0, 0, 0, time.UTC)
			vs.Backups = append(vs.Backups, BackupSpec{ID: fmt.Sprintf("bk-%05d-%d", n, 3-day), Kind: "archive", TakenAt: t, SizeGB: d.SizeGB})
		}
	case x < calib.ShareDailyBackup+calib.ShareBadWindowBackup:
		vs.Backups = []BackupSpec{{ID: fmt.Sprintf("bk-%05d-1", n), Kind: "archive",
			TakenAt: time.Date(2024, 7, 19, 4, 30, 0, 0, time.UTC), SizeGB: d.SizeGB}}
	}

	g.strike(&vs, d, n, kind)
	return vs
}

// strike gives VM number n (disk d) the condition and files of kind (a
// mix term): healthy, looping, stuck, in safe mode, stopped (with the bad
// file, or switched off before it was published), or with WinRM blocked or
// bad credentials.
func (g *gen) strike(vsp *VMSpec, d *DiskSpec, n int, kind string) {
	vs := vsp
	bad := FileSpec{Name: badFileName, Size: fileSize, ModTime: g.inc.BadFrom, Header: g.inc.Header}
	good := FileSpec{Name: badFileName, Size: fileSize, ModTime: g.inc.BadUntil.Add(g.between(0, 45*time.Minute)).Truncate(time.Second), Header: goodHeader}
	// The rest of a real sensor directory, side by side with the channel
	// file: an older version of the same channel file (it matches the
	// incident's glob but predates the window), other channel files, the
	// sensor's drivers; affected disks of every fourth VM also hold a fixed
	// (05:27+) copy under the next version's name, fetched before the bad
	// one crashed the machine. A repair must keep all of them.
	others := otherFiles(g.inc)
	fixed := FileSpec{Name: fixedFileName, Size: fileSize, ModTime: good.ModTime, Header: goodHeader}
	vs.Condition.WinRM = WinRMOpen
	// Decided by the VM's number, not the generator, so that the rest of
	// the fleet stays as it was drawn.
	vs.Condition.SafeModeWinRM = float64(n%100) < 100*calib.ShareSafeModeWinRM
	vs.Power = inventory.PowerRunning
	affected := func() []FileSpec {
		fs := append([]FileSpec{bad}, others...)
		if n%4 == 0 {
			fs = append(fs, fixed)
		}
		return fs
	}
	healthy := func() {
		vs.LastBootAt = g.now.Add(-g.between(time.Hour, 30*24*time.Hour)).Truncate(time.Second)
		if g.chance(0.85) {
			d.Files = append([]FileSpec{good}, others...)
		}
	}
	safe := func() {
		vs.LastBootAt = g.now.Add(-g.between(10*time.Minute, time.Hour)).Truncate(time.Second)
		d.Files, d.SafeBootFlag = affected(), true
	}
	looping := func() {
		d.Files = affected()
		vs.Condition.RecoverAfterBoots = g.recoverAfter()
		d.HiveDamaged = g.chance(calib.ShareHiveDamaged)
	}
	switch kind {
	case "healthy":
		healthy()
	case "winrm-blocked":
		healthy()
		vs.Condition.WinRM = WinRMBlocked
	case "bad-credentials":
		if g.chance(0.5) {
			healthy()
		} else {
			safe()
		}
		vs.Condition.WinRM = WinRMBadCredentials
	case kindBadCredentialsSafe:
		safe()
		vs.Condition.WinRM = WinRMBadCredentials
	case kindBadCredentialsHealthy:
		healthy()
		vs.Condition.WinRM = WinRMBadCredentials
	case "safe-mode":
		safe()
	case "boot-loop", "stopped":
		looping()
		// Somewhere in its current crash cycle (every cycle is >= 90 s).
		vs.LastBootAt = g.now.Add(-g.between(0, 85*time.Second)).Truncate(time.Second)
		if g.chance(calib.ShareCyclingSticks) {
			vs.Condition.Crashes = g.rng.IntN(3)
			vs.Condition.StuckAfterCrashes = vs.Condition.Crashes + 3 + g.rng.IntN(6)
		}
		if kind == "stopped" {
			vs.Power = inventory.PowerStopped
			vs.LastBootAt = g.now.Add(-g.between(30*time.Minute, 2*time.Hour)).Truncate(time.Second)
		}
	case "stopped-clean":
		// Switched off before 04:09 UTC: the sensor directory holds only
		// what it held before the incident.
		d.Files = others
		vs.Power = inventory.PowerStopped
		vs.LastBootAt = g.now.Add(-g.between(24*time.Hour, 30*24*time.Hour)).Truncate(time.Second)
	case "stuck":
		looping()
		k := calib.StuckAfter[0] + g.rng.IntN(calib.StuckAfter[1]-calib.StuckAfter[0]+1)
		vs.Condition.StuckAfterCrashes, vs.Condition.Crashes = k, k
		vs.LastBootAt = g.now.Add(-g.between(5*time.Minute, 2*time.Hour)).Truncate(time.Second)
	}
}

// otherFiles are the files of a sensor directory besides the incident's
// channel file, all from before the incident: none of them is bad.
func otherFiles(inc inventory.Incident) []FileSpec {
	before := inc.BadFrom.Truncate(24 * time.Hour)
	return []FileSpec{
		{Name: "C-00000291-00000000-00000031.sys", Size: fileSize, ModTime: before.Add(-20 * time.Hour), Header: oldHeader},
		{Name: "C-00000285-00000000-00000002.sys", Size: 7680, ModTime: before.Add(-9 * 24 * time.Hour), Header: "AAAAAAAA01000501"},
		{Name: "C-00000290-00000000-00000097.sys", Size: 2244, ModTime: before.Add(-2 * 24 * time.Hour), Header: "AAAAAAAA01009701"},
		{Name: "csagent.sys", Size: 1_542_536, ModTime: before.Add(-30 * 24 * time.Hour), Header: "4D5A90000300000004000000FFFF0000"},
	}
}

// A bad-credentials VM in safe mode, or healthy: the mix's bad-credentials
// kind draws one of the two; a copy of a fleet keeps which.
const (
	kindBadCredentialsSafe    = "bad-credentials-safe"
	kindBadCredentialsHealthy = "bad-credentials-healthy"
)

// Strike gives vs, whose OS disk is set, the condition, boot and files of
// kind (a mix term) under the incident profile named incident, as Generate
// would for VM number n, drawing from seed: how a copy of a real fleet is
// put into an incident (fixfleet sim from-inventory). It keeps vs's ID,
// name, tags, zone, release, disk and backups.
func Strike(vs *VMSpec, n int, kind, incident string, now time.Time, seed int64) error {
	inc, ok := inventory.BuiltinIncidents()[incident]
	if !ok {
		return fmt.Errorf("incident %q is not a built-in profile", incident)
	}
	if !slices.Contains(mixTerms, kind) && kind != kindBadCredentialsSafe && kind != kindBadCredentialsHealthy {
		return fmt.Errorf("kind %q: kinds are %s", kind, strings.Join(mixTerms, ", "))
	}
	if vs.OSDisk == nil {
		return fmt.Errorf("vm %s: no OS disk", vs.ID)
	}
	g := &gen{rng: rand.New(rand.NewPCG(uint64(seed), uint64(n))), now: now.UTC(), inc: inc}
	g.strike(vs, vs.OSDisk, n, kind)
	return nil
}

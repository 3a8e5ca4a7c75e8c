// Package azureapi is the simulated world's Azure face: a loopback HTTPS
// emulator of the subset of Azure Resource Manager's Microsoft.Compute API
// (and the one Microsoft.Network read) that fixfleet's Azure provider
// calls, answered from a world.World.
//
// One world, many faces: the same world the in-process sim provider acts on
// is served here, so that providers/azure, with the real azure-sdk-for-go
// clients (armcompute, azcore), is tested over HTTP against it. azcore
// sends bearer tokens only over TLS, so the emulator serves HTTPS with a
// certificate generated at start; Server.Client trusts it.
//
// Mapping:
//   - Each world account is one subscription, whose ID SubscriptionID
//     derives from the account name; every resource of the world lives in
//     one resource group (Options.ResourceGroup). Any non-empty bearer
//     token is accepted; a request without one is refused (401).
//   - World zones must be named "<location>-<zone>" ("japaneast-1"): the
//     location is the ARM location, the suffix the availability zone.
//   - World VM, disk, snapshot and image IDs are the ARM resource names.
//     Resources a client creates (PUT with a name of its choosing: helpers,
//     disks, snapshots) keep that name; the world's own ID behind it is
//     found with WorldID, and ARMID maps a world ID back.
//   - A VM's OS disk cannot be detached: a PATCH that changes
//     storageProfile.osDisk.managedDisk.id swaps it (world.SwapBootDisk) on
//     a deallocated VM; data disks change through attachDetachDataDisks.
//     The disk's Hyper-V generation and security type must match the VM's.
//   - Long-running operations answer 201/202 with Azure-AsyncOperation and
//     Location headers; the operation succeeds when the world's change
//     completes on its clock.
//   - ARM's subscription token buckets (reads, writes, deletes; see
//     ARMBuckets) answer 429 with Retry-After and report what is left in
//     x-ms-ratelimit-remaining-subscription-reads/-writes/-deletes. The
//     world's own fault gate still applies to every world call (its
//     throttle model, latency, 5xx, dropped connections before or after the
//     change, outages), and its counters still count.
//   - Boot diagnostics: retrieveBootDiagnosticsData returns SAS-style blob
//     URIs on the emulator; the serial log is the world's console text.
//
// Not served (a clear 501): Run Command, and the console screenshot image.
package azureapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Options tune the emulator.
type Options struct {
	// ResourceGroup is the one resource group of every subscription
	// (default "fleet").
	ResourceGroup string
	// PageSize is how many resources one list page holds (default 50).
	PageSize int
	// NoThrottle turns the emulator's own ARM token buckets off (the
	// world's throttle model still applies).
	NoThrottle bool
	// TrustedLaunch lists the world VM IDs created with trusted launch
	// (securityProfile.securityType TrustedLaunch); disks copied from
	// their OS disks inherit it.
	TrustedLaunch []string
	// StoppedAllocated lists world VM IDs that are powered off but still
	// allocated ("VM stopped", as after a shutdown from inside the guest)
	// while the world has them stopped; the others stopped are
	// deallocated.
	StoppedAllocated []string
}

// Bucket is an ARM token bucket: Size requests at most, Refill per second.
type Bucket struct {
	Size   int
	Refill float64
}

// ARMBuckets are Azure Resource Manager's per-subscription, per-region
// token buckets (Microsoft Learn, "Understand how Azure Resource Manager
// throttles requests", token bucket algorithm, 2024): reads 250 with 25
// per second, writes 200 with 10 per second, deletes 200 with 10 per second.
var ARMBuckets = map[string]Bucket{
	"reads":   {Size: 250, Refill: 25},
	"writes":  {Size: 200, Refill: 10},
	"deletes": {Size: 200, Refill: 10},
}

// Stats are the emulator's counters.
type Stats struct {
	// Calls counts requests per operation ("VirtualMachines.ListAll",
	// "Disks.CreateOrUpdate", "Operations.Get", ...), refused ones too.
	Calls map[string]int `json:"calls"`
	// Throttled counts 429 answers; Errors other error answers; Dropped
	// connections closed without an answer (the world's drop faults).
	Throttled int `json:"throttled"`
	Errors    int `json:"errors"`
	Dropped   int `json:"dropped"`
}

// Server is a running emulator.
type Server struct {
	w    *world.World
	opts Options
	ln   net.Listener
	srv  *http.Server
	cert *x509.Certificate
	once sync.Once

	mu         sync.Mutex
	stats      Stats
	subs       map[string]string // subscription ID -> world account
	byName     map[string]string // kind/sub/lower(name) -> world ID (created resources)
	nameOf     map[string]string // world ID -> ARM name (created resources)
	ops        map[string]operation
	seq        int
	buckets    map[string]*rate.Limiter // sub/bucket
	security   map[string]string        // world VM or disk ID -> security type
	poweredOff map[string]bool          // world VM IDs powered off but still allocated
	diag       map[string]diagTarget    // boot-diagnostics SAS token -> VM
}

type operation struct {
	account string
	until   time.Time
}

type diagTarget struct{ account, vm string }

// Start serves the emulator of w over HTTPS on listen, which must be a
// loopback address ("127.0.0.1:0", "[::1]:8783", "localhost:8783"), with a
// certificate for 127.0.0.1, ::1 and localhost generated now, until Close.
func Start(w *world.World, listen string, opts Options) (*Server, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("azureapi: listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("azureapi: listen address %q: the emulator serves loopback only (127.0.0.1, ::1, localhost)", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("azureapi: %w", err)
	}
	s, err := Serve(w, ln, opts)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return s, nil
}

// Serve serves the emulator of w over HTTPS on ln (loopback TCP, or an
// in-memory listener: internal/memnet), with a certificate generated now
// for 127.0.0.1, ::1, localhost and ln's own host name, until Close
// (which closes ln).
func Serve(w *world.World, ln net.Listener, opts Options) (*Server, error) {
	s, err := New(w, opts)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("azureapi: listener address %q: %w", ln.Addr(), err)
	}
	tc, leaf, err := selfSigned(host)
	if err != nil {
		return nil, fmt.Errorf("azureapi: certificate: %w", err)
	}
	s.cert, s.ln = leaf, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{tc}, MinVersion: tls.VersionTLS12})
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = s.srv.Serve(s.ln) }()
	return s, nil
}

// New returns an emulator of w that is not listening: serve it as an
// http.Handler (Start does). It fails if a world zone is not named
// "<location>-<zone>".
func New(w *world.World, opts Options) (*Server, error) {
	for _, z := range w.Zones() {
		if _, _, ok := splitZone(z); !ok {
			return nil, fmt.Errorf("azureapi: world zone %q is not named <location>-<zone> (e.g. japaneast-1); generate the world with Azure zone names", z)
		}
	}
	if opts.ResourceGroup == "" {
		opts.ResourceGroup = "fleet"
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	s := &Server{w: w, opts: opts, stats: Stats{Calls: map[string]int{}}, subs: map[string]string{},
		byName: map[string]string{}, nameOf: map[string]string{}, ops: map[string]operation{},
		buckets: map[string]*rate.Limiter{}, security: map[string]string{}, poweredOff: map[string]bool{},
		diag: map[string]diagTarget{}}
	w.UsePerDiskSnapshots() // a managed disk's first incremental snapshot is a full copy
	for _, a := range w.Accounts() {
		s.subs[SubscriptionID(a)] = a
	}
	for _, id := range opts.StoppedAllocated {
		s.poweredOff[id] = true
	}
	for _, id := range opts.TrustedLaunch {
		s.security[id] = securityTrustedLaunch
		for _, a := range w.Accounts() {
			if f, ok := w.VMFacts(a, id); ok && f.BootDisk != "" {
				s.security[f.BootDisk] = securityTrustedLaunch
			}
		}
	}
	return s, nil
}

// SubscriptionID is the subscription ID (a GUID) the emulator gives world
// account a; stable, derived from its name.
func SubscriptionID(a string) string {
	h := fnv.New128a()
	_, _ = h.Write([]byte(a))
	b := h.Sum(nil)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// splitZone splits a world zone "japaneast-1" into location and zone.
func splitZone(z string) (location, zone string, ok bool) {
	i := strings.LastIndexByte(z, '-')
	if i <= 0 || i == len(z)-1 {
		return "", "", false
	}
	return z[:i], z[i+1:], true
}

// URL is the resource manager endpoint to give the SDK (the
// cloud.Configuration's ResourceManager endpoint).
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() }

// CertPool trusts the emulator's certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.cert)
	return p
}

// Client is an HTTP client that trusts the emulator's certificate (and
// only it), to give the SDK as its transport.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}}}
}

// Close stops the server at once. Idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		if s.srv != nil {
			err = s.srv.Close()
		}
	})
	return err
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Calls = maps.Clone(s.stats.Calls)
	return out
}

// WorldID returns the world ID behind an ARM resource ID the emulator
// served, or "" if it names none.
func (s *Server) WorldID(armID string) string {
	seg := strings.Split(strings.Trim(armID, "/"), "/")
	if len(seg) != 8 {
		return ""
	}
	return s.resolve(seg[6], seg[1], seg[7])
}

// ARMID returns the ARM resource ID under which the emulator shows world
// resource worldID ("vm-00001", "helper-00060", "disk-00001", "snap-00070",
// "img-…") of the world account's subscription.
func (s *Server) ARMID(account, worldID string) string {
	return s.armID(SubscriptionID(account), kindOf(worldID), worldID)
}

// kindOf is the ARM resource type of a world ID, by its prefix.
func kindOf(worldID string) string {
	switch {
	case strings.HasPrefix(worldID, "disk-"):
		return kindDisks
	case strings.HasPrefix(worldID, "snap-"):
		return kindSnapshots
	case strings.HasPrefix(worldID, "img-"):
		return kindImages
	}
	return kindVMs
}

// ARM resource types served.
const (
	kindVMs       = "virtualMachines"
	kindDisks     = "disks"
	kindSnapshots = "snapshots"
	kindImages    = "images"
)

func (s *Server) armID(sub, kind, worldID string) string {
	s.mu.Lock()
	name, ok := s.nameOf[worldID]
	s.mu.Unlock()
	if !ok {
		name = worldID
	}
	return "/subscriptions/" + sub + "/resourceGroups/" + s.opts.ResourceGroup + "/providers/Microsoft.Compute/" + kind + "/" + name
}

// resolve returns the world ID of the ARM resource kind/name in sub.
func (s *Server) resolve(kind, sub, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byName[strings.ToLower(kind+"/"+sub+"/"+name)]; ok {
		return id
	}
	if _, created := s.nameOf[name]; created {
		return "" // a created resource is addressed by its ARM name only
	}
	return name
}

// adopt records that the client named world resource id "name".
func (s *Server) adopt(kind, sub, name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byName[strings.ToLower(kind+"/"+sub+"/"+name)] = id
	s.nameOf[id] = name
}

// selfSigned makes a TLS certificate for the loopback names and host
// (a name or an IP address).
func selfSigned(host string) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "fixfleet azureapi emulator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}

package azure

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

type (
	enumerator core
	observer   core
	guests     core
)

// List lists the account's Windows VMs in its locations and zones, with
// ListAll per subscription (paged), their power states from a second
// ListAll with statusOnly, and their private addresses from one list of
// the subscription's network interfaces. VMs fixfleet created (tagged with a run) are
// left out. Read-only.
func (e *enumerator) List(ctx context.Context) ([]inventory.VM, error) {
	k := (*core)(e)
	var out []inventory.VM
	for _, sid := range k.order {
		s := k.subs[strings.ToLower(sid)]
		vms, err := listAll(ctx, k, s, nil)
		if err != nil {
			return nil, err
		}
		status, err := listAll(ctx, k, s, to.Ptr("true"))
		if err != nil {
			return nil, err
		}
		ips, err := k.privateIPs(ctx, s)
		if err != nil {
			return nil, err
		}
		powers := map[string]inventory.PowerState{}
		for _, v := range status {
			if v.ID != nil && v.Properties != nil {
				powers[strings.ToLower(*v.ID)] = powerOf(v.Properties.InstanceView)
			}
		}
		for _, v := range vms {
			iv, ok := k.inventoryVM(v)
			if !ok {
				continue
			}
			if ip := ips[strings.ToLower(iv.ID)]; ip != "" {
				iv.NICs = []inventory.NIC{{Name: "primary", PrivateIP: ip}}
			}
			iv.Power = powers[strings.ToLower(iv.ID)]
			if iv.Power == "" {
				iv.Power = inventory.PowerUnknown
			}
			out = append(out, iv)
		}
	}
	slices.SortFunc(out, func(a, b inventory.VM) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// listAll pages through VirtualMachines.ListAll of one subscription.
func listAll(ctx context.Context, k *core, s *subscription, statusOnly *string) ([]*armcompute.VirtualMachine, error) {
	var out []*armcompute.VirtualMachine
	err := pages(ctx, k, s, "List", s.vms.NewListAllPager(&armcompute.VirtualMachinesClientListAllOptions{StatusOnly: statusOnly}),
		func(page armcompute.VirtualMachinesClientListAllResponse) error {
			out = append(out, page.Value...)
			return nil
		})
	return out, err
}

// inventoryVM turns a listed VM into the model; ok is false for VMs out
// of scope (not Windows, fixfleet's own, another location or zone).
func (k *core) inventoryVM(v *armcompute.VirtualMachine) (inventory.VM, bool) {
	if v.ID == nil || v.Properties == nil || v.Location == nil {
		return inventory.VM{}, false
	}
	if _, ours := v.Tags[providers.TagRun]; ours {
		return inventory.VM{}, false
	}
	sp := v.Properties.StorageProfile
	if sp == nil || sp.OSDisk == nil || sp.OSDisk.OSType == nil || *sp.OSDisk.OSType != armcompute.OperatingSystemTypesWindows {
		return inventory.VM{}, false
	}
	zone := zoneOf(*v.Location, v.Zones)
	if len(k.acct.Regions) > 0 && !slices.Contains(k.acct.Regions, *v.Location) {
		return inventory.VM{}, false
	}
	if len(k.acct.Zones) > 0 && !slices.Contains(k.acct.Zones, zone) {
		return inventory.VM{}, false
	}
	out := inventory.VM{
		Location: inventory.Location{Tenant: k.acct.Tenant, Account: k.acct.Name, Provider: Name, Region: *v.Location, Zone: zone},
		ID:       *v.ID, Name: str(v.Name), Tags: tags(v.Tags), Power: inventory.PowerUnknown,
		Windows: windowsFromImage(sp.ImageReference),
	}
	if d := sp.OSDisk; d.ManagedDisk != nil && d.ManagedDisk.ID != nil {
		out.OSDisk = inventory.Disk{ID: *d.ManagedDisk.ID, Device: "0"}
		if d.DiskSizeGB != nil {
			out.OSDisk.SizeGB = int(*d.DiskSizeGB)
		}
	}
	if iv := v.Properties.InstanceView; iv != nil && out.Windows.Release == "" {
		out.Windows = windowsFromOS(str(iv.OSName), str(iv.OSVersion))
	}
	return out, true
}

// zoneOf is the fleet.yaml zone of a location and zone list
// ("japaneast", ["1"] -> "japaneast-1"; no zone: the location).
func zoneOf(location string, zones []*string) string {
	if len(zones) == 0 || zones[0] == nil {
		return location
	}
	return location + "-" + *zones[0]
}

func tags(t map[string]*string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = str(v)
	}
	return out
}

func azTags(t providers.Tags) map[string]*string {
	out := make(map[string]*string, len(t))
	for k, v := range t {
		out[k] = to.Ptr(v)
	}
	return out
}

var (
	skuRE  = regexp.MustCompile(`^(20\d\d)(-r2)?\b`)
	nameRE = regexp.MustCompile(`Windows Server (20\d\d)( R2)?`)
)

// windowsFromImage reads the release from a marketplace image reference
// (offer WindowsServer, SKU "2019-datacenter-gensecond" -> 2019) and the
// build from its exact version ("17763.5936.240607"-> 17763.5936).
func windowsFromImage(r *armcompute.ImageReference) inventory.WindowsVersion {
	if r == nil || !strings.HasPrefix(strings.ToLower(str(r.Offer)), "windowsserver") {
		return inventory.WindowsVersion{}
	}
	m := skuRE.FindStringSubmatch(strings.ToLower(str(r.SKU)))
	if m == nil {
		return inventory.WindowsVersion{}
	}
	w := inventory.WindowsVersion{Release: m[1]}
	if m[2] != "" {
		w.Release += " R2"
	}
	if v := str(r.ExactVersion); v != "" {
		parts := strings.Split(v, ".")
		w.Build = strings.Join(parts[:min(2, len(parts))], ".")
	}
	return w
}

// windowsFromOS reads the release from the instance view's OS name
// ("Windows Server 2019 Datacenter") and the build from its version.
func windowsFromOS(name, version string) inventory.WindowsVersion {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return inventory.WindowsVersion{}
	}
	w := inventory.WindowsVersion{Release: m[1] + m[2], Build: version}
	if parts := strings.Split(version, "."); len(parts) == 4 && parts[0] == "10" { // 10.0.17763.5936
		w.Build = parts[2] + "." + parts[3]
	}
	return w
}

// powerOf reads the power state from an instance view's statuses.
func powerOf(iv *armcompute.VirtualMachineInstanceView) inventory.PowerState {
	if iv == nil {
		return inventory.PowerUnknown
	}
	for _, st := range iv.Statuses {
		code, ok := strings.CutPrefix(str(st.Code), "PowerState/")
		if !ok {
			continue
		}
		switch code {
		case "running":
			return inventory.PowerRunning
		case "starting":
			return inventory.PowerStarting
		case "stopping", "deallocating":
			return inventory.PowerStopping
		case "stopped", "deallocated":
			return inventory.PowerStopped
		}
	}
	return inventory.PowerUnknown
}

// powerCode is the raw PowerState code ("deallocated", "stopped", ...).
func powerCode(iv *armcompute.VirtualMachineInstanceView) string {
	if iv != nil {
		for _, st := range iv.Statuses {
			if code, ok := strings.CutPrefix(str(st.Code), "PowerState/"); ok {
				return code
			}
		}
	}
	return ""
}

// agentReady tells whether the VM agent reports Ready: the guest is up
// and talking to the platform.
func agentReady(iv *armcompute.VirtualMachineInstanceView) bool {
	if iv == nil || iv.VMAgent == nil {
		return false
	}
	for _, st := range iv.VMAgent.Statuses {
		if str(st.DisplayStatus) == "Ready" {
			return true
		}
	}
	return false
}

// getVM reads a VM (with its instance view when view is set).
func (k *core) getVM(ctx context.Context, op, id string, view bool) (*armcompute.VirtualMachine, *subscription, error) {
	r, s, err := k.resolve(op, id, "virtualMachines")
	if err != nil {
		return nil, nil, err
	}
	var opts *armcompute.VirtualMachinesClientGetOptions
	if view {
		opts = &armcompute.VirtualMachinesClientGetOptions{Expand: to.Ptr(armcompute.InstanceViewTypesInstanceView)}
	}
	var vm armcompute.VirtualMachine
	err = k.do(ctx, s, bucketReads, op, id, func(ctx context.Context) error {
		resp, err := s.vms.Get(ctx, r.group, r.name, opts)
		vm = resp.VirtualMachine
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &vm, s, nil
}

// Observe reads each VM's instance view (power state, VM agent status) and,
// for a running VM whose agent is not Ready, its boot diagnostics serial
// log through RetrieveBootDiagnosticsData's SAS URI. Azure keeps no boot
// count. VMs not found are left out. Read-only.
func (o *observer) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	k := (*core)(o)
	out := map[string]inventory.Signals{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(k.opts.Concurrency)
	for _, ref := range vms {
		g.Go(func() error {
			sig, err := k.observe(gctx, ref)
			if errors.Is(err, providers.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			out[ref.ID] = sig
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

func (k *core) observe(ctx context.Context, ref providers.VMRef) (inventory.Signals, error) {
	vm, s, err := k.getVM(ctx, "Observe", ref.ID, true)
	if err != nil {
		return inventory.Signals{}, err
	}
	var iv *armcompute.VirtualMachineInstanceView
	diag := false
	if vm.Properties != nil {
		iv = vm.Properties.InstanceView
		if dp := vm.Properties.DiagnosticsProfile; dp != nil && dp.BootDiagnostics != nil {
			diag = flag(dp.BootDiagnostics.Enabled)
		}
	}
	sig := inventory.Signals{At: k.clk.Now(), Power: powerOf(iv), ConsoleAvailable: diag}
	ready := agentReady(iv)
	if sig.Power == inventory.PowerRunning {
		sig.InstanceReachable = to.Ptr(ready)
	}
	if diag && sig.Power == inventory.PowerRunning && !ready {
		sig.Console, err = k.serialLog(ctx, s, ref.ID)
		if err != nil {
			return sig, err
		}
	}
	return sig, nil
}

// serialLog fetches the tail of a VM's boot diagnostics serial log. The
// SAS URI is a secret of sorts (it grants read access): it is never put in
// an error or a log.
func (k *core) serialLog(ctx context.Context, s *subscription, id string) (string, error) {
	r, _ := parseID(id)
	var uri string
	err := k.do(ctx, s, bucketWrites, "RetrieveBootDiagnosticsData", id, func(ctx context.Context) error {
		resp, err := s.vms.RetrieveBootDiagnosticsData(ctx, r.group, r.name, &armcompute.VirtualMachinesClientRetrieveBootDiagnosticsDataOptions{SasURIExpirationTimeInMinutes: to.Ptr[int32](5)})
		uri = str(resp.SerialConsoleLogBlobURI)
		return err
	})
	if err != nil || uri == "" {
		return "", err
	}
	const tail = 8 << 10
	b, err := k.readBlob(ctx, "SerialLog", id, uri, 4<<20)
	if err != nil {
		return "", err
	}
	return string(b[max(0, len(b)-tail):]), nil
}

// GuestEndpoint returns the VM's primary private address, port 5985, read
// from its primary network interface. Errors: ErrNotFound; ErrUnsupported
// when the VM has no private address.
func (gs *guests) GuestEndpoint(ctx context.Context, ref providers.VMRef) (providers.Endpoint, error) {
	k := (*core)(gs)
	vm, s, err := k.getVM(ctx, "GuestEndpoint", ref.ID, false)
	if err != nil {
		return providers.Endpoint{}, err
	}
	var nic string
	if vm.Properties != nil && vm.Properties.NetworkProfile != nil {
		for i, n := range vm.Properties.NetworkProfile.NetworkInterfaces {
			if n.ID != nil && (i == 0 || (n.Properties != nil && flag(n.Properties.Primary))) {
				nic = *n.ID
			}
		}
	}
	if nic == "" {
		return providers.Endpoint{}, providers.Errorf(providers.ErrUnsupported, "GuestEndpoint", ref.ID, "the VM has no network interface")
	}
	var n nicResource
	if err := k.armGet(ctx, s, "GuestEndpoint", ref.ID, runtime.JoinPaths(s.arm.Endpoint(), nic), &n); err != nil {
		return providers.Endpoint{}, err
	}
	if ip := n.privateIP(); ip != "" {
		return providers.Endpoint{Host: ip, Port: providers.WinRMPort}, nil
	}
	return providers.Endpoint{}, providers.Errorf(providers.ErrUnsupported, "GuestEndpoint", ref.ID, "its network interface has no private address")
}

// ListedEndpoint implements endpointcache.Listed: List gives each VM its
// primary network interface's private address, as GuestEndpoint reads it.
func (*guests) ListedEndpoint(vm inventory.VM) (providers.Endpoint, bool) {
	return providers.ListedPrivateEndpoint(vm)
}

// networkAPIVersion is the Microsoft.Network API version of the two NIC
// reads (the provider needs no network SDK for them).
const networkAPIVersion = "2024-05-01"

// nicResource is what the provider reads of a network interface.
type nicResource struct {
	Properties struct {
		Primary        bool `json:"primary"`
		VirtualMachine *struct {
			ID string `json:"id"`
		} `json:"virtualMachine"`
		IPConfigurations []struct {
			Properties struct {
				Primary          bool   `json:"primary"`
				PrivateIPAddress string `json:"privateIPAddress"`
			} `json:"properties"`
		} `json:"ipConfigurations"`
	} `json:"properties"`
}

// privateIP is the primary IP configuration's private address.
func (n nicResource) privateIP() string {
	for i, c := range n.Properties.IPConfigurations {
		if c.Properties.PrivateIPAddress != "" && (i == 0 || c.Properties.Primary) {
			return c.Properties.PrivateIPAddress
		}
	}
	return ""
}

// armGet GETs an ARM URL (api-version added when missing) into out.
func (k *core) armGet(ctx context.Context, s *subscription, op, res, url string, out any) error {
	return k.do(ctx, s, bucketReads, op, res, func(ctx context.Context) error {
		req, err := runtime.NewRequest(ctx, http.MethodGet, url)
		if err != nil {
			return err
		}
		if q := req.Raw().URL.Query(); q.Get("api-version") == "" {
			q.Set("api-version", networkAPIVersion)
			req.Raw().URL.RawQuery = q.Encode()
		}
		resp, err := s.arm.Pipeline().Do(req)
		if err != nil {
			return err
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			return runtime.NewResponseError(resp)
		}
		return runtime.UnmarshalAsJSON(resp, out)
	})
}

// privateIPs maps each VM of the subscription (lower-case ID) to its
// primary NIC's private address, from one paged list of the network
// interfaces.
func (k *core) privateIPs(ctx context.Context, s *subscription) (map[string]string, error) {
	out := map[string]string{}
	next := runtime.JoinPaths(s.arm.Endpoint(), "/subscriptions/"+s.id+"/providers/Microsoft.Network/networkInterfaces")
	for next != "" {
		var page struct {
			Value    []nicResource `json:"value"`
			NextLink string        `json:"nextLink"`
		}
		if err := k.armGet(ctx, s, "List", "subscription "+s.id, next, &page); err != nil {
			return nil, err
		}
		for _, n := range page.Value {
			if vm := n.Properties.VirtualMachine; vm != nil && n.Properties.Primary {
				if ip := n.privateIP(); ip != "" {
					out[strings.ToLower(vm.ID)] = ip
				}
			}
		}
		next = page.NextLink
	}
	return out, nil
}

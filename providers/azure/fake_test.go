package azure_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8/fake"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/azure"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// The second check: the provider against armcompute's own fake server
// handlers (written by the SDK's authors, no HTTP), for the calls whose
// wire shape matters most: paged ListAll, instance view, power pollers,
// the OS-disk swap update, and a 429 retried after its wait.

const (
	fakeSub  = "11111111-2222-3333-4444-555555555555"
	fakeRG   = "/subscriptions/" + fakeSub + "/resourceGroups/prod/providers/Microsoft.Compute/"
	fakeVM   = fakeRG + "virtualMachines/web01"
	fakeOS   = fakeRG + "disks/web01-os"
	fakeCopy = fakeRG + "disks/web01-os-copy"
	fakeGen1 = fakeRG + "disks/old-gen1"
)

// networkRoute answers the provider's two Microsoft.Network reads (the fake
// package serves Microsoft.Compute only) and passes the rest to the fake.
type networkRoute struct{ next policy.Transporter }

func (n networkRoute) Do(req *http.Request) (*http.Response, error) {
	if !strings.Contains(req.URL.Path, "/Microsoft.Network/") {
		return n.next.Do(req)
	}
	body := `{"value":[{"id":"/subscriptions/` + fakeSub + `/resourceGroups/prod/providers/Microsoft.Network/networkInterfaces/web01-nic",
		"properties":{"primary":true,"virtualMachine":{"id":"` + fakeVM + `"},"ipConfigurations":[{"properties":{"primary":true,"privateIPAddress":"10.1.2.3"}}]}}]}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func vmModel(id, osType string, t map[string]*string) *armcompute.VirtualMachine {
	return &armcompute.VirtualMachine{ID: to.Ptr(id), Name: to.Ptr(id[strings.LastIndexByte(id, '/')+1:]), Location: to.Ptr("japaneast"),
		Zones: []*string{to.Ptr("2")}, Tags: t,
		Properties: &armcompute.VirtualMachineProperties{StorageProfile: &armcompute.StorageProfile{
			ImageReference: &armcompute.ImageReference{Publisher: to.Ptr("MicrosoftWindowsServer"), Offer: to.Ptr("WindowsServer"),
				SKU: to.Ptr("2019-datacenter-gensecond"), ExactVersion: to.Ptr("17763.5936.240607")},
			OSDisk: &armcompute.OSDisk{OSType: to.Ptr(armcompute.OperatingSystemTypes(osType)), ManagedDisk: &armcompute.ManagedDiskParameters{ID: to.Ptr(fakeOS)}},
		}}}
}

func view(power string) *armcompute.VirtualMachineInstanceView {
	return &armcompute.VirtualMachineInstanceView{HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypeV2),
		Statuses: []*armcompute.InstanceViewStatus{{Code: to.Ptr("ProvisioningState/succeeded")}, {Code: to.Ptr("PowerState/" + power)}},
		VMAgent:  &armcompute.VirtualMachineAgentInstanceView{Statuses: []*armcompute.InstanceViewStatus{{DisplayStatus: to.Ptr("Ready")}}}}
}

type fakeCloud struct {
	power        string
	powerOffSkip atomic.Bool
	deallocs     atomic.Int32
	updates      []armcompute.VirtualMachineUpdate
	diskGets     atomic.Int32
	throttleOnce atomic.Bool
}

func (f *fakeCloud) factory() *fake.ServerFactory {
	disk := func(id string, gen armcompute.HyperVGeneration) armcompute.Disk {
		return armcompute.Disk{ID: to.Ptr(id), Name: to.Ptr(id[strings.LastIndexByte(id, '/')+1:]), Location: to.Ptr("japaneast"),
			Zones: []*string{to.Ptr("2")}, Properties: &armcompute.DiskProperties{HyperVGeneration: to.Ptr(gen), DiskSizeGB: to.Ptr[int32](127)}}
	}
	return &fake.ServerFactory{
		VirtualMachinesServer: fake.VirtualMachinesServer{
			NewListAllPager: func(o *armcompute.VirtualMachinesClientListAllOptions) (resp azfake.PagerResponder[armcompute.VirtualMachinesClientListAllResponse]) {
				win, linux := vmModel(fakeVM, "Windows", map[string]*string{"app": to.Ptr("web")}), vmModel(fakeRG+"virtualMachines/db01", "Linux", nil)
				helper := vmModel(fakeRG+"virtualMachines/fixfleet-helper-1", "Windows", map[string]*string{providers.TagRun: to.Ptr("r1")})
				if o != nil && o.StatusOnly != nil {
					win.Properties.InstanceView = view(f.power)
				}
				resp.AddPage(200, armcompute.VirtualMachinesClientListAllResponse{VirtualMachineListResult: armcompute.VirtualMachineListResult{Value: []*armcompute.VirtualMachine{win}}}, nil)
				resp.AddPage(200, armcompute.VirtualMachinesClientListAllResponse{VirtualMachineListResult: armcompute.VirtualMachineListResult{Value: []*armcompute.VirtualMachine{linux, helper}}}, nil)
				return
			},
			Get: func(_ context.Context, rg, name string, o *armcompute.VirtualMachinesClientGetOptions) (resp azfake.Responder[armcompute.VirtualMachinesClientGetResponse], errResp azfake.ErrorResponder) {
				if name != "web01" {
					errResp.SetResponseError(404, "ResourceNotFound")
					return
				}
				vm := vmModel(fakeVM, "Windows", nil)
				if o != nil && o.Expand != nil {
					vm.Properties.InstanceView = view(f.power)
				}
				resp.SetResponse(200, armcompute.VirtualMachinesClientGetResponse{VirtualMachine: *vm}, nil)
				return
			},
			BeginPowerOff: func(_ context.Context, _, _ string, o *armcompute.VirtualMachinesClientBeginPowerOffOptions) (resp azfake.PollerResponder[armcompute.VirtualMachinesClientPowerOffResponse], errResp azfake.ErrorResponder) {
				f.powerOffSkip.Store(o != nil && o.SkipShutdown != nil && *o.SkipShutdown)
				resp.AddNonTerminalResponse(202, nil)
				resp.SetTerminalResponse(200, armcompute.VirtualMachinesClientPowerOffResponse{}, nil)
				return
			},
			BeginDeallocate: func(context.Context, string, string, *armcompute.VirtualMachinesClientBeginDeallocateOptions) (resp azfake.PollerResponder[armcompute.VirtualMachinesClientDeallocateResponse], errResp azfake.ErrorResponder) {
				f.deallocs.Add(1)
				f.power = "deallocated"
				resp.AddNonTerminalResponse(202, nil)
				resp.AddNonTerminalResponse(202, nil)
				resp.SetTerminalResponse(200, armcompute.VirtualMachinesClientDeallocateResponse{}, nil)
				return
			},
			BeginUpdate: func(_ context.Context, _, _ string, u armcompute.VirtualMachineUpdate, _ *armcompute.VirtualMachinesClientBeginUpdateOptions) (resp azfake.PollerResponder[armcompute.VirtualMachinesClientUpdateResponse], errResp azfake.ErrorResponder) {
				f.updates = append(f.updates, u)
				resp.AddNonTerminalResponse(200, nil)
				resp.SetTerminalResponse(200, armcompute.VirtualMachinesClientUpdateResponse{VirtualMachine: *vmModel(fakeVM, "Windows", nil)}, nil)
				return
			},
		},
		DisksServer: fake.DisksServer{
			Get: func(_ context.Context, _, name string, _ *armcompute.DisksClientGetOptions) (resp azfake.Responder[armcompute.DisksClientGetResponse], errResp azfake.ErrorResponder) {
				f.diskGets.Add(1)
				if !f.throttleOnce.Swap(true) {
					errResp.SetResponseError(429, "TooManyRequests")
					return
				}
				switch name {
				case "web01-os-copy":
					resp.SetResponse(200, armcompute.DisksClientGetResponse{Disk: disk(fakeCopy, armcompute.HyperVGenerationV2)}, nil)
				case "old-gen1":
					resp.SetResponse(200, armcompute.DisksClientGetResponse{Disk: disk(fakeGen1, armcompute.HyperVGenerationV1)}, nil)
				default:
					errResp.SetResponseError(404, "ResourceNotFound")
				}
				return
			},
		},
		ImagesServer: fake.ImagesServer{
			NewListPager: func(*armcompute.ImagesClientListOptions) (resp azfake.PagerResponder[armcompute.ImagesClientListResponse]) {
				resp.AddPage(200, armcompute.ImagesClientListResponse{}, nil)
				return
			},
		},
	}
}

func openFake(t *testing.T, f *fakeCloud) *providers.Provider {
	t.Helper()
	a := account(t, "fake", fakeSub)
	conn := azure.Connection{Credential: &azfake.TokenCredential{}, Transport: networkRoute{fake.NewServerFactoryTransport(f.factory())}}
	p, err := azure.OpenWith(t.Context(), a, providers.Env{Clock: world.NewManualClock(world.DefaultOrigin)}, conn)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFakeListAndObserve(t *testing.T) {
	p := openFake(t, &fakeCloud{power: "running"})
	vms, err := p.Enumerator.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 1 {
		t.Fatalf("List = %+v, want only the Windows fleet VM (not the Linux one, not fixfleet's helper)", vms)
	}
	v := vms[0]
	want := inventory.WindowsVersion{Release: "2019", Build: "17763.5936"}
	if v.ID != fakeVM || v.Zone != "japaneast-2" || v.Region != "japaneast" || v.Windows != want || v.Power != inventory.PowerRunning ||
		v.OSDisk.ID != fakeOS || v.Tags["app"] != "web" || len(v.NICs) != 1 || v.NICs[0].PrivateIP != "10.1.2.3" {
		t.Errorf("List = %+v", v)
	}
	sig, err := p.Observer.Observe(t.Context(), []providers.VMRef{providers.Ref(v), {ID: fakeRG + "virtualMachines/gone"}})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := sig[fakeVM]; !ok || s.Power != inventory.PowerRunning || s.InstanceReachable == nil || !*s.InstanceReachable || len(sig) != 1 {
		t.Errorf("Observe = %+v, want web01 running and reachable, the missing VM left out", sig)
	}
}

func TestFakeStopAndSwap(t *testing.T) {
	f := &fakeCloud{power: "running"}
	p := openFake(t, f)
	ctx := t.Context()
	vm := providers.VMRef{ID: fakeVM}
	if err := p.Power.Stop(ctx, []providers.VMRef{vm}, true); err != nil {
		t.Fatal(err)
	}
	if !f.powerOffSkip.Load() || f.deallocs.Load() != 1 {
		t.Errorf("forced Stop: power off without shutdown %v, deallocations %d; want both", f.powerOffSkip.Load(), f.deallocs.Load())
	}
	sw := p.Disks.(providers.OSDiskSwapper)
	// The first disk read is throttled (429): the provider waits and retries.
	if err := sw.SwapOSDisk(ctx, vm, providers.DiskRef{ID: fakeCopy}); err != nil {
		t.Fatal(err)
	}
	if n := f.diskGets.Load(); n != 2 {
		t.Errorf("disk reads = %d, want 2 (one throttled, one retried)", n)
	}
	if len(f.updates) != 1 || str(f.updates[0].Properties.StorageProfile.OSDisk.ManagedDisk.ID) != fakeCopy {
		t.Fatalf("updates = %+v, want one setting the OS disk to %s", f.updates, fakeCopy)
	}
	err := sw.SwapOSDisk(ctx, vm, providers.DiskRef{ID: fakeGen1})
	var mm *providers.BootMismatchError
	if !errors.Is(err, providers.ErrPermanent) || !errors.As(err, &mm) || mm.VM != "V2" || mm.Disk != "V1" {
		t.Errorf("swap to a Gen1 disk on a Gen2 VM: %v, want a hyperVGeneration mismatch", err)
	}
	if len(f.updates) != 1 {
		t.Errorf("a refused swap sent an update")
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

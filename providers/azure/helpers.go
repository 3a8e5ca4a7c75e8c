package azure

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// Tags on the managed images helpers are made from (see
// docs/providers/azure.md): the Windows release is required; the build and
// a zone (when the image is meant for one zone only) are optional.
const (
	TagImageRelease = "fixfleet-windows-release"
	TagImageBuild   = "fixfleet-windows-build"
	TagImageZone    = "fixfleet-zone"
)

type helpers core

func (h *helpers) helperSub() *subscription {
	return h.subs[strings.ToLower(h.opts.HelperSubscription)]
}

// zones are the account's zones in a location ("<location>-1..3" when the
// account names none).
func (k *core) zonesIn(location string) []string {
	var out []string
	for _, z := range k.acct.Zones {
		if l, _, _ := SplitZone(z); l == location {
			out = append(out, z)
		}
	}
	if len(k.acct.Zones) == 0 {
		for _, n := range []string{"1", "2", "3"} {
			out = append(out, location+"-"+n)
		}
	}
	return out
}

// Images lists the managed images of the helper subscription tagged with a
// Windows release, in every zone of the account in their location (or
// only the zone of their fixfleet-zone tag). Read-only.
func (h *helpers) Images(ctx context.Context) ([]providers.HelperImage, error) {
	k := (*core)(h)
	s := h.helperSub()
	var out []providers.HelperImage
	err := pages(ctx, k, s, "Images", s.imgs.NewListPager(nil), func(page armcompute.ImagesClientListResponse) error {
		for _, im := range page.Value {
			rel := str(im.Tags[TagImageRelease])
			if rel == "" || im.ID == nil {
				continue
			}
			zones := k.zonesIn(str(im.Location))
			if z := str(im.Tags[TagImageZone]); z != "" {
				zones = nil
				if loc, _, ok := SplitZone(z); ok && loc == str(im.Location) {
					zones = []string{z}
				}
			}
			for _, z := range zones {
				out = append(out, providers.HelperImage{Region: str(im.Location), Zone: z, ImageID: *im.ID,
					Windows: inventory.WindowsVersion{Release: rel, Build: str(im.Tags[TagImageBuild])}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Acquire returns a running helper of release win in zone carrying all
// tags: one found by its tags (started if stopped), else a new VM from a
// helper image, in the helper subscription's resource group, with its NIC
// in Options.HelperSubnets[location] and its OS disk and NIC deleted with
// it. The new VM's name derives from zone, release and tags, so a repeated
// create after an unknown outcome finds the first. Idempotent by tags.
func (h *helpers) Acquire(ctx context.Context, zone string, win inventory.WindowsVersion, t providers.Tags) (providers.VMRef, error) {
	k := (*core)(h)
	s := h.helperSub()
	res := fmt.Sprintf("helper (Windows Server %s in %s)", win.Release, zone)
	loc, z, ok := SplitZone(zone)
	if !ok {
		return providers.VMRef{}, providers.Errorf(providers.ErrPermanent, "Acquire", res, "zone %q is not <location>-<zone>", zone)
	}
	want := maps.Clone(t)
	if want == nil {
		want = providers.Tags{}
	}
	want[TagImageRelease] = win.Release
	vms, err := listAll(ctx, k, s, nil)
	if err != nil {
		return providers.VMRef{}, err
	}
	for _, v := range vms {
		if hasTags(v.Tags, want) && str(v.Location) == loc && zoneOf(loc, v.Zones) == zone {
			ref := providers.VMRef{ID: str(v.ID), Region: loc, Zone: zone, Name: str(v.Name)}
			return ref, (*power)(k).Start(ctx, []providers.VMRef{ref})
		}
	}
	ims, err := h.Images(ctx)
	if err != nil {
		return providers.VMRef{}, err
	}
	var image string
	var have []string
	for _, im := range ims {
		if im.Zone != zone {
			continue
		}
		have = append(have, im.Windows.Release)
		if im.Windows.Release == win.Release {
			image = im.ImageID
		}
	}
	if image == "" {
		slices.Sort(have)
		return providers.VMRef{}, providers.Errorf(providers.ErrNotFound, "Acquire", res, "no helper image of Windows Server %s for zone %s (releases there: %s); tag a managed image %s=%s",
			win.Release, zone, strings.Join(have, ", "), TagImageRelease, win.Release)
	}
	vm, err := k.helperVM(loc, z, image, want)
	if err != nil {
		return providers.VMRef{}, err
	}
	n := name("fixfleet-helper-", append([]string{zone, win.Release}, tagParts(want)...)...)
	vm.Properties.OSProfile.ComputerName = to.Ptr("ffh" + n[len(n)-12:])
	nic := n + "-nic"
	vm.Properties.NetworkProfile.NetworkInterfaceConfigurations[0].Name = to.Ptr(nic)
	got, err := await(ctx, k, s, bucketWrites, "Acquire", res, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientCreateOrUpdateResponse], error) {
		return s.vms.BeginCreateOrUpdate(ctx, k.opts.ResourceGroup, n, *vm, nil)
	})
	if err != nil {
		return providers.VMRef{}, err
	}
	return providers.VMRef{ID: str(got.ID), Region: loc, Zone: zone, Name: n}, nil
}

// FindHelpers returns the helpers in the helper subscription that carry
// all tags, in any power state: the run's helpers an earlier, killed
// process created, for the helper pool to release at the end of the run.
// Read-only.
func (h *helpers) FindHelpers(ctx context.Context, tags providers.Tags) ([]providers.VMRef, error) {
	k := (*core)(h)
	vms, err := listAll(ctx, k, h.helperSub(), nil)
	if err != nil {
		return nil, err
	}
	var out []providers.VMRef
	for _, v := range vms {
		if hasTags(v.Tags, tags) {
			loc := str(v.Location)
			out = append(out, providers.VMRef{ID: str(v.ID), Region: loc, Zone: zoneOf(loc, v.Zones), Name: str(v.Name)})
		}
	}
	return out, nil
}

// helperVM is the definition of a new helper. The administrator password
// is read from the environment variable the options name.
func (k *core) helperVM(loc, zone, image string, t providers.Tags) (*armcompute.VirtualMachine, error) {
	subnet := k.opts.HelperSubnets[loc]
	if subnet == "" {
		return nil, providers.Errorf(providers.ErrPermanent, "Acquire", "location "+loc, "options.helper_subnets has no subnet for %s; give the subnet helpers join (WinRM 5985 reachable from fixfleet)", loc)
	}
	if k.opts.HelperPasswordEnv == "" {
		return nil, providers.Errorf(providers.ErrPermanent, "Acquire", "location "+loc, "options.helper_admin_user and helper_password_env are needed to create helpers")
	}
	pw := k.getenv(k.opts.HelperPasswordEnv)
	if pw == "" {
		return nil, providers.Errorf(providers.ErrPermanent, "Acquire", "location "+loc, "environment variable %s (options.helper_password_env) is empty", k.opts.HelperPasswordEnv)
	}
	del := to.Ptr(armcompute.DeleteOptionsDelete)
	return &armcompute.VirtualMachine{
		Location: to.Ptr(loc), Zones: []*string{to.Ptr(zone)}, Tags: azTags(t),
		Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypes(k.opts.HelperVMSize))},
			StorageProfile: &armcompute.StorageProfile{
				ImageReference: &armcompute.ImageReference{ID: to.Ptr(image)},
				OSDisk: &armcompute.OSDisk{CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage),
					DeleteOption: to.Ptr(armcompute.DiskDeleteOptionTypesDelete), OSType: to.Ptr(armcompute.OperatingSystemTypesWindows),
					ManagedDisk: &armcompute.ManagedDiskParameters{StorageAccountType: to.Ptr(armcompute.StorageAccountTypesPremiumLRS)}},
			},
			OSProfile: &armcompute.OSProfile{AdminUsername: to.Ptr(k.opts.HelperAdminUser), AdminPassword: to.Ptr(pw),
				WindowsConfiguration: &armcompute.WindowsConfiguration{ProvisionVMAgent: to.Ptr(true)}},
			NetworkProfile: &armcompute.NetworkProfile{
				NetworkAPIVersion: to.Ptr(armcompute.NetworkAPIVersionTwoThousandTwenty1101),
				NetworkInterfaceConfigurations: []*armcompute.VirtualMachineNetworkInterfaceConfiguration{{
					Properties: &armcompute.VirtualMachineNetworkInterfaceConfigurationProperties{
						Primary: to.Ptr(true), DeleteOption: del,
						IPConfigurations: []*armcompute.VirtualMachineNetworkInterfaceIPConfiguration{{
							Name:       to.Ptr("ipconfig1"),
							Properties: &armcompute.VirtualMachineNetworkInterfaceIPConfigurationProperties{Subnet: &armcompute.SubResource{ID: to.Ptr(subnet)}},
						}},
					},
				}},
			},
			DiagnosticsProfile: &armcompute.DiagnosticsProfile{BootDiagnostics: &armcompute.BootDiagnostics{Enabled: to.Ptr(true)}},
		},
	}, nil
}

// Release deletes helper h with its OS disk and NIC and waits. It refuses
// (ErrConflict) while a data disk is attached, or for a VM fixfleet did
// not create (no run tag). A helper already gone is fine.
func (h *helpers) Release(ctx context.Context, ref providers.VMRef) error {
	k := (*core)(h)
	v, s, err := k.getVM(ctx, "Release", ref.ID, false)
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ours := v.Tags[providers.TagRun]; !ours {
		return providers.Errorf(providers.ErrPermanent, "Release", ref.ID, "not a fixfleet helper (no %s tag); only helpers are ever deleted", providers.TagRun)
	}
	if dd := dataDiskIDs(v); len(dd) > 0 {
		return providers.Errorf(providers.ErrConflict, "Release", ref.ID, "disks still attached: %s; detach them first", strings.Join(dd, ", "))
	}
	r, _ := parseID(ref.ID)
	_, err = await(ctx, k, s, bucketDeletes, "Release", ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientDeleteResponse], error) {
		return s.vms.BeginDelete(ctx, r.group, r.name, nil)
	})
	return err
}

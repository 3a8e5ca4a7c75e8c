package aws

import (
	"time"

	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// Tags fixfleet adds on helpers.
const (
	roleHelper = "helper"
	tagWindows = "fixfleet-windows"
)

var (
	amiNameRE  = regexp.MustCompile(`^Windows_Server-(\d{4}(?:-R2)?)-`)
	buildRE    = regexp.MustCompile(`\(build ([0-9.]+)\)`)
	ssmNameRE  = regexp.MustCompile(`Windows Server (\d{4}(?: R2)?)`)
	dataDevice = "fghijklmnop" // /dev/xvdf../dev/xvdp: EC2's recommended Windows data devices
)

func powerOf(i ec2types.Instance) inventory.PowerState {
	if i.State == nil {
		return inventory.PowerUnknown
	}
	switch i.State.Name {
	case ec2types.InstanceStateNameRunning:
		return inventory.PowerRunning
	case ec2types.InstanceStateNamePending:
		return inventory.PowerStarting
	case ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameShuttingDown:
		return inventory.PowerStopping
	case ec2types.InstanceStateNameStopped:
		return inventory.PowerStopped
	}
	return inventory.PowerUnknown
}

// rootVolume returns the volume at the instance's root device ("" if none).
func rootVolume(i ec2types.Instance) (vol string, attaching bool) {
	for _, m := range i.BlockDeviceMappings {
		if sdk.ToString(m.DeviceName) == sdk.ToString(i.RootDeviceName) && m.Ebs != nil {
			return sdk.ToString(m.Ebs.VolumeId), m.Ebs.Status == ec2types.AttachmentStatusAttaching
		}
	}
	return "", false
}

func zoneOf(i ec2types.Instance) string {
	if i.Placement == nil {
		return ""
	}
	return sdk.ToString(i.Placement.AvailabilityZone)
}

func ids(vms []providers.VMRef) []string {
	out := make([]string, len(vms))
	for i, v := range vms {
		out[i] = v.ID
	}
	return out
}

func vmList(ids []string) string {
	if len(ids) > 10 {
		return strings.Join(ids[:10], ", ") + fmt.Sprintf(" and %d more", len(ids)-10)
	}
	return strings.Join(ids, ", ")
}

// byRegion groups VM refs by region.
func (c *core) byRegion(op string, vms []providers.VMRef) (map[*regional][]providers.VMRef, error) {
	out := map[*regional][]providers.VMRef{}
	for _, v := range vms {
		rg, err := c.region(op, "vm "+v.String(), firstNonEmpty(v.Region, v.Zone))
		if err != nil {
			return nil, err
		}
		out[rg] = append(out[rg], v)
	}
	return out, nil
}

// releaseOf parses a Windows release from an AMI name or SSM platform name.
func releaseOf(amiName, ssmName string) string {
	if m := amiNameRE.FindStringSubmatch(amiName); m != nil {
		return strings.ReplaceAll(m[1], "-", "")
	}
	if m := ssmNameRE.FindStringSubmatch(ssmName); m != nil {
		return strings.ReplaceAll(m[1], " ", "")
	}
	return ""
}

type enumerator struct{ *core }

// List implements providers.Enumerator: Windows instances (not terminated,
// not fixfleet's helpers) in the account's regions and zones, with their
// Windows release (AMI name, else SSM's platform name), root volume and
// the completed snapshots of it as backups.
func (e enumerator) List(ctx context.Context) ([]inventory.VM, error) {
	var out []inventory.VM
	for _, r := range e.order {
		rg := e.regions[r]
		fs := []ec2types.Filter{filter("platform", "windows"), filter("instance-state-name", "pending", "running", "stopping", "stopped")}
		if zs := e.zonesIn(r); len(zs) > 0 {
			fs = append(fs, filter("availability-zone", zs...))
		}
		is, err := e.describeInstances(ctx, rg, "List", "account "+e.acct.Name+" in "+r, nil, fs...)
		if err != nil {
			return nil, err
		}
		is = slices.DeleteFunc(is, func(i ec2types.Instance) bool { return tagMap(i.Tags)[providers.TagRole] == roleHelper })
		vms, err := e.inventory(ctx, rg, is)
		if err != nil {
			return nil, err
		}
		out = append(out, vms...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (c *core) zonesIn(region string) []string {
	var out []string
	for _, z := range c.acct.Zones {
		if RegionOf(z) == region {
			out = append(out, z)
		}
	}
	return out
}

// inventory turns instances of one region into inventory VMs.
func (c *core) inventory(ctx context.Context, rg *regional, is []ec2types.Instance) ([]inventory.VM, error) {
	res := "account " + c.acct.Name + " in " + rg.region
	var images, roots []string
	for _, i := range is {
		if im := sdk.ToString(i.ImageId); im != "" && !slices.Contains(images, im) {
			images = append(images, im)
		}
		if v, _ := rootVolume(i); v != "" {
			roots = append(roots, v)
		}
	}
	imgs, err := c.describeImages(ctx, rg, "List", res, images, nil)
	if err != nil {
		return nil, err
	}
	vols, err := c.describeVolumes(ctx, rg, "List", res, roots)
	if err != nil {
		return nil, err
	}
	snaps, err := c.describeSnapshots(ctx, rg, "List", res, filter("status", "completed"), roots)
	if err != nil {
		return nil, err
	}
	var noRelease []string
	win := map[string]inventory.WindowsVersion{}
	for _, i := range is {
		id := sdk.ToString(i.InstanceId)
		if im, ok := imgs[sdk.ToString(i.ImageId)]; ok {
			if rel := releaseOf(sdk.ToString(im.Name), ""); rel != "" {
				v := inventory.WindowsVersion{Release: rel}
				if m := buildRE.FindStringSubmatch(sdk.ToString(im.Description)); m != nil {
					v.Build = m[1]
				}
				win[id] = v
				continue
			}
		}
		noRelease = append(noRelease, id)
	}
	if len(noRelease) > 0 && !c.opts.NoSSM {
		info, err := c.ssmInfo(ctx, rg, "List", res, noRelease)
		if err := c.ssmHint(ctx, "List", err); err != nil {
			return nil, err
		}
		for id, x := range info {
			if rel := releaseOf("", sdk.ToString(x.PlatformName)); rel != "" {
				win[id] = inventory.WindowsVersion{Release: rel}
			}
		}
	}
	var out []inventory.VM
	for _, i := range is {
		id := sdk.ToString(i.InstanceId)
		tags := tagMap(i.Tags)
		name := tags["Name"]
		if name == "" {
			name = id
		}
		vm := inventory.VM{
			Location: inventory.Location{Tenant: c.acct.Tenant, Account: c.acct.Name, Provider: Name, Region: rg.region, Zone: zoneOf(i)},
			ID:       id, Name: name, Tags: tags, Windows: win[id], Power: powerOf(i),
		}
		if ip := sdk.ToString(i.PrivateIpAddress); ip != "" {
			vm.NICs = []inventory.NIC{{Name: "eth0", PrivateIP: ip, PublicIP: sdk.ToString(i.PublicIpAddress)}}
		}
		if root, _ := rootVolume(i); root != "" {
			vm.OSDisk = inventory.Disk{ID: root, Device: sdk.ToString(i.RootDeviceName)}
			if v, ok := vols[root]; ok {
				vm.OSDisk.SizeGB = int(sdk.ToInt32(v.Size))
			}
			for _, s := range snaps {
				if sdk.ToString(s.VolumeId) == root {
					vm.Backups = append(vm.Backups, backupOf(id, s))
				}
			}
		}
		out = append(out, vm)
	}
	return out, nil
}

func backupOf(vm string, s ec2types.Snapshot) inventory.Backup {
	kind := "snapshot"
	if strings.Contains(sdk.ToString(s.Description), "CreateImage(") {
		kind = "image"
	}
	return inventory.Backup{ID: sdk.ToString(s.SnapshotId), VMID: vm, Kind: kind, TakenAt: sdk.ToTime(s.StartTime), SizeGB: int(sdk.ToInt32(s.VolumeSize))}
}

// describeImages returns images by ID (an image-id filter: deregistered
// ones are simply absent) and/or extra filters.
func (c *core) describeImages(ctx context.Context, rg *regional, op, res string, ids []string, fs []ec2types.Filter, owners ...string) (map[string]ec2types.Image, error) {
	out := map[string]ec2types.Image{}
	run := func(fs []ec2types.Filter) error {
		var page *ec2.DescribeImagesOutput
		err := c.call(ctx, rg, bucketNonMutating, op, res, func(ctx context.Context) (err error) {
			page, err = rg.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: fs, Owners: owners})
			return err
		})
		if err != nil {
			return err
		}
		for _, im := range page.Images {
			out[sdk.ToString(im.ImageId)] = im
		}
		return nil
	}
	if len(ids) == 0 {
		if len(fs) == 0 {
			return out, nil
		}
		return out, run(fs)
	}
	for _, ch := range chunks(ids, maxFilterValues) {
		if err := run(append([]ec2types.Filter{filter("image-id", ch...)}, fs...)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// describeVolumes returns volumes by ID (a volume-id filter), or all those
// matching fs when ids is nil.
func (c *core) describeVolumes(ctx context.Context, rg *regional, op, res string, ids []string, fs ...ec2types.Filter) (map[string]ec2types.Volume, error) {
	out := map[string]ec2types.Volume{}
	run := func(fs []ec2types.Filter) error {
		in := &ec2.DescribeVolumesInput{Filters: fs, MaxResults: sdk.Int32(500)}
		bucket := bucketNonMutating
		if len(fs) == 0 {
			bucket = bucketUnfiltered
		}
		for {
			var page *ec2.DescribeVolumesOutput
			err := c.call(ctx, rg, bucket, op, res, func(ctx context.Context) (err error) {
				page, err = rg.ec2.DescribeVolumes(ctx, in)
				return err
			})
			if err != nil {
				return err
			}
			for _, v := range page.Volumes {
				out[sdk.ToString(v.VolumeId)] = v
			}
			if sdk.ToString(page.NextToken) == "" {
				return nil
			}
			in.NextToken = page.NextToken
		}
	}
	if ids == nil {
		return out, run(fs)
	}
	for _, ch := range chunks(ids, maxFilterValues) {
		if err := run(append([]ec2types.Filter{filter("volume-id", ch...)}, fs...)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// describeSnapshots returns the account's own snapshots matching f, and of
// volumes vols when given.
func (c *core) describeSnapshots(ctx context.Context, rg *regional, op, res string, f ec2types.Filter, vols []string, more ...ec2types.Filter) ([]ec2types.Snapshot, error) {
	var out []ec2types.Snapshot
	run := func(fs []ec2types.Filter) error {
		in := &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: fs, MaxResults: sdk.Int32(1000)}
		for {
			var page *ec2.DescribeSnapshotsOutput
			err := c.call(ctx, rg, bucketNonMutating, op, res, func(ctx context.Context) (err error) {
				page, err = rg.ec2.DescribeSnapshots(ctx, in)
				return err
			})
			if err != nil {
				return err
			}
			out = append(out, page.Snapshots...)
			if sdk.ToString(page.NextToken) == "" {
				return nil
			}
			in.NextToken = page.NextToken
		}
	}
	base := append([]ec2types.Filter{f}, more...)
	if vols == nil {
		return out, run(base)
	}
	for _, ch := range chunks(vols, maxFilterValues) {
		if err := run(append([]ec2types.Filter{filter("volume-id", ch...)}, base...)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ssmHint decides what an SSM error means for op: SSM is only a hint (a
// release, a ping), so any error but the caller's own cancellation is
// logged as a warning and op goes on without SSM's signal (nil).
func (c *core) ssmHint(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	c.log.Warn("SSM's signal is missing; going on without it", "account", c.acct.Name, "op", op, "error", err)
	return nil
}

// ssmInfo returns SSM's view of instances (those with an agent).
func (c *core) ssmInfo(ctx context.Context, rg *regional, op, res string, ids []string) (map[string]ssmtypes.InstanceInformation, error) {
	out := map[string]ssmtypes.InstanceInformation{}
	for _, ch := range chunks(ids, 50) {
		in := &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{{Key: sdk.String("InstanceIds"), Values: ch}}}
		for {
			var page *ssm.DescribeInstanceInformationOutput
			err := c.call(ctx, rg, bucketSSM, op, res, func(ctx context.Context) (err error) {
				page, err = rg.ssm.DescribeInstanceInformation(ctx, in)
				return err
			})
			if err != nil {
				return out, err
			}
			for _, x := range page.InstanceInformationList {
				out[sdk.ToString(x.InstanceId)] = x
			}
			if sdk.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	return out, nil
}

type observer struct{ *core }

// Backlog is the longest a call made now would wait for its turn in any
// of the account's buckets, in any region (pace.Limiter.Backlog).
func (o observer) Backlog() time.Duration {
	var most time.Duration
	for _, name := range o.order {
		for _, b := range o.regions[name].lim.buckets {
			most = max(most, b.Backlog())
		}
	}
	return most
}

// Observe implements providers.Observer: DescribeInstances for the power
// state, DescribeInstanceStatus for the instance reachability check, and
// GetConsoleOutput only for running instances whose check does not pass.
// EC2 counts no boots: BootCount stays nil and LastBootAt zero.
func (o observer) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	out := map[string]inventory.Signals{}
	groups, err := o.byRegion("Observe", vms)
	if err != nil {
		return nil, err
	}
	for rg, refs := range groups {
		res := fmt.Sprintf("%d VMs in %s", len(refs), rg.region)
		is, err := o.describeInstances(ctx, rg, "Observe", res, ids(refs))
		if err != nil {
			return nil, err
		}
		var exist []string
		for _, i := range is {
			if gone(i) {
				continue
			}
			id := sdk.ToString(i.InstanceId)
			exist = append(exist, id)
			out[id] = inventory.Signals{At: o.clk.Now(), Power: powerOf(i), ConsoleAvailable: true}
		}
		var unsure, looks []string
		for _, ch := range chunks(exist, 100) {
			var page *ec2.DescribeInstanceStatusOutput
			err := o.call(ctx, rg, bucketNonMutating, "Observe", res, func(ctx context.Context) (err error) {
				page, err = rg.ec2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ch, IncludeAllInstances: sdk.Bool(true)})
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, st := range page.InstanceStatuses {
				id := sdk.ToString(st.InstanceId)
				s, ok := out[id]
				if !ok || s.Power != inventory.PowerRunning || st.InstanceStatus == nil {
					continue
				}
				for _, d := range st.InstanceStatus.Details {
					if d.Name != ec2types.StatusNameReachability {
						continue
					}
					switch d.Status {
					case ec2types.StatusTypePassed:
						s.InstanceReachable = sdk.Bool(true)
					case ec2types.StatusTypeFailed:
						s.InstanceReachable = sdk.Bool(false)
					default:
						unsure = append(unsure, id)
					}
				}
				if s.InstanceReachable == nil || !*s.InstanceReachable {
					looks = append(looks, id)
				}
				out[id] = s
			}
		}
		if len(unsure) > 0 && !o.opts.NoSSM {
			info, err := o.ssmInfo(ctx, rg, "Observe", res, unsure)
			if err := o.ssmHint(ctx, "Observe", err); err != nil {
				return nil, err
			}
			for id, x := range info {
				if s := out[id]; x.PingStatus == ssmtypes.PingStatusOnline {
					s.InstanceReachable = sdk.Bool(true)
					out[id] = s
				}
			}
		}
		for _, id := range looks {
			var page *ec2.GetConsoleOutputOutput
			err := o.call(ctx, rg, bucketNonMutating, "Observe", "vm "+id, func(ctx context.Context) (err error) {
				page, err = rg.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: sdk.String(id), Latest: nil})
				return err
			})
			if errors.Is(err, providers.ErrNotFound) {
				delete(out, id)
				continue
			}
			if err != nil {
				return nil, err
			}
			if b, derr := base64.StdEncoding.DecodeString(sdk.ToString(page.Output)); derr == nil {
				s := out[id]
				s.Console = string(b)
				out[id] = s
			}
		}
	}
	return out, nil
}

type guests struct{ *core }

// GuestEndpoint implements providers.Guests: the private IP, WinRM over
// HTTP on 5985.
func (g guests) GuestEndpoint(ctx context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	_, i, err := g.instance(ctx, "GuestEndpoint", vm)
	if err != nil {
		return providers.Endpoint{}, err
	}
	ip := sdk.ToString(i.PrivateIpAddress)
	if ip == "" {
		return providers.Endpoint{}, providers.Errorf(providers.ErrUnsupported, "GuestEndpoint", "vm "+vm.String(), "the instance has no private IP address")
	}
	return providers.Endpoint{Host: ip, Port: providers.WinRMPort}, nil
}

// ListedEndpoint implements endpointcache.Listed: List gives each instance
// its private IP as its one NIC.
func (guests) ListedEndpoint(vm inventory.VM) (providers.Endpoint, bool) {
	return providers.ListedPrivateEndpoint(vm)
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "fixfleet-" + hex.EncodeToString(b[:])
}

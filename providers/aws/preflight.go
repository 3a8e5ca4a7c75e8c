package aws

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// preflight checks permissions with EC2's DryRun (every action fixfleet
// takes has one) and the instance quota with DescribeAccountAttributes
// max-instances minus the running instances.
type preflight struct{ *core }

// Permissions implements providers.Preflight: one EC2 call with DryRun per
// action, naming vm's own instance, OS volume and newest backup; the
// answer DryRunOperation means allowed, UnauthorizedOperation denied.
func (p preflight) Permissions(ctx context.Context, vm inventory.VM, acts []providers.Action) ([]providers.Permission, error) {
	out := make([]providers.Permission, len(acts))
	if vm.ID == "" {
		for i, a := range acts {
			out[i] = providers.Permission{Action: a, Allowed: providers.AllowedUnknown, How: "the account has no Windows VM to name in a dry run"}
		}
		return out, nil
	}
	rg, err := p.region("Permissions", "vm "+vm.ID, firstNonEmpty(vm.Zone, vm.Region))
	if err != nil {
		return nil, err
	}
	for i, a := range acts {
		key := "DryRun " + string(a)
		how, call := p.dryRunCall(withCallKey(ctx, key), rg, vm, a)
		out[i] = providers.Permission{Action: a, Allowed: providers.AllowedUnknown, How: how}
		if call == nil {
			continue
		}
		err := rg.lim.wait(ctx, bucketNonMutating, key)
		if err == nil {
			err = call()
		}
		var ae smithy.APIError
		switch {
		case errors.As(err, &ae) && ae.ErrorCode() == "DryRunOperation":
			out[i].Allowed = providers.AllowedYes
		case errors.As(err, &ae) && ae.ErrorCode() == "UnauthorizedOperation":
			out[i].Allowed = providers.AllowedNo
		case err == nil:
			return nil, providers.Errorf(providers.ErrPermanent, "Permissions", "vm "+vm.ID, "%s succeeded although DryRun was set", how)
		default:
			return nil, classify("Permissions", how, err)
		}
	}
	return out, nil
}

// dryRunCall returns the dry run of action a naming vm, and how it is
// described; a nil call when there is nothing to name.
func (p preflight) dryRunCall(ctx context.Context, rg *regional, vm inventory.VM, a providers.Action) (string, func() error) {
	dry, ids, vol := sdk.Bool(true), []string{vm.ID}, sdk.String(vm.OSDisk.ID)
	call := func(how string, f func() error) (string, func() error) { return "EC2 DryRun " + how, f }
	switch a {
	case providers.ActStop:
		return call("StopInstances", func() error {
			_, err := rg.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids, DryRun: dry})
			return err
		})
	case providers.ActStart:
		return call("StartInstances", func() error {
			_, err := rg.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: ids, DryRun: dry})
			return err
		})
	case providers.ActRestart:
		return call("RebootInstances", func() error {
			_, err := rg.ec2.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: ids, DryRun: dry})
			return err
		})
	case providers.ActSnapshot:
		return call("CreateSnapshot", func() error {
			_, err := rg.ec2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol, DryRun: dry})
			return err
		})
	case providers.ActDetach:
		return call("DetachVolume", func() error {
			_, err := rg.ec2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: vol, InstanceId: sdk.String(vm.ID), DryRun: dry})
			return err
		})
	case providers.ActAttach:
		return call("AttachVolume", func() error {
			_, err := rg.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: vol, InstanceId: sdk.String(vm.ID), Device: sdk.String("xvdf"), DryRun: dry})
			return err
		})
	case providers.ActCreateDisk:
		return call("CreateVolume", func() error {
			_, err := rg.ec2.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: sdk.String(vm.Zone), Size: sdk.Int32(1), DryRun: dry})
			return err
		})
	case providers.ActRestoreBackup:
		b := newestBackup(vm)
		if b == "" {
			return "EC2 DryRun CreateVolume: the VM has no backup to name", nil
		}
		return call("CreateVolume from backup "+b, func() error {
			_, err := rg.ec2.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: sdk.String(vm.Zone), SnapshotId: sdk.String(b), DryRun: dry})
			return err
		})
	case providers.ActCreateHelper:
		ims, err := helpers(p).Images(ctx)
		image := ""
		for _, im := range ims {
			if image == "" || im.Zone == vm.Zone {
				image = im.ImageID
			}
		}
		if err != nil || image == "" {
			return "EC2 DryRun RunInstances: no helper image to name", nil
		}
		return call("RunInstances", func() error {
			_, err := rg.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: sdk.String(image), InstanceType: ec2types.InstanceType(p.opts.HelperInstanceType),
				MinCount: sdk.Int32(1), MaxCount: sdk.Int32(1), Placement: &ec2types.Placement{AvailabilityZone: sdk.String(vm.Zone)}, DryRun: dry})
			return err
		})
	case providers.ActDeleteHelper:
		return call("TerminateInstances", func() error {
			_, err := rg.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids, DryRun: dry})
			return err
		})
	}
	return fmt.Sprintf("no EC2 dry run for %s", a), nil
}

func newestBackup(vm inventory.VM) string {
	var b *inventory.Backup
	for i := range vm.Backups {
		if b == nil || vm.Backups[i].TakenAt.After(b.TakenAt) {
			b = &vm.Backups[i]
		}
	}
	if b == nil {
		return ""
	}
	return b.ID
}

// HelperQuota implements providers.Preflight: max-instances (the account
// attribute) minus the running and pending instances, in the account's
// first region.
func (p preflight) HelperQuota(ctx context.Context) (providers.Quota, error) {
	rg := p.regions[p.order[0]]
	const how = "EC2 DescribeAccountAttributes max-instances minus running instances"
	var attrs *ec2.DescribeAccountAttributesOutput
	err := p.call(ctx, rg, bucketNonMutating, "HelperQuota", "account "+p.acct.Name, func(ctx context.Context) (err error) {
		attrs, err = rg.ec2.DescribeAccountAttributes(ctx, &ec2.DescribeAccountAttributesInput{
			AttributeNames: []ec2types.AccountAttributeName{ec2types.AccountAttributeName("max-instances")}})
		return err
	})
	if err != nil {
		return providers.Quota{}, err
	}
	limit := -1
	for _, a := range attrs.AccountAttributes {
		if sdk.ToString(a.AttributeName) == "max-instances" && len(a.AttributeValues) > 0 {
			limit, _ = strconv.Atoi(sdk.ToString(a.AttributeValues[0].AttributeValue))
		}
	}
	if limit < 0 {
		return providers.Quota{How: "EC2 returned no max-instances attribute"}, nil
	}
	is, err := p.describeInstances(ctx, rg, "HelperQuota", "account "+p.acct.Name, nil,
		filter("instance-state-name", "pending", "running"))
	if err != nil {
		return providers.Quota{}, err
	}
	return providers.Quota{Known: true, Limit: limit, InUse: len(is), Room: max(0, limit-len(is)), How: how}, nil
}

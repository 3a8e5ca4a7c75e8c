package aws_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// rawConfig is an SDK configuration straight at the emulator: no
// fixfleet pacing, no retries.
func rawConfig(srv *ec2api.Server) sdk.Config {
	return sdk.Config{Region: "ap-northeast-1", RetryMaxAttempts: 1, BaseEndpoint: sdk.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(world.DefaultAccount, "x", "")}
}

// TestWireShapes decodes the emulator's answers with the SDK itself: a
// field the SDK does not decode fails here.
func TestWireShapes(t *testing.T) {
	f := newFixture(t, 12, nil, "")
	c := ctx(t)
	cfg := rawConfig(f.srv)
	e := ec2.NewFromConfig(cfg)
	out, err := e.DescribeInstances(c, &ec2.DescribeInstancesInput{MaxResults: sdk.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 5 || sdk.ToString(out.NextToken) == "" {
		t.Fatalf("paging: %d reservations, next %q", len(out.Reservations), sdk.ToString(out.NextToken))
	}
	i := out.Reservations[0].Instances[0]
	switch {
	case sdk.ToString(i.InstanceId) == "", i.State == nil, i.State.Name == "", i.Placement == nil,
		sdk.ToString(i.Placement.AvailabilityZone) == "", i.Platform != "windows", sdk.ToString(i.PlatformDetails) != "Windows",
		sdk.ToString(i.RootDeviceName) != ec2api.RootDevice, len(i.BlockDeviceMappings) == 0,
		i.BlockDeviceMappings[0].Ebs == nil, sdk.ToString(i.BlockDeviceMappings[0].Ebs.VolumeId) == "",
		sdk.ToString(i.PrivateIpAddress) == "", len(i.Tags) == 0, sdk.ToString(i.ImageId) == "":
		t.Fatalf("DescribeInstances: fields not decoded: %+v", i)
	}
	st, err := e.DescribeInstanceStatus(c, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{sdk.ToString(i.InstanceId)}, IncludeAllInstances: sdk.Bool(true)})
	if err != nil || len(st.InstanceStatuses) != 1 || st.InstanceStatuses[0].InstanceState == nil {
		t.Fatalf("DescribeInstanceStatus = %+v, %v", st, err)
	}
	vols, err := e.DescribeVolumes(c, &ec2.DescribeVolumesInput{VolumeIds: []string{sdk.ToString(i.BlockDeviceMappings[0].Ebs.VolumeId)}})
	if err != nil || len(vols.Volumes) != 1 || len(vols.Volumes[0].Attachments) != 1 || vols.Volumes[0].State == "" || sdk.ToInt32(vols.Volumes[0].Size) == 0 {
		t.Fatalf("DescribeVolumes = %+v, %v", vols, err)
	}
	ims, err := e.DescribeImages(c, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(ims.Images) == 0 || sdk.ToString(ims.Images[0].Name) == "" || ims.Images[0].Platform != "windows" {
		t.Fatalf("DescribeImages = %+v, %v", ims, err)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
	if err != nil || sdk.ToString(id.Account) != ec2api.AccountID(world.DefaultAccount) {
		t.Fatalf("GetCallerIdentity = %+v, %v", id, err)
	}
	info, err := ssm.NewFromConfig(cfg).DescribeInstanceInformation(c, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: sdk.String("InstanceIds"), Values: []string{sdk.ToString(i.InstanceId)}}}})
	if err != nil || len(info.InstanceInformationList) != 1 || info.InstanceInformationList[0].PingStatus == "" || sdk.ToString(info.InstanceInformationList[0].PlatformName) == "" {
		t.Fatalf("DescribeInstanceInformation = %+v, %v", info, err)
	}
	_, err = e.DescribeVolumes(c, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-missing"}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidVolume.NotFound" {
		t.Fatalf("DescribeVolumes(missing) = %v, want InvalidVolume.NotFound", err)
	}
}

// TestThrottleAnswer: an unpaced burst of StartInstances is refused as EC2
// does (HTTP 503, RequestLimitExceeded), and counted.
func TestThrottleAnswer(t *testing.T) {
	// No API latency: on the manual clock each call's latency would
	// advance time and refill the bucket, and the burst would depend on
	// the world's draws.
	f := newFixture(t, 12, &world.Faults{Throttle: world.ThrottleOff}, "")
	c := ctx(t)
	e := ec2.NewFromConfig(rawConfig(f.srv))
	var err error
	// An unpaced burst, a millisecond apart (calls of one instant all pass
	// while the bucket holds a token at its start: providers/sim/bucket).
	for range 10 {
		f.w.Clock().(*world.ManualClock).Advance(time.Millisecond)
		if _, err = e.StartInstances(c, &ec2.StartInstancesInput{InstanceIds: []string{"vm-00001"}}); err != nil {
			break
		}
	}
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || ae.ErrorCode() != "RequestLimitExceeded" || !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("burst of StartInstances: %v, want HTTP 503 RequestLimitExceeded", err)
	}
	if st := f.srv.Stats(); st.Throttled == 0 || st.Calls["StartInstances"] < 6 {
		t.Fatalf("Stats = %+v", st)
	}
}

// TestAttachErrorCodes: the emulator answers a cross-zone attach and an
// occupied device with EC2's own codes.
func TestAttachErrorCodes(t *testing.T) {
	f := newFixture(t, 12, nil, "")
	c := ctx(t)
	vms, err := f.p.Enumerator.List(c)
	if err != nil {
		t.Fatal(err)
	}
	vm := vms[0]
	other := ""
	for _, z := range awsZones {
		if z != vm.Zone {
			other = z
		}
	}
	snap, err := f.p.Disks.Snapshot(c, providers.DiskRef{ID: vm.OSDisk.ID, Region: vm.Region, Zone: vm.Zone}, providers.Tags{providers.TagRun: "r"})
	if err != nil {
		t.Fatal(err)
	}
	far, err := f.p.Disks.FromSnapshot(c, snap, other, providers.Tags{providers.TagRun: "r", providers.TagRole: "far"})
	if err != nil {
		t.Fatal(err)
	}
	var near [2]providers.DiskRef
	for i := range near {
		if near[i], err = f.p.Disks.FromSnapshot(c, snap, vm.Zone, providers.Tags{providers.TagRun: "r", providers.TagRole: fmt.Sprint("near", i)}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := f.p.Helpers.Acquire(c, vm.Zone, vm.Windows, providers.Tags{providers.TagRun: "r"})
	if err != nil {
		t.Fatal(err)
	}
	e := ec2.NewFromConfig(rawConfig(f.srv))
	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return fmt.Sprint(err)
	}
	_, err = e.AttachVolume(c, &ec2.AttachVolumeInput{VolumeId: sdk.String(far.ID), InstanceId: sdk.String(h.ID), Device: sdk.String("xvdf")})
	if got := code(err); got != "InvalidVolume.ZoneMismatch" {
		t.Errorf("cross-zone attach: %s, want InvalidVolume.ZoneMismatch", got)
	}
	if _, err := e.AttachVolume(c, &ec2.AttachVolumeInput{VolumeId: sdk.String(near[0].ID), InstanceId: sdk.String(h.ID), Device: sdk.String("xvdf")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.AttachVolume(c, &ec2.AttachVolumeInput{VolumeId: sdk.String(near[1].ID), InstanceId: sdk.String(h.ID), Device: sdk.String("xvdf")})
	if got := code(err); got != "InvalidParameterValue" {
		t.Errorf("attach at an occupied device: %s, want InvalidParameterValue", got)
	}
}

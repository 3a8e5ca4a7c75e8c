package ec2api

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Bucket names (the published EC2 request buckets).
const (
	BucketNonMutating = "non-mutating"
	BucketUnfiltered  = "unfiltered-describe"
	BucketMutating    = "mutating"
	BucketSnapVol     = "create-snapshot-volume"
	BucketStartRun    = "start-run-instances"
)

// BucketOf returns the EC2 throttling bucket of an action; filtered says
// whether a Describe* call names IDs or filters.
func BucketOf(action string, filtered bool) (string, timing.Bucket) {
	switch action {
	case "StartInstances", "RunInstances":
		return BucketStartRun, timing.EC2StartRunInstance
	case "CreateSnapshot", "CreateVolume":
		return BucketSnapVol, timing.EC2SnapshotVolume
	case "StopInstances", "RebootInstances", "TerminateInstances", "AttachVolume", "DetachVolume", "DeleteVolume", "CreateTags":
		return BucketMutating, timing.EC2Mutating
	}
	if strings.HasPrefix(action, "Describe") && !filtered {
		return BucketUnfiltered, timing.EC2UnfilteredDescr
	}
	return BucketNonMutating, timing.EC2NonMutating
}

type handler func(s *Server, ctx context.Context, q *request) (any, *apiError)

var ec2Actions = map[string]handler{
	"DescribeInstances":         (*Server).describeInstances,
	"DescribeInstanceStatus":    (*Server).describeInstanceStatus,
	"GetConsoleOutput":          (*Server).getConsoleOutput,
	"GetConsoleScreenshot":      (*Server).getConsoleScreenshot,
	"StopInstances":             (*Server).stopInstances,
	"StartInstances":            (*Server).startInstances,
	"RebootInstances":           (*Server).rebootInstances,
	"TerminateInstances":        (*Server).terminateInstances,
	"RunInstances":              (*Server).runInstances,
	"DescribeImages":            (*Server).describeImages,
	"DescribeAvailabilityZones": (*Server).describeAvailabilityZones,
	"DescribeVolumes":           (*Server).describeVolumes,
	"DescribeSnapshots":         (*Server).describeSnapshots,
	"CreateSnapshot":            (*Server).createSnapshot,
	"CreateVolume":              (*Server).createVolume,
	"AttachVolume":              (*Server).attachVolume,
	"DetachVolume":              (*Server).detachVolume,
	"DeleteVolume":              (*Server).deleteVolume,
	"DescribeAccountAttributes": (*Server).describeAccountAttributes,
}

func (s *Server) ec2(ctx context.Context, q *request) (any, *apiError) {
	h := ec2Actions[q.action]
	if h == nil {
		names := make([]string, 0, len(ec2Actions))
		for n := range ec2Actions {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, errf(400, "InvalidAction", "The action %q is not valid for this web service (emulated: %s)", q.action, strings.Join(names, ", "))
	}
	filtered := false
	for k := range q.form {
		if strings.HasPrefix(k, "Filter.") || strings.Contains(k, "Id.") {
			filtered = true
		}
	}
	name, b := BucketOf(q.action, filtered)
	if !s.throttle(q, name, b) {
		return nil, errf(503, "RequestLimitExceeded", "Request limit exceeded.")
	}
	if q.form.Get("DryRun") == "true" {
		return nil, s.dryRun(ctx, q)
	}
	return h(s, ctx, q)
}

func stateOf(p inventory.PowerState) xState {
	switch p {
	case inventory.PowerRunning:
		return xState{16, "running"}
	case inventory.PowerStarting:
		return xState{0, "pending"}
	case inventory.PowerStopping:
		return xState{64, "stopping"}
	case inventory.PowerStopped:
		return xState{80, "stopped"}
	}
	return xState{48, "terminated"}
}

var terminated = xState{48, "terminated"}

// images returns the world's helper images (read once: images do not
// change).
func (s *Server) images(ctx context.Context, q *request) ([]providers.HelperImage, *apiError) {
	ims, err := s.w.HelperImages(ctx, q.account)
	return ims, fromWorld(err, "AMI", "IncorrectState")
}

func amiName(release string) string {
	return "Windows_Server-" + release + "-English-Full-Base-2024.07.10"
}

// imageFor is the AMI a fleet VM of release in zone was launched from:
// its region's AMI of that release (deregistered if the region has no
// image of it: DescribeImages then does not list it). Caller holds mu.
func (s *Server) imageFor(zone, release string) string {
	id := AMI(RegionOf(zone), release)
	s.amiRelease[id] = release
	return id
}

// instances builds every instance of q's account in q's region: fleet VMs
// and the helpers this emulator launched.
func (s *Server) instances(ctx context.Context, q *request) ([]xInstance, *apiError) {
	vms, err := s.w.ListVMs(ctx, q.account, q.zones)
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		return nil, aerr
	}
	disks, err := s.w.FindDisks(ctx, q.account, nil)
	if aerr := fromWorld(err, "Volume", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	byVM := map[string][]world.DiskInfo{}
	for _, d := range disks {
		if d.AttachedTo != "" {
			byVM[d.AttachedTo] = append(byVM[d.AttachedTo], d)
		}
	}
	s.mu.Lock()
	var hs []*helperRec
	for _, h := range s.helpers {
		if slices.Contains(q.zones, h.zone) {
			hs = append(hs, h)
		}
	}
	s.mu.Unlock()
	var power map[string]inventory.Signals
	if len(hs) > 0 {
		ids := make([]string, len(hs))
		for i, h := range hs {
			ids[i] = h.id
		}
		power, err = s.w.Observe(ctx, q.account, ids)
		if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
			return nil, aerr
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []xInstance
	for _, v := range vms {
		if _, seen := s.rootOf[v.ID]; !seen && v.OSDisk.ID != "" {
			s.rootOf[v.ID] = v.OSDisk.ID
		}
		tags := map[string]string{"Name": v.Name}
		for k, x := range v.Tags {
			tags[k] = x
		}
		x := xInstance{InstanceID: v.ID, ImageID: s.imageFor(v.Zone, v.Windows.Release), State: stateOf(v.Power),
			InstanceType: "m5.large", Placement: xPlacement{v.Zone}, Platform: "windows", PlatformDetails: "Windows",
			RootDeviceType: "ebs", RootDeviceName: RootDevice, BDM: s.bdm(v.ID, byVM[v.ID], ""), Tags: xtags(tags)}
		if len(v.NICs) > 0 {
			x.PrivateIP = v.NICs[0].PrivateIP
		}
		out = append(out, x)
	}
	for _, h := range hs {
		sig, ok := power[h.id]
		if !ok {
			delete(s.helpers, h.id)
			continue
		}
		for _, d := range byVM[h.id] {
			if d.Boot && h.rootVol == "" {
				h.rootVol = d.Ref.ID
			}
		}
		tags := map[string]string{"Name": h.name}
		for k, x := range h.tags {
			tags[k] = x
		}
		out = append(out, xInstance{InstanceID: h.id, ImageID: h.imageID, State: stateOf(sig.Power), InstanceType: "m5.large",
			LaunchTime: ts(h.launched), Placement: xPlacement{h.zone}, Platform: "windows", PlatformDetails: "Windows",
			PrivateIP: h.ip, RootDeviceType: "ebs", RootDeviceName: RootDevice, BDM: s.bdm(h.id, byVM[h.id], h.rootVol), Tags: xtags(tags)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out, nil
}

// bdm is an instance's block device mapping. Caller holds mu.
func (s *Server) bdm(id string, ds []world.DiskInfo, ownRoot string) []xBDM {
	var out []xBDM
	for _, d := range ds {
		st := "attached"
		if d.Busy == "attaching" {
			st = "attaching"
		}
		if d.Boot {
			out = append(out, xBDM{RootDevice, xEBS{VolumeID: d.Ref.ID, Status: st, DeleteOnTermination: d.Ref.ID == ownRoot}})
		} else {
			out = append(out, xBDM{s.deviceOf(d.Ref.ID), xEBS{VolumeID: d.Ref.ID, Status: st}})
		}
	}
	for vol, inst := range s.detaching {
		if inst == id {
			out = append(out, xBDM{"xvd-detaching", xEBS{VolumeID: vol, Status: "detaching"}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceName < out[j].DeviceName })
	return out
}

// deviceOf is the device a data volume was attached at. Caller holds mu.
func (s *Server) deviceOf(vol string) string {
	if d := s.devices[vol]; d != "" {
		return d
	}
	return "xvdz"
}

var instanceSpec = describeSpec[xInstance]{
	notFound: "InvalidInstanceID.NotFound",
	filters:  []string{"instance-id", "availability-zone", "instance-state-name", "platform", "image-id", "private-ip-address"},
	id:       func(x xInstance) string { return x.InstanceID },
	tags:     func(x xInstance) []xTag { return x.Tags },
	attr: func(x xInstance, n string) []string {
		switch n {
		case "instance-id":
			return []string{x.InstanceID}
		case "availability-zone":
			return []string{x.Placement.AvailabilityZone}
		case "instance-state-name":
			return []string{x.State.Name}
		case "platform":
			return []string{x.Platform}
		case "image-id":
			return []string{x.ImageID}
		}
		return []string{x.PrivateIP}
	},
}

func (s *Server) describeInstances(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "InstanceId")
	fs := filters(q.form)
	all, aerr := s.instances(ctx, q)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	for _, id := range ids {
		if _, ok := s.tokens["terminated:"+id]; ok {
			all = append(all, xInstance{InstanceID: id, State: terminated, Platform: "windows", RootDeviceName: RootDevice, RootDeviceType: "ebs"})
		}
	}
	s.mu.Unlock()
	sel, aerr := instanceSpec.pick(all, ids, fs)
	if aerr != nil {
		return nil, aerr
	}
	sel, next, aerr := pageOf(q, sel)
	if aerr != nil {
		return nil, aerr
	}
	out := describeInstancesResponse{NS: ec2NS, RequestID: q.id, NextToken: next}
	for _, x := range sel {
		out.Reservations = append(out.Reservations, xReservation{ReservationID: "r-" + x.InstanceID, OwnerID: AccountID(q.account), Instances: []xInstance{x}})
	}
	return out, nil
}

func (s *Server) describeInstanceStatus(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "InstanceId")
	if len(ids) == 0 {
		all, aerr := s.instances(ctx, q)
		if aerr != nil {
			return nil, aerr
		}
		for _, x := range all {
			ids = append(ids, x.InstanceID)
		}
	}
	if len(filters(q.form)) > 0 {
		return nil, errf(400, "InvalidParameterValue", "this emulator supports no DescribeInstanceStatus filters")
	}
	sig, err := s.w.Observe(ctx, q.account, ids)
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		return nil, aerr
	}
	if aerr := requireIDs("InvalidInstanceID.NotFound", ids, sig); aerr != nil {
		return nil, aerr
	}
	all := boolParam(q.form, "IncludeAllInstances")
	var sts []xInstanceStatus
	for _, id := range ids {
		x := sig[id]
		st := xInstanceStatus{InstanceID: id, State: stateOf(x.Power),
			InstanceStatus: xStatusSummary{Status: "not-applicable"}, SystemStatus: xStatusSummary{Status: "not-applicable"}}
		if x.Power == inventory.PowerRunning {
			st.SystemStatus = xStatusSummary{"ok", []xStatusDetail{{"reachability", "passed"}}}
			switch {
			case x.InstanceReachable == nil:
				st.InstanceStatus = xStatusSummary{"insufficient-data", []xStatusDetail{{"reachability", "insufficient-data"}}}
			case *x.InstanceReachable:
				st.InstanceStatus = xStatusSummary{"ok", []xStatusDetail{{"reachability", "passed"}}}
			default:
				st.InstanceStatus = xStatusSummary{"impaired", []xStatusDetail{{"reachability", "failed"}}}
			}
		} else if !all {
			continue
		}
		sts = append(sts, st)
	}
	sts, next, aerr := pageOf(q, sts)
	if aerr != nil {
		return nil, aerr
	}
	return describeInstanceStatusResponse{NS: ec2NS, RequestID: q.id, Statuses: sts, NextToken: next}, nil
}

func (s *Server) getConsoleOutput(ctx context.Context, q *request) (any, *apiError) {
	id := q.form.Get("InstanceId")
	sig, err := s.w.Observe(ctx, q.account, []string{id})
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		return nil, aerr
	}
	x, ok := sig[id]
	if !ok {
		return nil, notFoundIDs("InvalidInstanceID.NotFound", []string{id})
	}
	out := consoleOutputResponse{NS: ec2NS, RequestID: q.id, InstanceID: id, Timestamp: ts(x.At)}
	if x.ConsoleAvailable && x.Console != "" {
		out.Output = base64.StdEncoding.EncodeToString([]byte(x.Console))
	}
	return out, nil
}

func changes(name string, ids []string, cur, prev xState, q *request) stateChangeResponse {
	out := stateChangeResponse{XMLName: xml.Name{Local: name}, NS: ec2NS, RequestID: q.id}
	for _, id := range ids {
		out.Instances = append(out.Instances, xStateChange{id, cur, prev})
	}
	return out
}

func needIDs(ids []string) *apiError {
	if len(ids) == 0 {
		return errf(400, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	return nil
}

func (s *Server) stopInstances(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "InstanceId")
	if aerr := needIDs(ids); aerr != nil {
		return nil, aerr
	}
	s.countInstances("StopInstances", len(ids))
	_, err := s.w.StopVMs(ctx, q.account, ids, boolParam(q.form, "Force"))
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		return nil, aerr
	}
	return changes("StopInstancesResponse", ids, xState{64, "stopping"}, xState{16, "running"}, q), nil
}

func (s *Server) startInstances(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "InstanceId")
	if aerr := needIDs(ids); aerr != nil {
		return nil, aerr
	}
	s.countInstances("StartInstances", len(ids))
	_, err := s.w.StartVMs(ctx, q.account, ids)
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		return nil, aerr
	}
	return changes("StartInstancesResponse", ids, xState{0, "pending"}, xState{80, "stopped"}, q), nil
}

func (s *Server) rebootInstances(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "InstanceId")
	if aerr := needIDs(ids); aerr != nil {
		return nil, aerr
	}
	for _, id := range ids {
		_, err := s.w.RestartVM(ctx, q.account, id)
		if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
			return nil, aerr
		}
	}
	return returnResponse{XMLName: xml.Name{Local: "RebootInstancesResponse"}, NS: ec2NS, RequestID: q.id, Return: true}, nil
}

func (s *Server) terminateInstances(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "InstanceId")
	if aerr := needIDs(ids); aerr != nil {
		return nil, aerr
	}
	for _, id := range ids {
		err := s.w.ReleaseHelper(ctx, q.account, id)
		var pe *providers.Error
		if asPE(err, &pe) && pe.Class == providers.ErrPermanent {
			return nil, errf(400, "OperationNotPermitted", "The instance '%s' may not be terminated: the emulator terminates only helpers it launched", id)
		}
		if aerr := fromWorld(err, "Instance", "IncorrectState"); aerr != nil {
			return nil, aerr
		}
		s.mu.Lock()
		delete(s.helpers, id)
		s.tokens["terminated:"+id] = id
		s.mu.Unlock()
	}
	return changes("TerminateInstancesResponse", ids, xState{32, "shutting-down"}, xState{16, "running"}, q), nil
}

func (s *Server) runInstances(ctx context.Context, q *request) (any, *apiError) {
	image := q.form.Get("ImageId")
	if mn, ok := intParam(q.form, "MinCount"); !ok || mn != 1 {
		return nil, errf(400, "InvalidParameterValue", "MinCount must be 1 (the emulator launches helpers one at a time)")
	}
	token := q.form.Get("ClientToken")
	ims, aerr := s.images(ctx, q)
	if aerr != nil {
		return nil, aerr
	}
	var im *providers.HelperImage
	for i := range ims {
		if slices.Contains(q.zones, ims[i].Zone) && AMI(q.region, ims[i].Windows.Release) == image {
			im = &ims[i]
		}
	}
	if im == nil {
		return nil, notFoundIDs("InvalidAMIID.NotFound", []string{image})
	}
	zone := q.form.Get("Placement.AvailabilityZone")
	if zone == "" {
		zone = q.zones[0]
	}
	if !slices.Contains(q.zones, zone) {
		return nil, errf(400, "InvalidParameterValue", "Invalid availability zone: [%s]", zone)
	}
	tags := tagSpecs(q.form, "instance")
	// Every RunInstances creates an instance; the world honours the
	// client token, as EC2 does.
	info, err := s.w.CreateHelper(ctx, q.account, zone, im.Windows, tags, token)
	if err != nil {
		var pe *providers.Error
		if asPE(err, &pe) && pe.Class == providers.ErrNotFound {
			return nil, errf(400, "InvalidAMIID.NotFound", "%s", pe.Error())
		}
		return nil, fromWorld(err, "Instance", "IncorrectInstanceState")
	}
	// The address comes with the creation's answer, as in RunInstances'
	// response: asking the world again is a second call that may be
	// throttled, and would leave the helper without an address.
	s.mu.Lock()
	h := s.helpers[info.Ref.ID]
	if h == nil {
		h = &helperRec{id: info.Ref.ID, zone: zone, release: im.Windows.Release, imageID: image, name: info.Ref.Name,
			tags: info.Tags, ip: info.PrivateIP, launched: s.w.Clock().Now()}
		s.helpers[h.id] = h
	}
	s.mu.Unlock()
	return s.runResponse(q, h), nil
}

func (s *Server) runResponse(q *request, h *helperRec) runInstancesResponse {
	return runInstancesResponse{NS: ec2NS, RequestID: q.id, xReservation: xReservation{ReservationID: "r-" + h.id, OwnerID: AccountID(q.account),
		Instances: []xInstance{{InstanceID: h.id, ImageID: h.imageID, State: xState{0, "pending"}, InstanceType: "m5.large",
			LaunchTime: ts(h.launched), Placement: xPlacement{h.zone}, Platform: "windows", PlatformDetails: "Windows",
			PrivateIP: h.ip, RootDeviceType: "ebs", RootDeviceName: RootDevice, Tags: xtags(h.tags)}}}}
}

var imageSpec = describeSpec[xImage]{
	notFound: "InvalidAMIID.NotFound",
	filters:  []string{"image-id", "name", "platform", "state", "owner-alias", "architecture"},
	id:       func(x xImage) string { return x.ImageID },
	tags:     func(x xImage) []xTag { return x.Tags },
	attr: func(x xImage, n string) []string {
		switch n {
		case "image-id":
			return []string{x.ImageID}
		case "name":
			return []string{x.Name}
		case "platform":
			return []string{x.Platform}
		case "state":
			return []string{x.State}
		case "owner-alias":
			return []string{"amazon"}
		}
		return []string{x.Architecture}
	},
}

func (s *Server) describeImages(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "ImageId")
	owners := list(q.form, "Owner")
	fs := filters(q.form)
	ims, aerr := s.images(ctx, q)
	if aerr != nil {
		return nil, aerr
	}
	// One AMI per region and release: the region's zones share it.
	var all []xImage
	seen := map[string]bool{}
	for _, im := range ims {
		rel := im.Windows.Release
		if !slices.Contains(q.zones, im.Zone) || seen[rel] {
			continue
		}
		seen[rel] = true
		if len(owners) > 0 && !slices.Contains(owners, "amazon") && !slices.Contains(owners, amazonOwner) {
			continue
		}
		all = append(all, xImage{ImageID: AMI(q.region, rel), ImageLocation: "amazon/" + amiName(rel), State: "available", OwnerID: amazonOwner,
			CreationDate: "2024-07-10T00:00:00.000Z", IsPublic: true, Architecture: "x86_64", ImageType: "machine",
			Platform: "windows", PlatformDetails: "Windows", Name: amiName(rel),
			Description:    fmt.Sprintf("Microsoft Windows Server %s Full Locale English AMI provided by Amazon (build %s)", rel, im.Windows.Build),
			RootDeviceType: "ebs", RootDeviceName: RootDevice})
	}
	sel, aerr := imageSpec.pick(all, ids, fs)
	if aerr != nil {
		return nil, aerr
	}
	return describeImagesResponse{NS: ec2NS, RequestID: q.id, Images: sel}, nil
}

// volume renders a world disk. Caller holds mu.
func (s *Server) volume(d world.DiskInfo, now time.Time) xVolume {
	v := xVolume{VolumeID: d.Ref.ID, Size: d.SizeGB, AvailabilityZone: d.Ref.Zone, Status: "available", VolumeType: "gp3", Tags: xtags(d.Tags)}
	switch {
	case !d.ReadyAt.IsZero() && now.Before(d.ReadyAt):
		v.Status = "creating"
	case d.AttachedTo != "":
		v.Status = "in-use"
		st, dev := "attached", RootDevice
		if d.Busy == "attaching" {
			st = "attaching"
		}
		if !d.Boot {
			dev = s.deviceOf(d.Ref.ID)
		}
		v.Attachments = []xAttachment{{VolumeID: d.Ref.ID, InstanceID: d.AttachedTo, Device: dev, Status: st}}
	case d.Busy == "detaching" && s.detaching[d.Ref.ID] != "":
		v.Status = "in-use"
		v.Attachments = []xAttachment{{VolumeID: d.Ref.ID, InstanceID: s.detaching[d.Ref.ID], Device: "xvd-detaching", Status: "detaching"}}
	}
	if d.Busy != "detaching" && d.AttachedTo == "" {
		delete(s.detaching, d.Ref.ID)
	}
	return v
}

var volumeSpec = describeSpec[xVolume]{
	notFound: "InvalidVolume.NotFound",
	filters:  []string{"volume-id", "availability-zone", "status", "attachment.instance-id", "attachment.device", "attachment.status"},
	id:       func(v xVolume) string { return v.VolumeID },
	tags:     func(v xVolume) []xTag { return v.Tags },
	attr: func(v xVolume, n string) []string {
		var a xAttachment
		if len(v.Attachments) > 0 {
			a = v.Attachments[0]
		}
		switch n {
		case "volume-id":
			return []string{v.VolumeID}
		case "availability-zone":
			return []string{v.AvailabilityZone}
		case "status":
			return []string{v.Status}
		case "attachment.instance-id":
			return []string{a.InstanceID}
		case "attachment.device":
			return []string{a.Device}
		}
		return []string{a.Status}
	},
}

func (s *Server) describeVolumes(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "VolumeId")
	fs := filters(q.form)
	disks, err := s.w.FindDisks(ctx, q.account, nil)
	if aerr := fromWorld(err, "Volume", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	now := s.w.Clock().Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []xVolume
	for _, d := range disks {
		// volume has side effects on s.detaching: render requested disks only.
		if !slices.Contains(q.zones, d.Ref.Zone) || (len(ids) > 0 && !slices.Contains(ids, d.Ref.ID)) {
			continue
		}
		all = append(all, s.volume(d, now))
	}
	sel, aerr := volumeSpec.pick(all, ids, fs)
	if aerr != nil {
		return nil, aerr
	}
	sel, next, aerr := pageOf(q, sel)
	if aerr != nil {
		return nil, aerr
	}
	return describeVolumesResponse{NS: ec2NS, RequestID: q.id, Volumes: sel, NextToken: next}, nil
}

func snapStatus(ready bool) (string, string) {
	if ready {
		return "completed", "100%"
	}
	return "pending", "50%"
}

var snapshotSpec = describeSpec[xSnapshot]{
	notFound: "InvalidSnapshot.NotFound",
	filters:  []string{"snapshot-id", "volume-id", "status", "owner-id", "description"},
	id:       func(x xSnapshot) string { return x.SnapshotID },
	tags:     func(x xSnapshot) []xTag { return x.Tags },
	attr: func(x xSnapshot, n string) []string {
		switch n {
		case "snapshot-id":
			return []string{x.SnapshotID}
		case "volume-id":
			return []string{x.VolumeID}
		case "status":
			return []string{x.Status}
		case "owner-id":
			return []string{x.OwnerID}
		}
		return []string{x.Description}
	},
}

func (s *Server) describeSnapshots(ctx context.Context, q *request) (any, *apiError) {
	ids := list(q.form, "SnapshotId")
	fs := filters(q.form)
	snaps, err := s.w.FindSnapshots(ctx, q.account, nil)
	if aerr := fromWorld(err, "Snapshot", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	var all []xSnapshot
	owner := AccountID(q.account)
	for _, sn := range snaps {
		if sn.Ref.Zone != "" && !slices.Contains(q.zones, sn.Ref.Zone) {
			continue
		}
		st, pr := snapStatus(sn.Ready)
		all = append(all, xSnapshot{SnapshotID: sn.Ref.ID, VolumeID: sn.DiskID, Status: st, StartTime: ts(sn.TakenAt), Progress: pr,
			OwnerID: owner, Description: "fixfleet", Tags: xtags(sn.Tags)})
	}
	// World backups: completed snapshots of their VM's root volume, found
	// by volume-id.
	var vols []string
	for _, f := range fs {
		if f.name == "volume-id" {
			vols = append(vols, f.values...)
		}
	}
	for _, vol := range vols {
		s.mu.Lock()
		vm := ""
		for id, root := range s.rootOf {
			if root == vol {
				vm = id
			}
		}
		s.mu.Unlock()
		if vm == "" {
			continue
		}
		bks, err := s.w.ListBackups(ctx, q.account, vm)
		if aerr := fromWorld(err, "Instance", "IncorrectState"); aerr != nil {
			return nil, aerr
		}
		for _, b := range bks {
			all = append(all, xSnapshot{SnapshotID: b.ID, VolumeID: vol, Status: "completed", StartTime: ts(b.TakenAt), Progress: "100%",
				OwnerID: owner, VolumeSize: b.SizeGB, Description: fmt.Sprintf("Created by CreateImage(%s) for ami-%s (%s backup)", s.ids.out(kindInstance, vm), hex17("backup|"+b.ID), b.Kind)})
			s.mu.Lock()
			s.backupVol[b.ID] = vol
			s.mu.Unlock()
		}
	}
	sel, aerr := snapshotSpec.pick(all, ids, fs)
	if aerr != nil {
		return nil, aerr
	}
	sel, next, aerr := pageOf(q, sel)
	if aerr != nil {
		return nil, aerr
	}
	return describeSnapshotsResponse{NS: ec2NS, RequestID: q.id, Snapshots: sel, NextToken: next}, nil
}

func (s *Server) createSnapshot(ctx context.Context, q *request) (any, *apiError) {
	vol := q.form.Get("VolumeId")
	sn, err := s.w.Snapshot(ctx, q.account, vol, tagSpecs(q.form, "snapshot"))
	if aerr := fromWorld(err, "Volume", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	st, pr := snapStatus(sn.Ready)
	return createSnapshotResponse{NS: ec2NS, RequestID: q.id, xSnapshot: xSnapshot{SnapshotID: sn.Ref.ID, VolumeID: vol, Status: st,
		StartTime: ts(sn.TakenAt), Progress: pr, OwnerID: AccountID(q.account), Description: q.form.Get("Description"), Tags: xtags(sn.Tags)}}, nil
}

func (s *Server) createVolume(ctx context.Context, q *request) (any, *apiError) {
	snap, zone := q.form.Get("SnapshotId"), q.form.Get("AvailabilityZone")
	if snap == "" {
		return nil, errf(400, "MissingParameter", "the emulator creates volumes from snapshots only: give SnapshotId")
	}
	if !slices.Contains(q.zones, zone) {
		return nil, errf(400, "InvalidParameterValue", "Invalid availability zone: [%s]", zone)
	}
	tags := tagSpecs(q.form, "volume")
	var d world.DiskInfo
	var err error
	s.mu.Lock()
	_, isBackup := s.backupVol[snap]
	s.mu.Unlock()
	if isBackup || strings.HasPrefix(snap, "bk-") {
		d, err = s.w.RestoreBackup(ctx, q.account, snap, zone, tags)
	} else {
		d, err = s.w.DiskFromSnapshot(ctx, q.account, snap, zone, tags)
	}
	if aerr := fromWorld(err, "Snapshot", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	v := s.volume(d, s.w.Clock().Now())
	s.mu.Unlock()
	v.SnapshotID = snap
	v.CreateTime = ts(s.w.Clock().Now())
	return createVolumeResponse{NS: ec2NS, RequestID: q.id, xVolume: v}, nil
}

func (s *Server) attachVolume(ctx context.Context, q *request) (any, *apiError) {
	vol, inst, dev := q.form.Get("VolumeId"), q.form.Get("InstanceId"), q.form.Get("Device")
	if dev == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter device")
	}
	boot := dev == RootDevice
	if !boot {
		disks, err := s.w.FindDisks(ctx, q.account, nil)
		if aerr := fromWorld(err, "Volume", "IncorrectState"); aerr != nil {
			return nil, aerr
		}
		s.mu.Lock()
		for _, d := range disks {
			if d.AttachedTo == inst && !d.Boot && d.Ref.ID != vol && s.devices[d.Ref.ID] == dev {
				s.mu.Unlock()
				return nil, errf(400, "InvalidParameterValue", "Invalid value '%s' for unixDevice. Attachment point %s is already in use", dev, dev)
			}
		}
		s.mu.Unlock()
	}
	_, err := s.w.AttachDisk(ctx, q.account, inst, vol, boot)
	if errors.Is(err, world.ErrZoneMismatch) {
		return nil, errf(400, "InvalidVolume.ZoneMismatch", "The volume '%s' is not in the same availability zone as instance '%s'", vol, inst)
	}
	if aerr := fromWorld(err, "Volume", "VolumeInUse"); aerr != nil {
		if strings.Contains(aerr.message, "is stopped") || strings.Contains(aerr.message, "a boot disk attaches only") || strings.Contains(aerr.message, "still stopping") {
			aerr.code = "IncorrectInstanceState"
		}
		return nil, aerr
	}
	s.mu.Lock()
	if !boot {
		s.devices[vol] = dev
	}
	delete(s.detaching, vol)
	s.mu.Unlock()
	return attachmentResponse{XMLName: xml.Name{Local: "AttachVolumeResponse"}, NS: ec2NS, RequestID: q.id,
		xAttachment: xAttachment{VolumeID: vol, InstanceID: inst, Device: dev, Status: "attaching", AttachTime: ts(s.w.Clock().Now())}}, nil
}

func (s *Server) detachVolume(ctx context.Context, q *request) (any, *apiError) {
	vol, inst := q.form.Get("VolumeId"), q.form.Get("InstanceId")
	d, err := s.w.DescribeDisk(ctx, q.account, vol)
	if aerr := fromWorld(err, "Volume", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	if d.AttachedTo == "" || (inst != "" && d.AttachedTo != inst) {
		return nil, errf(400, "IncorrectState", "Volume '%s' is in the 'available' state (not attached to %s)", vol, inst)
	}
	inst = d.AttachedTo
	s.mu.Lock()
	dev := RootDevice
	if !d.Boot {
		dev = s.deviceOf(vol)
	}
	s.mu.Unlock()
	if _, err := s.w.DetachDisk(ctx, q.account, inst, vol); err != nil {
		aerr := fromWorld(err, "Volume", "IncorrectState")
		if strings.Contains(aerr.message, "stop the VM first") || strings.Contains(aerr.message, "still stopping") {
			aerr.code = "IncorrectInstanceState"
		}
		return nil, aerr
	}
	s.mu.Lock()
	delete(s.devices, vol)
	s.detaching[vol] = inst
	s.mu.Unlock()
	return attachmentResponse{XMLName: xml.Name{Local: "DetachVolumeResponse"}, NS: ec2NS, RequestID: q.id,
		xAttachment: xAttachment{VolumeID: vol, InstanceID: inst, Device: dev, Status: "detaching"}}, nil
}

// deleteVolume deletes a volume as EC2's DeleteVolume does: only an
// available one. It answers EC2's codes: InvalidVolume.NotFound for a
// volume not in the account's region (also once deleted: a retried delete
// whose first reply was lost reads so), VolumeInUse while it is attached,
// attaching or detaching (EC2 shows it in-use until the detach ends),
// IncorrectState while it is being created. The world deletes only
// copies (world.DeleteDisk); see below for what it says of an original.
// Faults are the world's, answered as by every other action (fromWorld);
// after a lost reply (world.ErrReplyLost) the volume is gone, and its
// bookkeeping is cleared before the connection drops, as a cloud that
// committed the delete would.
func (s *Server) deleteVolume(ctx context.Context, q *request) (any, *apiError) {
	vol := q.form.Get("VolumeId")
	if vol == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter VolumeId")
	}
	d, err := s.w.DescribeDisk(ctx, q.account, vol)
	if aerr := fromWorld(err, "Volume", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	if !slices.Contains(q.zones, d.Ref.Zone) {
		return nil, errf(400, "InvalidVolume.NotFound", "The volume '%s' does not exist.", vol)
	}
	now := s.w.Clock().Now()
	switch {
	case d.AttachedTo != "":
		return nil, errf(400, "VolumeInUse", "Volume %s is currently attached to %s", vol, d.AttachedTo)
	case d.Busy == "detaching":
		return nil, errf(400, "VolumeInUse", "Volume %s is still detaching", vol)
	case !d.ReadyAt.IsZero() && now.Before(d.ReadyAt):
		return nil, errf(400, "IncorrectState", "The volume '%s' is 'creating'", vol)
	}
	err = s.w.DeleteDisk(ctx, q.account, vol)
	if err == nil || errors.Is(err, world.ErrReplyLost) {
		s.mu.Lock()
		delete(s.devices, vol)
		delete(s.detaching, vol)
		s.mu.Unlock()
	}
	switch {
	case errors.Is(err, world.ErrDenied):
		// fromWorld answers UnauthorizedOperation.
	case errors.Is(err, providers.ErrPermanent):
		// An original disk (a VM's own, or a helper's root) detached: real
		// EC2 would delete it, the world never does. EC2 has no deletion
		// protection for volumes, so the honest refusal is its generic
		// OperationNotPermitted ("the operation is not allowed"), as
		// TerminateInstances answers for an instance the emulator did not
		// launch: a refusal no retry changes, as the world's ErrPermanent.
		return nil, errf(400, "OperationNotPermitted", "The volume '%s' may not be deleted: the emulator deletes only volumes created from a snapshot", vol)
	case errors.Is(err, world.ErrNotReady):
		return nil, errf(400, "IncorrectState", "The volume '%s' is 'creating'", vol)
	case errors.Is(err, providers.ErrConflict):
		// The volume was available at the look above: it has since been
		// attached, or begun attaching or detaching.
		return nil, errf(400, "VolumeInUse", "Volume %s is in use", vol)
	}
	if aerr := fromWorld(err, "Volume", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	return returnResponse{XMLName: xml.Name{Local: "DeleteVolumeResponse"}, NS: ec2NS, RequestID: q.id, Return: true}, nil
}

func asPE(err error, pe **providers.Error) bool {
	if err == nil {
		return false
	}
	e, ok := err.(*providers.Error)
	if ok {
		*pe = e
	}
	return ok
}

var zoneSpec = describeSpec[xZone]{
	notFound: "InvalidParameterValue",
	filters:  []string{"zone-name", "region-name", "state", "zone-type"},
	id:       func(x xZone) string { return x.ZoneName },
	tags:     func(xZone) []xTag { return nil },
	attr: func(x xZone, n string) []string {
		switch n {
		case "zone-name":
			return []string{x.ZoneName}
		case "region-name":
			return []string{x.RegionName}
		case "state":
			return []string{x.State}
		}
		return []string{x.ZoneType}
	},
}

// describeAvailabilityZones lists the world's zones of q's region.
func (s *Server) describeAvailabilityZones(ctx context.Context, q *request) (any, *apiError) {
	// Through the world's control-plane gate (outages, latency, faults).
	if _, aerr := s.images(ctx, q); aerr != nil {
		return nil, aerr
	}
	var all []xZone
	for _, z := range q.zones {
		all = append(all, xZone{ZoneName: z, ZoneID: zoneID(z), RegionName: q.region, State: "available", ZoneType: "availability-zone",
			OptInStatus: "opt-in-not-required", GroupName: q.region})
	}
	sel, aerr := zoneSpec.pick(all, list(q.form, "ZoneName"), filters(q.form))
	if aerr != nil {
		return nil, aerr
	}
	return describeZonesResponse{NS: ec2NS, RequestID: q.id, Zones: sel}, nil
}

// zoneID is a zone's AZ ID (apne1-az4 style): the region's initials and
// a number from the zone's letter.
func zoneID(zone string) string {
	r := RegionOf(zone)
	var b strings.Builder
	for _, part := range strings.Split(r, "-") {
		if part == "" {
			continue
		}
		if c := part[len(part)-1]; c >= '0' && c <= '9' {
			b.WriteString(part[:min(len(part)-1, 2)])
			b.WriteByte(c)
		} else {
			b.WriteString(part[:min(len(part), 2)])
		}
	}
	return b.String() + fmt.Sprintf("-az%d", int(zone[len(zone)-1]-'a')+1)
}

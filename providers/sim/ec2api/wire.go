package ec2api

import (
	"encoding/xml"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EC2 response documents (only the fields fixfleet reads, named as the
// EC2 API's XML names them).

const ec2NS = "http://ec2.amazonaws.com/doc/" + APIVersion + "/"

// RootDevice is the root device name of every emulated Windows instance.
const RootDevice = "/dev/sda1"

// amazonOwner is the owner ID of Amazon's public Windows AMIs.
const amazonOwner = "801119661308"

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xEBS struct {
	VolumeID            string `xml:"volumeId" ec2id:"vol"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime,omitempty"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xBDM struct {
	DeviceName string `xml:"deviceName"`
	EBS        xEBS   `xml:"ebs"`
}

type xPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
}

type xInstance struct {
	InstanceID      string     `xml:"instanceId" ec2id:"i"`
	ImageID         string     `xml:"imageId"`
	State           xState     `xml:"instanceState"`
	InstanceType    string     `xml:"instanceType"`
	LaunchTime      string     `xml:"launchTime,omitempty"`
	Placement       xPlacement `xml:"placement"`
	Platform        string     `xml:"platform,omitempty"`
	PlatformDetails string     `xml:"platformDetails,omitempty"`
	PrivateIP       string     `xml:"privateIpAddress,omitempty"`
	RootDeviceType  string     `xml:"rootDeviceType"`
	RootDeviceName  string     `xml:"rootDeviceName"`
	BDM             []xBDM     `xml:"blockDeviceMapping>item"`
	Tags            []xTag     `xml:"tagSet>item"`
}

type xReservation struct {
	ReservationID string      `xml:"reservationId" ec2id:"r"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName      xml.Name       `xml:"DescribeInstancesResponse"`
	NS           string         `xml:"xmlns,attr"`
	RequestID    string         `xml:"requestId"`
	Reservations []xReservation `xml:"reservationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

type runInstancesResponse struct {
	XMLName xml.Name `xml:"RunInstancesResponse"`
	NS      string   `xml:"xmlns,attr"`
	xReservation
	RequestID string `xml:"requestId"`
}

type xStateChange struct {
	InstanceID    string `xml:"instanceId" ec2id:"i"`
	CurrentState  xState `xml:"currentState"`
	PreviousState xState `xml:"previousState"`
}

type stateChangeResponse struct {
	XMLName   xml.Name
	NS        string         `xml:"xmlns,attr"`
	RequestID string         `xml:"requestId"`
	Instances []xStateChange `xml:"instancesSet>item"`
}

type returnResponse struct {
	XMLName   xml.Name
	NS        string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

type xStatusDetail struct {
	Name   string `xml:"name"`
	Status string `xml:"status"`
}

type xStatusSummary struct {
	Status  string          `xml:"status"`
	Details []xStatusDetail `xml:"details>item"`
}

type xInstanceStatus struct {
	InstanceID     string         `xml:"instanceId" ec2id:"i"`
	State          xState         `xml:"instanceState"`
	InstanceStatus xStatusSummary `xml:"instanceStatus"`
	SystemStatus   xStatusSummary `xml:"systemStatus"`
}

type describeInstanceStatusResponse struct {
	XMLName   xml.Name          `xml:"DescribeInstanceStatusResponse"`
	NS        string            `xml:"xmlns,attr"`
	RequestID string            `xml:"requestId"`
	Statuses  []xInstanceStatus `xml:"instanceStatusSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type consoleOutputResponse struct {
	XMLName    xml.Name `xml:"GetConsoleOutputResponse"`
	NS         string   `xml:"xmlns,attr"`
	RequestID  string   `xml:"requestId"`
	InstanceID string   `xml:"instanceId" ec2id:"i"`
	Timestamp  string   `xml:"timestamp"`
	Output     string   `xml:"output,omitempty"`
}

type xAttachment struct {
	VolumeID            string `xml:"volumeId" ec2id:"vol"`
	InstanceID          string `xml:"instanceId" ec2id:"i"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime,omitempty"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xVolume struct {
	VolumeID         string        `xml:"volumeId" ec2id:"vol"`
	Size             int           `xml:"size"`
	SnapshotID       string        `xml:"snapshotId,omitempty" ec2id:"snap"`
	AvailabilityZone string        `xml:"availabilityZone"`
	Status           string        `xml:"status"`
	CreateTime       string        `xml:"createTime,omitempty"`
	VolumeType       string        `xml:"volumeType"`
	Attachments      []xAttachment `xml:"attachmentSet>item"`
	Tags             []xTag        `xml:"tagSet>item"`
}

type describeVolumesResponse struct {
	XMLName   xml.Name  `xml:"DescribeVolumesResponse"`
	NS        string    `xml:"xmlns,attr"`
	RequestID string    `xml:"requestId"`
	Volumes   []xVolume `xml:"volumeSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

type createVolumeResponse struct {
	XMLName   xml.Name `xml:"CreateVolumeResponse"`
	NS        string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	xVolume
}

type attachmentResponse struct {
	XMLName   xml.Name
	NS        string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	xAttachment
}

type xSnapshot struct {
	SnapshotID  string `xml:"snapshotId" ec2id:"snap"`
	VolumeID    string `xml:"volumeId" ec2id:"vol"`
	Status      string `xml:"status"`
	StartTime   string `xml:"startTime"`
	Progress    string `xml:"progress"`
	OwnerID     string `xml:"ownerId"`
	VolumeSize  int    `xml:"volumeSize"`
	Description string `xml:"description,omitempty"`
	Tags        []xTag `xml:"tagSet>item"`
}

type describeSnapshotsResponse struct {
	XMLName   xml.Name    `xml:"DescribeSnapshotsResponse"`
	NS        string      `xml:"xmlns,attr"`
	RequestID string      `xml:"requestId"`
	Snapshots []xSnapshot `xml:"snapshotSet>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

type createSnapshotResponse struct {
	XMLName   xml.Name `xml:"CreateSnapshotResponse"`
	NS        string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	xSnapshot
}

type xImage struct {
	ImageID         string `xml:"imageId"`
	ImageLocation   string `xml:"imageLocation"`
	State           string `xml:"imageState"`
	OwnerID         string `xml:"imageOwnerId"`
	CreationDate    string `xml:"creationDate"`
	IsPublic        bool   `xml:"isPublic"`
	Architecture    string `xml:"architecture"`
	ImageType       string `xml:"imageType"`
	Platform        string `xml:"platform"`
	PlatformDetails string `xml:"platformDetails"`
	Name            string `xml:"name"`
	Description     string `xml:"description"`
	RootDeviceType  string `xml:"rootDeviceType"`
	RootDeviceName  string `xml:"rootDeviceName"`
	Tags            []xTag `xml:"tagSet>item"`
}

type xZone struct {
	ZoneName    string `xml:"zoneName"`
	ZoneID      string `xml:"zoneId"`
	RegionName  string `xml:"regionName"`
	State       string `xml:"zoneState"`
	ZoneType    string `xml:"zoneType"`
	OptInStatus string `xml:"optInStatus"`
	GroupName   string `xml:"groupName"`
}

type describeZonesResponse struct {
	XMLName   xml.Name `xml:"DescribeAvailabilityZonesResponse"`
	NS        string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	Zones     []xZone  `xml:"availabilityZoneInfo>item"`
}

type describeImagesResponse struct {
	XMLName   xml.Name `xml:"DescribeImagesResponse"`
	NS        string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	Images    []xImage `xml:"imagesSet>item"`
}

// ts formats a time as EC2 does.
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func xtags(m map[string]string) []xTag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	out := make([]xTag, 0, len(keys))
	for _, k := range keys {
		out = append(out, xTag{k, m[k]})
	}
	return out
}

// Query-protocol parameters.

// list reads name.1, name.2, ...
func list(f url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[name+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// filter is one Filter.N.
type filter struct {
	name   string
	values []string
}

func filters(f url.Values) []filter {
	var out []filter
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		n, ok := f[p+".Name"]
		if !ok {
			return out
		}
		out = append(out, filter{name: n[0], values: list(f, p+".Value")})
	}
}

// tagSpecs reads the tags of TagSpecification entries for resource type rt.
func tagSpecs(f url.Values, rt string) map[string]string {
	out := map[string]string{}
	for i := 1; ; i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		t, ok := f[p+".ResourceType"]
		if !ok {
			break
		}
		if t[0] != rt {
			continue
		}
		for j := 1; ; j++ {
			k, ok := f[p+".Tag."+strconv.Itoa(j)+".Key"]
			if !ok {
				break
			}
			out[k[0]] = f.Get(p + ".Tag." + strconv.Itoa(j) + ".Value")
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// glob matches s against an EC2 filter value (`*` and `?` wildcards,
// byte by byte). It backtracks only to the last `*`, so it takes at most
// len(pat)*len(s) steps: a filter with many wildcards cannot stall the
// emulator.
func glob(pat, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0 // the last '*' seen, and where in s its match ends
	for i < len(s) {
		switch {
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case p < len(pat) && (pat[p] == '?' || pat[p] == s[i]):
			p++
			i++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

func anyGlob(pats []string, s string) bool {
	for _, p := range pats {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// matchFilters applies filters to a resource described by attr (filter
// name -> its values; "tag:K" names are looked up in tags). An unknown
// filter name is an error naming the valid ones.
func matchFilters(fs []filter, valid []string, attr func(name string) []string, tags map[string]string) (bool, *apiError) {
	for _, f := range fs {
		if k, ok := strings.CutPrefix(f.name, "tag:"); ok {
			v, has := tags[k]
			if !has || !anyGlob(f.values, v) {
				return false, nil
			}
			continue
		}
		if f.name == "tag-key" {
			hit := false
			for k := range tags {
				hit = hit || anyGlob(f.values, k)
			}
			if !hit {
				return false, nil
			}
			continue
		}
		known := false
		for _, n := range valid {
			known = known || n == f.name
		}
		if !known {
			return false, errf(400, "InvalidParameterValue", "The filter '%s' is invalid (this emulator knows %s, tag:<key>, tag-key)", f.name, strings.Join(valid, ", "))
		}
		hit := false
		for _, v := range attr(f.name) {
			hit = hit || anyGlob(f.values, v)
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

// page slices n items by MaxResults and NextToken (an offset).
func page(f url.Values, n int) (from, to int, next string, err *apiError) {
	if t := f.Get("NextToken"); t != "" {
		i, e := strconv.Atoi(t)
		if e != nil || i < 0 || i > n {
			return 0, 0, "", errf(400, "InvalidParameterValue", "invalid NextToken %q", t)
		}
		from = i
	}
	to = n
	if m := f.Get("MaxResults"); m != "" {
		k, e := strconv.Atoi(m)
		if e != nil || k < 5 || k > 1000 {
			return 0, 0, "", errf(400, "InvalidParameterValue", "MaxResults %q must be 5-1000", m)
		}
		if from+k < n {
			to = from + k
			next = strconv.Itoa(to)
		}
	}
	return from, to, next, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func notFoundIDs(code string, ids []string) *apiError {
	return errf(400, code, "The ID(s) '%s' do not exist", strings.Join(ids, ", "))
}

func boolParam(f url.Values, name string) bool { return strings.EqualFold(f.Get(name), "true") }

func intParam(f url.Values, name string) (int, bool) {
	v, err := strconv.Atoi(f.Get(name))
	return v, err == nil
}

// missing returns the ids, in request order, that are not keys of found.
func missing[V any](ids []string, found map[string]V) []string {
	var out []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// requireIDs is the error code's NotFound error naming the ids that are not
// keys of found, or nil when all are.
func requireIDs[V any](code string, ids []string, found map[string]V) *apiError {
	if m := missing(ids, found); len(m) > 0 {
		return notFoundIDs(code, m)
	}
	return nil
}

// pageOf is the page of sel that q's NextToken and MaxResults ask for, and
// the NextToken of the page after it ("" on the last).
func pageOf[T any](q *request, sel []T) ([]T, string, *apiError) {
	from, to, next, aerr := page(q.form, len(sel))
	if aerr != nil {
		return nil, "", aerr
	}
	return sel[from:to], next, nil
}

// describeSpec is what a Describe* action knows of its resources: the error
// code for requested IDs that do not exist, the filter names it accepts, and
// each resource's ID, filter values and tags.
type describeSpec[T any] struct {
	notFound string
	filters  []string
	id       func(x T) string
	attr     func(x T, filter string) []string
	tags     func(x T) []xTag
}

// pick selects from all the resources a Describe* call asks for: those
// named by ids (every one when ids is empty) that match fs. A requested ID
// not in all is a NotFound error.
func (d describeSpec[T]) pick(all []T, ids []string, fs []filter) ([]T, *apiError) {
	var sel []T
	found := map[string]bool{}
	for _, x := range all {
		id := d.id(x)
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		found[id] = true
		tags := map[string]string{}
		for _, t := range d.tags(x) {
			tags[t.Key] = t.Value
		}
		ok, aerr := matchFilters(fs, d.filters, func(n string) []string { return d.attr(x, n) }, tags)
		if aerr != nil {
			return nil, aerr
		}
		if ok {
			sel = append(sel, x)
		}
	}
	if aerr := requireIDs(d.notFound, ids, found); aerr != nil {
		return nil, aerr
	}
	return sel, nil
}

package ec2api

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"

	"github.com/fixfleet/fixfleet/providers"
)

// dryRunAction is the action a mutating EC2 call performs (for DryRun and
// the world's permissions); "" for a read.
func (s *Server) dryRunAction(q *request) providers.Action {
	switch q.action {
	case "StopInstances":
		return providers.ActStop
	case "StartInstances":
		return providers.ActStart
	case "RebootInstances":
		return providers.ActRestart
	case "CreateSnapshot":
		return providers.ActSnapshot
	case "DetachVolume":
		return providers.ActDetach
	case "AttachVolume":
		return providers.ActAttach
	case "CreateVolume":
		snap := q.form.Get("SnapshotId")
		s.mu.Lock()
		_, isBackup := s.backupVol[snap]
		s.mu.Unlock()
		if isBackup || strings.HasPrefix(snap, "bk-") {
			return providers.ActRestoreBackup
		}
		return providers.ActCreateDisk
	case "RunInstances":
		return providers.ActCreateHelper
	case "TerminateInstances":
		return providers.ActDeleteHelper
	case "DeleteVolume":
		// No providers.Action names a disk delete (readiness does not
		// check it) and the world denies it no account: allowed.
		return ""
	}
	return ""
}

// dryRun answers a call with DryRun=true as EC2 does: DryRunOperation
// (HTTP 412) when the account's credentials allow it, UnauthorizedOperation
// (403) when not. Nothing changes.
func (s *Server) dryRun(ctx context.Context, q *request) *apiError {
	if act := s.dryRunAction(q); act != "" {
		ok, err := s.w.DryRun(ctx, q.account, []providers.Action{act})
		if aerr := fromWorld(err, "Instance", "IncorrectState"); aerr != nil {
			return aerr
		}
		if !ok[0] {
			return errf(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
		}
	}
	return errf(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
}

// emulatorNoQuota is the helper room the emulator reports for an account
// whose world sets no helper quota (EC2 always reports a number).
const emulatorNoQuota = 1000

// describeAccountAttributes answers max-instances: the world account's
// fleet instances plus its helper quota, so that max-instances minus the
// running instances is the room for helpers.
func (s *Server) describeAccountAttributes(ctx context.Context, q *request) (any, *apiError) {
	limit, _, err := s.w.HelperQuota(ctx, q.account)
	if aerr := fromWorld(err, "Instance", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	vms, err := s.w.ListVMs(ctx, q.account, nil)
	if aerr := fromWorld(err, "Instance", "IncorrectState"); aerr != nil {
		return nil, aerr
	}
	if limit == 0 {
		limit = emulatorNoQuota
	}
	out := describeAccountAttributesResponse{NS: ec2NS, RequestID: q.id}
	want := q.form.Get("AttributeName.1")
	if want == "" || want == "max-instances" {
		out.Attributes = []xAccountAttribute{{Name: "max-instances",
			Values: []xAttributeValue{{Value: strconv.Itoa(len(vms) + limit)}}}}
	}
	return out, nil
}

type describeAccountAttributesResponse struct {
	XMLName    xml.Name            `xml:"DescribeAccountAttributesResponse"`
	NS         string              `xml:"xmlns,attr"`
	RequestID  string              `xml:"requestId"`
	Attributes []xAccountAttribute `xml:"accountAttributeSet>item"`
}

type xAccountAttribute struct {
	Name   string            `xml:"attributeName"`
	Values []xAttributeValue `xml:"attributeValueSet>item"`
}

type xAttributeValue struct {
	Value string `xml:"attributeValue"`
}

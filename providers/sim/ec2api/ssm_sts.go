package ec2api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
)

// SSMBucket is the emulator's bucket for SSM calls (SSM does not publish
// per-API limits the way EC2 does; this is in their order of magnitude).
var SSMBucket = timing.Bucket{Size: 40, Refill: 10}

// platformVersion is the Windows kernel version SSM reports per release.
var platformVersion = map[string]string{
	"2012R2": "6.3.9600", "2016": "10.0.14393", "2019": "10.0.17763", "2022": "10.0.20348", "2025": "10.0.26100",
}

type ssmFilter struct {
	Key    string   `json:"Key"`
	Values []string `json:"Values"`
}

type ssmInfoFilter struct {
	Key      string   `json:"key"`
	ValueSet []string `json:"valueSet"`
}

type ssmRequest struct {
	Filters                       []ssmFilter     `json:"Filters"`
	InstanceInformationFilterList []ssmInfoFilter `json:"InstanceInformationFilterList"`
	MaxResults                    int             `json:"MaxResults"`
	NextToken                     string          `json:"NextToken"`
}

type ssmInstance struct {
	InstanceID       string  `json:"InstanceId" ec2id:"i"`
	PingStatus       string  `json:"PingStatus"`
	LastPingDateTime float64 `json:"LastPingDateTime"`
	PlatformType     string  `json:"PlatformType"`
	PlatformName     string  `json:"PlatformName"`
	PlatformVersion  string  `json:"PlatformVersion"`
	IPAddress        string  `json:"IPAddress,omitempty"`
	ResourceType     string  `json:"ResourceType"`
	AgentVersion     string  `json:"AgentVersion"`
}

type ssmResponse struct {
	InstanceInformationList []ssmInstance `json:"InstanceInformationList"`
	NextToken               string        `json:"NextToken,omitempty"`
}

// serveSSM answers SSM's JSON 1.1 protocol: DescribeInstanceInformation.
// An instance is Online when it runs and its guest is reachable.
func (s *Server) serveSSM(rw http.ResponseWriter, ctx context.Context, q *request) {
	if q.action != "DescribeInstanceInformation" {
		s.fail(rw, q, errf(400, "InvalidAction", "the emulator serves only AmazonSSM.DescribeInstanceInformation"))
		return
	}
	if s.opts.SSMUnavailable {
		s.fail(rw, q, errf(500, "InternalServerError", "the SSM service is unavailable"))
		return
	}
	if !s.throttle(q, "ssm", SSMBucket) {
		s.fail(rw, q, errf(400, "ThrottlingException", "Rate exceeded"))
		return
	}
	var in ssmRequest
	if len(q.body) > 0 {
		if err := json.Unmarshal(q.body, &in); err != nil {
			s.fail(rw, q, errf(400, "ValidationException", "malformed JSON body"))
			return
		}
	}
	var ids []string
	for _, f := range in.Filters {
		if f.Key != "InstanceIds" {
			s.fail(rw, q, errf(400, "InvalidFilterKey", "the emulator supports the InstanceIds filter only"))
			return
		}
		for _, v := range f.Values {
			ids = append(ids, s.ids.in(v))
		}
	}
	for _, f := range in.InstanceInformationFilterList {
		if f.Key != "InstanceIds" {
			s.fail(rw, q, errf(400, "InvalidFilterKey", "the emulator supports the InstanceIds filter only"))
			return
		}
		for _, v := range f.ValueSet {
			ids = append(ids, s.ids.in(v))
		}
	}
	all, aerr := s.instances(ctx, q)
	if aerr != nil {
		s.fail(rw, q, aerr)
		return
	}
	rel := map[string]xInstance{}
	var scope []string
	for _, x := range all {
		rel[x.InstanceID] = x
		if len(ids) == 0 {
			scope = append(scope, x.InstanceID)
		}
	}
	for _, id := range ids {
		if _, ok := rel[id]; ok {
			scope = append(scope, id)
		}
	}
	sig, err := s.w.Observe(ctx, q.account, scope)
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		s.fail(rw, q, aerr)
		return
	}
	out := ssmResponse{InstanceInformationList: []ssmInstance{}}
	for _, id := range scope {
		x, sg := rel[id], sig[id]
		s.mu.Lock()
		r := s.amiRelease[x.ImageID]
		s.mu.Unlock()
		ping := "ConnectionLost"
		if sg.Power == inventory.PowerRunning && sg.InstanceReachable != nil && *sg.InstanceReachable {
			ping = "Online"
		}
		out.InstanceInformationList = append(out.InstanceInformationList, ssmInstance{InstanceID: id, PingStatus: ping,
			LastPingDateTime: float64(sg.At.Unix()), PlatformType: "Windows", PlatformName: "Microsoft Windows Server " + r + " Datacenter",
			PlatformVersion: platformVersion[r], IPAddress: x.PrivateIP, ResourceType: "EC2Instance", AgentVersion: "3.3.551.0"})
	}
	rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
	rw.Header().Set("X-Amzn-Requestid", q.id)
	_ = json.NewEncoder(rw).Encode(s.ids.exported(out))
}

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

type stsMeta struct {
	RequestID string `xml:"RequestId"`
}

type callerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	NS      string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	Meta stsMeta `xml:"ResponseMetadata"`
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	NS      string   `xml:"xmlns,attr"`
	Result  struct {
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		} `xml:"Credentials"`
		User struct {
			Arn string `xml:"Arn"`
			ID  string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	Meta stsMeta `xml:"ResponseMetadata"`
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// sts answers GetCallerIdentity and AssumeRole.
func (s *Server) sts(q *request) (any, *apiError) {
	switch q.action {
	case "GetCallerIdentity":
		var out callerIdentityResponse
		out.NS = stsNS
		out.Result.Account = AccountID(q.account)
		out.Result.Arn = "arn:aws:iam::" + out.Result.Account + ":user/" + q.account
		out.Result.UserID = "AIDA" + strings.ToUpper(hex.EncodeToString([]byte(q.account)))
		out.Meta.RequestID = q.id
		return out, nil
	case "AssumeRole":
		arn := q.form.Get("RoleArn")
		parts := strings.Split(arn, ":")
		if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
			return nil, errf(400, "ValidationError", "RoleArn %q is not a role ARN (arn:aws:iam::<account-id>:role/<name>)", arn)
		}
		acct, ok := s.acctIDs[parts[4]]
		if !ok {
			return nil, errf(403, "AccessDenied", "not authorized to perform sts:AssumeRole on %s", arn)
		}
		if s.opts.ExternalID != "" && q.form.Get("ExternalId") != s.opts.ExternalID {
			return nil, errf(403, "AccessDenied", "not authorized to perform sts:AssumeRole on %s (external ID)", arn)
		}
		var out assumeRoleResponse
		out.NS = stsNS
		key := "ASIA" + randHex(8)
		out.Result.Credentials.AccessKeyID = key
		out.Result.Credentials.SecretAccessKey = randHex(20)
		out.Result.Credentials.SessionToken = randHex(32)
		// The SDK caches temporary credentials against the wall clock.
		out.Result.Credentials.Expiration = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		out.Result.User.Arn = "arn:aws:sts::" + parts[4] + ":assumed-role/" + strings.TrimPrefix(parts[5], "role/") + "/" + q.form.Get("RoleSessionName")
		out.Result.User.ID = "AROA" + randHex(8)
		out.Meta.RequestID = q.id
		s.mu.Lock()
		s.tempKeys[key] = acct
		s.mu.Unlock()
		return out, nil
	}
	return nil, errf(400, "InvalidAction", "the emulator serves STS GetCallerIdentity and AssumeRole only")
}

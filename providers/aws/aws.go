// Package aws is fixfleet's Amazon EC2 provider, on aws-sdk-go-v2 (ec2,
// ssm, sts). One provider serves one account (a shared-config profile
// and/or a role to assume) across its regions.
//
// It adds to the SDK what an incident needs: its own token buckets per
// account, region and EC2 throttling bucket (the published sizes and
// refills in inventory/timing), waited on before every call on the
// caller's clock (internal/pace: the calls of one instant in order of
// operation and resource); the SDK's standard retry mode, with a backoff
// whose jitter is keyed rather than drawn (backoff), for the rest; batching
// (one StopInstances or StartInstances call for many instances; Describe*
// with up to 200 filter values); classified errors naming the resource;
// and waiting on the real state of every asynchronous operation.
//
// Guest access is WinRM (the private IP, port 5985); SSM Run Command is not
// used (see docs/providers/aws.md). Only this package (and the CLI's
// registry wiring) imports aws-sdk-go-v2's ec2: it is expensive to build.
package aws

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
)

// Name is the provider name to register under.
const Name = "aws"

// Options are an account's fleet.yaml options. Every key is optional.
type Options struct {
	// Profile is a shared-config profile (~/.aws/config) to load.
	Profile string `yaml:"profile"`
	// RoleARN is a role to assume in the account (an MSP: one role per
	// customer account), with the ExternalID the role's trust policy asks
	// for and a session name (default "fixfleet").
	RoleARN     string `yaml:"role_arn"`
	ExternalID  string `yaml:"external_id"`
	SessionName string `yaml:"session_name"`
	// Endpoint overrides the EC2, SSM and STS endpoints (a drill against
	// an emulator: "http://127.0.0.1:8781").
	Endpoint string `yaml:"endpoint"`
	// AccessKeyIDEnv, SecretAccessKeyEnv and SessionTokenEnv name
	// environment variables holding static credentials (read through
	// providers.Env.Getenv; the values are never logged). Without them
	// the SDK's default chain (env, profile, SSO, instance role) applies.
	AccessKeyIDEnv     string `yaml:"access_key_id_env"`
	SecretAccessKeyEnv string `yaml:"secret_access_key_env"`
	SessionTokenEnv    string `yaml:"session_token_env"`
	// NoSSM turns SSM DescribeInstanceInformation off (Windows version
	// fallback and agent ping as a reachability hint).
	NoSSM bool `yaml:"no_ssm"`
	// HelperInstanceType is the helpers' instance type (default m5.large).
	HelperInstanceType string `yaml:"helper_instance_type"`
	// HelperSubnets maps a zone to the subnet helpers launch in (default:
	// the zone's default subnet).
	HelperSubnets map[string]string `yaml:"helper_subnets"`
	// HelperSecurityGroups are the helpers' security groups (WinRM 5985
	// from where fixfleet runs).
	HelperSecurityGroups []string `yaml:"helper_security_groups"`
	// HelperImages maps a Windows release ("2019") to a golden AMI ID to
	// launch helpers from, instead of Amazon's newest
	// Windows_Server-<release>-English-Full-Base image.
	HelperImages map[string]string `yaml:"helper_images"`
	// PollInterval is how often asynchronous operations are looked at, on
	// the provider's clock (default 5s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// RetryMaxAttempts and RetryMaxBackoff tune the SDK's standard retry
	// mode (defaults 5 and 20s; the backoff sleeps on the time package's
	// clock, the fake one inside a testing/synctest bubble).
	RetryMaxAttempts int           `yaml:"retry_max_attempts"`
	RetryMaxBackoff  time.Duration `yaml:"retry_max_backoff"`
}

// OptionKeys are the valid option keys.
var optionKeys = []string{"profile", "role_arn", "external_id", "session_name", "endpoint", "access_key_id_env",
	"secret_access_key_env", "session_token_env", "no_ssm", "helper_instance_type", "helper_subnets",
	"helper_security_groups", "helper_images", "poll_interval", "retry_max_attempts", "retry_max_backoff"}

// OptionKeys returns the valid option keys.
func OptionKeys() []string { return slices.Clone(optionKeys) }

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$`)
	roleRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
)

// ParseOptions decodes an account's options strictly: unknown keys are
// errors that list the valid ones.
func ParseOptions(n *yaml.Node) (Options, error) {
	var o Options
	if n == nil || n.Kind == 0 {
		return o, nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return o, fmt.Errorf("options: must be a mapping with keys %s", strings.Join(optionKeys, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(optionKeys, k) {
			return o, fmt.Errorf("options: unknown key %q; valid keys are %s", k, strings.Join(optionKeys, ", "))
		}
	}
	if err := n.Decode(&o); err != nil {
		return o, fmt.Errorf("options: %w", err)
	}
	switch {
	case o.RoleARN != "" && !roleRE.MatchString(o.RoleARN):
		return o, fmt.Errorf("options.role_arn: %q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)", o.RoleARN)
	case o.ExternalID != "" && o.RoleARN == "":
		return o, fmt.Errorf("options.external_id: needs role_arn")
	case o.Endpoint != "" && !strings.HasPrefix(o.Endpoint, "http://") && !strings.HasPrefix(o.Endpoint, "https://"):
		return o, fmt.Errorf("options.endpoint: %q must be an http:// or https:// URL", o.Endpoint)
	case (o.AccessKeyIDEnv == "") != (o.SecretAccessKeyEnv == ""):
		return o, fmt.Errorf("options: access_key_id_env and secret_access_key_env go together")
	case o.PollInterval < 0 || o.RetryMaxBackoff < 0 || o.RetryMaxAttempts < 0:
		return o, fmt.Errorf("options: poll_interval, retry_max_backoff and retry_max_attempts must not be negative")
	}
	return o, nil
}

// RegionOf is the region of an availability zone (ap-northeast-1a ->
// ap-northeast-1); a region is returned as is.
func RegionOf(zone string) string {
	if n := len(zone); n > 1 && zone[n-1] >= 'a' && zone[n-1] <= 'z' && zone[n-2] >= '0' && zone[n-2] <= '9' {
		return zone[:n-1]
	}
	return zone
}

// regions returns the account's regions: the given ones, else those of its
// zones.
func regions(a providers.Account) []string {
	out := slices.Clone(a.Regions)
	for _, z := range a.Zones {
		if r := RegionOf(z); !slices.Contains(out, r) && len(a.Regions) == 0 {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// Validate checks an account offline: regions look like AWS regions,
// zones belong to them, options are known and well formed.
func Validate(a providers.Account) error {
	if len(a.Regions) == 0 && len(a.Zones) == 0 {
		return fmt.Errorf("regions: give at least one AWS region (e.g. ap-northeast-1) or zone")
	}
	for _, r := range a.Regions {
		if !regionRE.MatchString(r) {
			return fmt.Errorf("regions: %q is not an AWS region name (e.g. us-east-1, ap-northeast-1)", r)
		}
	}
	o, err := ParseOptions(a.Options)
	if err != nil {
		return err
	}
	for _, r := range regions(a) {
		if !slices.Contains(KnownRegions, r) && o.Endpoint == "" {
			return fmt.Errorf("regions: %q is not an AWS region this version of fixfleet knows (a typo?); known regions are %s "+
				"(for a region newer than this list, set options.endpoint to its EC2 endpoint)", r, strings.Join(KnownRegions, ", "))
		}
	}
	for _, z := range a.Zones {
		r := RegionOf(z)
		if r == z || !regionRE.MatchString(r) {
			return fmt.Errorf("zones: %q is not an AWS availability zone name (e.g. ap-northeast-1a)", z)
		}
		if len(a.Regions) > 0 && !slices.Contains(a.Regions, r) {
			return fmt.Errorf("zones: %q is in region %s, which is not among regions %s", z, r, strings.Join(a.Regions, ", "))
		}
	}
	return nil
}

// KnownRegions are the AWS regions Validate accepts without an endpoint
// option: the commercial, GovCloud and China regions as of 2025.
var KnownRegions = []string{
	"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
	"ap-southeast-5", "ap-southeast-7", "ca-central-1", "ca-west-1", "cn-north-1", "cn-northwest-1",
	"eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2",
	"eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1",
	"us-east-1", "us-east-2", "us-gov-east-1", "us-gov-west-1", "us-west-1", "us-west-2",
}

// Spec returns the registry entry of the AWS provider.
func Spec() providers.Spec {
	return providers.Spec{Validate: Validate, Open: Open}
}

// Package azure is fixfleet's Microsoft Azure provider, on azure-sdk-for-go
// (armcompute v8, azcore, azidentity). One provider serves one account: a
// tenant and one or more of its subscriptions (or, through Azure
// Lighthouse, customers' subscriptions delegated to the tenant).
//
// It adds to the SDK what an incident needs: its own token buckets per
// subscription after ARM's published ones (reads, writes, deletes), waited
// on before every call on the caller's clock; 429 answers retried after
// their Retry-After, on that clock; the SDK's pollers for long-running
// operations, polled on that clock; and classified errors naming the
// resource. The SDK's own retries are off: a 5xx or a dropped connection
// surfaces as ErrUnavailable, for the caller to re-read state.
//
// An Azure VM's OS disk cannot be detached: Disks.Detach and Disks.Attach
// refuse it, and the provider's Disks also implements
// providers.OSDiskSwapper (copy and swap, as `az vm repair` does).
//
// Guest access is WinRM to the VM's primary private address. Only this
// package (and the CLI's registry wiring) imports the Azure SDK: it is
// expensive to build.
package azure

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
)

// Name is the provider name to register under.
const Name = "azure"

// Options are an account's fleet.yaml options.
type Options struct {
	// TenantID is the Entra ID tenant to authenticate in (for an MSP on
	// Lighthouse: the MSP's own tenant). Empty: the credential's default.
	TenantID string `yaml:"tenant_id"`
	// Subscriptions are the subscription IDs the account covers
	// (required, at least one).
	Subscriptions []string `yaml:"subscriptions"`
	// ResourceGroup is where fixfleet creates snapshots, disk copies and
	// helpers, in each subscription (default "fixfleet-repair"; it must
	// exist).
	ResourceGroup string `yaml:"resource_group"`
	// HelperSubscription is the subscription helpers are created in
	// (default: the first of Subscriptions). A disk attaches only to a VM
	// of its own subscription: repair each subscription as its own account.
	HelperSubscription string `yaml:"helper_subscription"`
	// HelperVMSize is the helpers' size (default Standard_D2s_v5).
	HelperVMSize string `yaml:"helper_vm_size"`
	// HelperSubnets maps a location ("japaneast") to the subnet resource
	// ID helpers get their NIC in (WinRM 5985 reachable from fixfleet).
	HelperSubnets map[string]string `yaml:"helper_subnets"`
	// HelperAdminUser and HelperPasswordEnv are the helpers' local
	// administrator and the environment variable holding its password
	// (read through providers.Env.Getenv, never logged).
	HelperAdminUser   string `yaml:"helper_admin_user"`
	HelperPasswordEnv string `yaml:"helper_password_env"`
	// PollInterval is the longest wait between two looks at a
	// long-running operation, on the provider's clock (default 5s; a
	// shorter Retry-After from Azure wins).
	PollInterval time.Duration `yaml:"poll_interval"`
	// RetryMaxAttempts bounds the attempts of a throttled (429) call
	// (default 5).
	RetryMaxAttempts int `yaml:"retry_max_attempts"`
	// Concurrency bounds the calls one multi-VM operation (Observe, Stop,
	// Start) makes at once (default 16).
	Concurrency int `yaml:"concurrency"`
	// ResourceManagerEndpoint and AuthorityHost name another cloud than
	// Azure's public one (a sovereign cloud, Azure Stack, or a drill's
	// emulator): ARM's URL and Microsoft Entra ID's authority host, both
	// https and both given or neither. Default: the public cloud.
	ResourceManagerEndpoint string `yaml:"resource_manager_endpoint"`
	AuthorityHost           string `yaml:"authority_host"`
	// CAFile is a PEM file of certificates to trust besides the system's
	// (a TLS-inspecting proxy's, or a drill emulator's).
	CAFile string `yaml:"ca_file"`
}

var optionKeys = []string{"tenant_id", "subscriptions", "resource_group", "helper_subscription", "helper_vm_size",
	"helper_subnets", "helper_admin_user", "helper_password_env", "poll_interval", "retry_max_attempts", "concurrency",
	"resource_manager_endpoint", "authority_host", "ca_file"}

// OptionKeys returns the valid option keys.
func OptionKeys() []string { return slices.Clone(optionKeys) }

var (
	guidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	locationRE = regexp.MustCompile(`^[a-z]+[a-z0-9]*$`)
	zoneRE     = regexp.MustCompile(`^([a-z]+[a-z0-9]*)-([1-9])$`)
	rgRE       = regexp.MustCompile(`^[-\w._()]{1,90}$`)
)

// ParseOptions decodes an account's options strictly: unknown keys are
// errors that list the valid ones.
func ParseOptions(n *yaml.Node) (Options, error) {
	var o Options
	if n == nil || n.Kind == 0 {
		return o, fmt.Errorf("options: give subscriptions (the subscription IDs to cover: `az account list --query [].id`); valid keys are %s", strings.Join(optionKeys, ", "))
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
	if len(o.Subscriptions) == 0 {
		return o, fmt.Errorf("options.subscriptions: give at least one subscription ID (a GUID, see `az account list`)")
	}
	for _, s := range o.Subscriptions {
		if !guidRE.MatchString(s) {
			return o, fmt.Errorf("options.subscriptions: %q is not a subscription ID (a GUID such as 00000000-0000-0000-0000-000000000000)", s)
		}
	}
	switch {
	case o.TenantID != "" && !guidRE.MatchString(o.TenantID):
		return o, fmt.Errorf("options.tenant_id: %q is not a tenant ID (a GUID, see `az account show --query tenantId`)", o.TenantID)
	case o.HelperSubscription != "" && !slices.Contains(o.Subscriptions, o.HelperSubscription):
		return o, fmt.Errorf("options.helper_subscription: %q is not one of subscriptions", o.HelperSubscription)
	case o.ResourceGroup != "" && !rgRE.MatchString(o.ResourceGroup):
		return o, fmt.Errorf("options.resource_group: %q is not a resource group name", o.ResourceGroup)
	case o.PollInterval < 0 || o.RetryMaxAttempts < 0 || o.Concurrency < 0:
		return o, fmt.Errorf("options: poll_interval, retry_max_attempts and concurrency must not be negative")
	case (o.HelperAdminUser == "") != (o.HelperPasswordEnv == ""):
		return o, fmt.Errorf("options: helper_admin_user and helper_password_env go together")
	case (o.ResourceManagerEndpoint == "") != (o.AuthorityHost == ""):
		return o, fmt.Errorf("options: resource_manager_endpoint and authority_host go together (another cloud than Azure's public one)")
	}
	for k, v := range map[string]string{"resource_manager_endpoint": o.ResourceManagerEndpoint, "authority_host": o.AuthorityHost} {
		if u, err := url.Parse(v); v != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
			return o, fmt.Errorf("options.%s: %q is not an https URL (e.g. https://management.chinacloudapi.cn)", k, v)
		}
	}
	for loc, id := range o.HelperSubnets {
		if !locationRE.MatchString(loc) {
			return o, fmt.Errorf("options.helper_subnets: %q is not an Azure location name (e.g. japaneast)", loc)
		}
		if _, err := parseID(id); err != nil || !strings.Contains(strings.ToLower(id), "/subnets/") {
			return o, fmt.Errorf("options.helper_subnets.%s: %q is not a subnet resource ID (/subscriptions/…/virtualNetworks/…/subnets/…)", loc, id)
		}
	}
	return o, nil
}

// withDefaults fills the defaults in.
func (o Options) withDefaults() Options {
	if o.ResourceGroup == "" {
		o.ResourceGroup = "fixfleet-repair"
	}
	if o.HelperSubscription == "" {
		o.HelperSubscription = o.Subscriptions[0]
	}
	if o.HelperVMSize == "" {
		o.HelperVMSize = "Standard_D2s_v5"
	}
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.RetryMaxAttempts == 0 {
		o.RetryMaxAttempts = 5
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	return o
}

// SplitZone splits a zone as fleet.yaml names it ("japaneast-1") into the
// Azure location and availability zone.
func SplitZone(z string) (location, zone string, ok bool) {
	m := zoneRE.FindStringSubmatch(z)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// Validate checks an account offline: locations and zones look like
// Azure's, zones belong to the locations, options are known and well
// formed.
func Validate(a providers.Account) error {
	for _, r := range a.Regions {
		if !locationRE.MatchString(r) {
			return fmt.Errorf("regions: %q is not an Azure location name (e.g. japaneast, westeurope)", r)
		}
	}
	for _, z := range a.Zones {
		loc, _, ok := SplitZone(z)
		if !ok {
			return fmt.Errorf("zones: %q is not <location>-<zone> (e.g. japaneast-1)", z)
		}
		if len(a.Regions) > 0 && !slices.Contains(a.Regions, loc) {
			return fmt.Errorf("zones: %q is in location %s, which is not among regions %s", z, loc, strings.Join(a.Regions, ", "))
		}
	}
	_, err := ParseOptions(a.Options)
	return err
}

// Spec returns the registry entry of the Azure provider (production
// credentials: DefaultAzureCredential).
func Spec() providers.Spec {
	return providers.Spec{Validate: Validate, Open: Open}
}

// SpecWith returns a registry entry that opens accounts through c (the
// simulated world's ARM emulator and its test credential).
func SpecWith(c Connection) providers.Spec {
	return providers.Spec{Validate: Validate, Open: func(ctx context.Context, a providers.Account, env providers.Env) (*providers.Provider, error) {
		return OpenWith(ctx, a, env, c)
	}}
}

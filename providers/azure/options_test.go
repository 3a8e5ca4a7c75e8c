package azure

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
)

// TestValidate: bad accounts get an error naming the field and saying what
// is expected; good ones pass.
func TestValidate(t *testing.T) {
	const sub = "subscriptions: [0b1f6471-1bf0-4dda-aec3-111122223333]\n"
	for _, c := range []struct {
		name, options string
		regions       []string
		zones         []string
		want          string // substring of the error; "" for none
	}{
		{"minimal", sub, []string{"japaneast"}, nil, ""},
		{"zones", sub, []string{"japaneast"}, []string{"japaneast-1", "japaneast-3"}, ""},
		{"no options", "", nil, nil, "options: give subscriptions"},
		{"bad subscription", "subscriptions: [prod]\n", nil, nil, `options.subscriptions: "prod" is not a subscription ID`},
		{"unknown key", sub + "region: x\n", nil, nil, `unknown key "region"; valid keys are tenant_id`},
		{"bad tenant", sub + "tenant_id: contoso\n", nil, nil, "options.tenant_id"},
		{"helper sub elsewhere", sub + "helper_subscription: 0b1f6471-1bf0-4dda-aec3-999999999999\n", nil, nil, "options.helper_subscription"},
		{"password without user", sub + "helper_password_env: PW\n", nil, nil, "helper_admin_user and helper_password_env go together"},
		{"bad subnet", sub + "helper_subnets: {japaneast: subnet-1}\n", nil, nil, "options.helper_subnets.japaneast"},
		{"sovereign cloud", sub + "resource_manager_endpoint: https://management.chinacloudapi.cn\nauthority_host: https://login.chinacloudapi.cn/\n", nil, nil, ""},
		{"endpoint without authority", sub + "resource_manager_endpoint: https://management.chinacloudapi.cn\n", nil, nil, "go together"},
		{"plain-HTTP endpoint", sub + "resource_manager_endpoint: http://arm.local\nauthority_host: https://login.local\n", nil, nil, "options.resource_manager_endpoint"},
		{"bad region", sub, []string{"Japan East"}, nil, `regions: "Japan East" is not an Azure location`},
		{"bad zone", sub, nil, []string{"japaneast-a"}, `zones: "japaneast-a" is not <location>-<zone>`},
		{"zone outside regions", sub, []string{"westeurope"}, []string{"japaneast-1"}, "not among regions"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := providers.Account{Tenant: "t", Name: "a", Provider: Name, Regions: c.regions, Zones: c.zones}
			if c.options != "" {
				var n yaml.Node
				if err := yaml.Unmarshal([]byte(c.options), &n); err != nil {
					t.Fatal(err)
				}
				a.Options = &n
			}
			err := Validate(a)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Validate: %v, want an error with %q", err, c.want)
			}
		})
	}
}

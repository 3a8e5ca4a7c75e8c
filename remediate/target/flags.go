package target

import (
	"fmt"

	"github.com/spf13/pflag"
)

// Flags are the targeting flags of a command: --tenant, --account,
// --only, --exclude (each repeatable, or comma-separated) and --selector.
type Flags struct {
	s        Selector
	selector string
}

// Add registers the flags on fs.
func (f *Flags) Add(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.s.Tenants, "tenant", nil, "only this tenant's accounts (repeatable)")
	fs.StringSliceVar(&f.s.Accounts, "account", nil, "only this account, NAME or TENANT/NAME (repeatable)")
	fs.StringSliceVar(&f.s.Only, "only", nil, "only this VM, by ID or name (repeatable)")
	fs.StringSliceVar(&f.s.Exclude, "exclude", nil, "never this VM, by ID or name (repeatable)")
	fs.StringVar(&f.selector, "selector", "", "only VMs with all these tags, key=value,... (e.g. role=web,env=prod)")
}

// Selector is the selection the flags give; a bad --selector is an *Error.
func (f *Flags) Selector() (Selector, error) {
	s := f.s
	if f.selector != "" {
		tags, err := ParseTags(f.selector)
		if err != nil {
			return s, &Error{fmt.Errorf("--selector: %w", err)}
		}
		s.Tags = tags
	}
	return s, nil
}

// Package invdoc is the inventory document: what `fixfleet inventory
// --format json` writes and `fixfleet sim from-inventory` reads, a
// versioned JSON format (Version; docs/inventory-format.md) that exports
// from other tools can be converted to. It holds no secret: no password,
// no recovery key, only whether the key source holds a VM's key.
package invdoc

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
)

// Version is the format this package writes and reads.
const Version = "fixfleet.inventory/v1"

// Document is an inventory export.
type Document struct {
	Version     string                  `json:"version"`
	GeneratedAt time.Time               `json:"generated_at"`
	Incident    string                  `json:"incident"`
	ByState     map[inventory.State]int `json:"by_state"`
	Accounts    []Account               `json:"accounts"`
	VMs         []VM                    `json:"vms"`
	// Skipped are the accounts that could not be assessed, and why.
	Skipped []classify.SkippedAccount `json:"skipped_accounts,omitempty"`
}

// Account is one account scope: its provider's capabilities and where
// helpers can be created.
type Account struct {
	Tenant       string                  `json:"tenant"`
	Account      string                  `json:"account"`
	Provider     string                  `json:"provider"`
	Capabilities []string                `json:"capabilities"`
	HelperImages []providers.HelperImage `json:"helper_images"`
}

// VM is one VM with its verdict and evidence.
type VM struct {
	ID    string          `json:"id"`
	State inventory.State `json:"state"`
	inventory.VM
	// KeyInSource says, for a BitLocker OS disk, whether the configured
	// key source holds its recovery key (never the key itself).
	KeyInSource *bool                `json:"key_in_source,omitempty"`
	Reasons     []string             `json:"reasons"`
	BadFiles    []inventory.FileFact `json:"bad_files,omitempty"`
	Evidence    inventory.Evidence   `json:"evidence"`
}

// KeyChecker tells whether the key source holds a recovery key.
type KeyChecker interface{ HasKey(keyID string) bool }

// Build makes the document of an assessed fleet; keys may be nil (no key
// source).
func Build(a *classify.Fleet, at time.Time, incident string, keys KeyChecker) Document {
	d := Document{Version: Version, GeneratedAt: at.UTC(), Incident: incident, ByState: map[inventory.State]int{},
		Accounts: []Account{}, VMs: []VM{}, Skipped: a.Skipped}
	for _, x := range a.Accounts {
		d.Accounts = append(d.Accounts, Account{Tenant: x.Account.Tenant, Account: x.Account.Name, Provider: x.Account.Provider,
			Capabilities: x.Capabilities, HelperImages: x.Helpers})
	}
	for _, x := range a.VMs {
		c := x.Classification
		d.ByState[c.State]++
		v := VM{ID: x.VM.ID, State: c.State, VM: x.VM, Reasons: c.Reasons, BadFiles: c.BadFiles, Evidence: c.Evidence}
		if enc := x.VM.OSDisk.Encryption; enc.BitLocker {
			has := keys != nil && enc.KeyID != "" && keys.HasKey(enc.KeyID)
			v.KeyInSource = &has
		}
		d.VMs = append(d.VMs, v)
	}
	return d
}

// Read decodes a document strictly: unknown fields and another version
// are errors that say so.
func Read(r io.Reader) (Document, error) {
	var d Document
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("inventory document: %w", err)
	}
	if d.Version != Version {
		return Document{}, fmt.Errorf("inventory document: version %q: this fixfleet reads %q (export it again with `fixfleet inventory --format json`)", d.Version, Version)
	}
	for i, v := range d.VMs {
		if v.ID == "" || v.Zone == "" || !v.State.Valid() {
			return Document{}, fmt.Errorf("inventory document: vms[%d] (%q): id, zone and a state (%v) are required", i, v.ID, inventory.States)
		}
	}
	return d, nil
}

package report

import (
	"context"

	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// KeptDisk is a VM's original OS disk that a repair replaced and kept,
// detached (copy-and-swap, restore-backup): rolling the VM back is putting
// that disk back.
type KeptDisk struct {
	Tenant   string          `json:"tenant"`
	Account  string          `json:"account"`
	VM       string          `json:"vm"`
	Name     string          `json:"name"`
	Strategy policy.Strategy `json:"strategy"`
	Disk     string          `json:"original_disk_id"`
}

// FactReader reads a VM's facts in a run, the value recorded last per key
// (journal.Journal.Facts).
type FactReader interface {
	Facts(ctx context.Context, runID, vmKey string) (map[string]string, error)
}

// KeptDisks lists, in the run's VM order, the original OS disks the run's
// repairs replaced and kept: every VM with the journal fact
// original_disk_id.
func KeptDisks(ctx context.Context, fr FactReader, res *apply.Result) ([]KeptDisk, error) {
	var out []KeptDisk
	for _, v := range res.VMs {
		facts, err := fr.Facts(ctx, res.RunID, v.Key)
		if err != nil {
			return nil, err
		}
		if id := facts[string(strategy.FactOriginalDiskID)]; id != "" {
			out = append(out, KeptDisk{Tenant: v.Tenant, Account: v.Account, VM: v.Key, Name: v.Name, Strategy: v.Strategy, Disk: id})
		}
	}
	return out, nil
}

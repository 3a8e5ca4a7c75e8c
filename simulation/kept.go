package simulation

import (
	"context"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// KeptDisk is a VM's original OS disk that a repair replaced and kept
// (copy-and-swap, restore-backup): rolling back is putting it back.
type KeptDisk struct {
	VM   string `json:"vm"`
	Disk string `json:"disk"`
	// Present says the world still has the disk (it must).
	Present bool `json:"present"`
}

// keptDisks lists, from the journal's facts of run runID, the original OS
// disks the repairs replaced, and whether the world (in this process)
// still holds each.
func (b *Backend) keptDisks(ctx context.Context, j *journal.Journal, runID string, p *plan.Plan) ([]KeptDisk, error) {
	out := []KeptDisk{}
	for _, v := range p.VMs {
		facts, err := j.Facts(ctx, runID, v.Key)
		if err != nil {
			return nil, err
		}
		id := facts[string(strategy.FactOriginalDiskID)]
		if id == "" {
			continue
		}
		k := KeptDisk{VM: v.ID, Disk: id}
		if b.world != nil {
			_, k.Present = b.world.DiskGeneration(v.Account, b.worldID(id))
		}
		out = append(out, k)
	}
	return out, nil
}

package simulation

import (
	"fmt"
	"os"

	"github.com/fixfleet/fixfleet/inventory/invdoc"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// ExportScenario is the world o describes, frozen at its start, as a
// scenario file (`sim export`): every VM with its true condition and
// everything needed to rebuild it, newline-terminated. A bad option is
// an *InputError.
func ExportScenario(o WorldOptions) ([]byte, error) {
	w, err := NewWorld(o, Frozen)
	if err != nil {
		return nil, err
	}
	return marshalScenario(w.Export())
}

// ScenarioFromInventory reads the inventory document in file (invdoc,
// written by `fixfleet inventory -o json`) and returns a scenario file of
// the same fleet (world.FromInventory), newline-terminated. A file that
// cannot be opened, read or turned into a world is an *InputError with no
// Option; but for the opening, its message names the file.
func ScenarioFromInventory(file string, o world.InventoryOptions) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, badOption("", err)
	}
	defer f.Close()
	doc, err := invdoc.Read(f)
	if err != nil {
		return nil, badOption("", fmt.Errorf("%s: %w", file, err))
	}
	sc, err := world.FromInventory(doc, o)
	if err != nil {
		return nil, badOption("", fmt.Errorf("%s: %w", file, err))
	}
	return marshalScenario(sc)
}

func marshalScenario(sc world.Scenario) ([]byte, error) {
	b, err := world.MarshalScenario(sc)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

package simulation

import (
	"io"

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

// ScenarioFromInventory reads an inventory document (invdoc, written by
// `fixfleet inventory -o json`) from r and returns a scenario file of the
// same fleet (world.FromInventory), newline-terminated. A document that
// cannot be read or turned into a world is an *InputError with no Option.
func ScenarioFromInventory(r io.Reader, o world.InventoryOptions) ([]byte, error) {
	doc, err := invdoc.Read(r)
	if err != nil {
		return nil, badOption("", err)
	}
	sc, err := world.FromInventory(doc, o)
	if err != nil {
		return nil, badOption("", err)
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

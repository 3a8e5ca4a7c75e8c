package progress

import (
	"context"
	"io"
	"os"

	"github.com/mattn/go-isatty"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
)

// IsTerminal reports whether w (a writer, or stdin) is a terminal: only
// there is progress drawn, or a question asked.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// To returns where progress lines go: w on a terminal, nowhere (nil)
// otherwise.
func To(w io.Writer) io.Writer {
	if IsTerminal(w) {
		return w
	}
	return nil
}

// WatchAssess shows the assessment of accounts that o configures on w when
// w is a terminal (nothing otherwise), timed on clk, by setting
// o.OnProgress. Call stop when the assessment ends.
func WatchAssess(ctx context.Context, w io.Writer, clk clock.Clock, o *classify.FleetOptions, accounts []providers.Account) (stop func()) {
	d := NewAssess(To(w), Width(w), clk, o.Window, accounts)
	o.OnProgress = d.Event
	return d.Start(ctx)
}

package providers

import "context"

// Screens reads a VM's console screen as an image, on clouds that show one
// (Sakura Cloud's VNC snapshot, EC2's GetConsoleScreenshot, Azure boot
// diagnostics' screenshot). A provider that has this capability implements
// it on its Observer value; find it with a type assertion:
//
//	sc, ok := p.Observer.(providers.Screens)
//
// Classifying the image is the caller's (package inventory/screen).
type Screens interface {
	// Screenshot returns the VM's screen now: the image file's bytes as
	// the cloud serves them (GIF, JPEG, PNG or BMP). Read-only.
	// Errors: ErrNotFound; ErrConflict when the VM has no screen now (not
	// running); ErrUnsupported when the cloud cannot show this VM's screen
	// (boot diagnostics off); ErrThrottled, ErrUnavailable.
	Screenshot(ctx context.Context, vm VMRef) ([]byte, error)
}

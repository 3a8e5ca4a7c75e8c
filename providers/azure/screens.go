package azure

import (
	"context"
	"io"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"github.com/fixfleet/fixfleet/providers"
)

// Screenshot implements providers.Screens with boot diagnostics:
// RetrieveBootDiagnosticsData gives a short-lived SAS URI of the console
// screenshot (a BMP), which is then read without the bearer token. The URI
// grants read access and never appears in an error. Errors: ErrNotFound;
// ErrUnsupported when boot diagnostics are off for the VM.
func (o *observer) Screenshot(ctx context.Context, ref providers.VMRef) ([]byte, error) {
	const op = "Screenshot"
	k := (*core)(o)
	vm, s, err := k.getVM(ctx, op, ref.ID, false)
	if err != nil {
		return nil, err
	}
	if p := vm.Properties; p == nil || p.DiagnosticsProfile == nil || p.DiagnosticsProfile.BootDiagnostics == nil ||
		!flag(p.DiagnosticsProfile.BootDiagnostics.Enabled) {
		return nil, providers.Errorf(providers.ErrUnsupported, op, ref.ID, "boot diagnostics are off: no screenshot")
	}
	r, _ := parseID(ref.ID)
	var uri string
	err = k.do(ctx, s, bucketWrites, "RetrieveBootDiagnosticsData", ref.ID, func(ctx context.Context) error {
		resp, err := s.vms.RetrieveBootDiagnosticsData(ctx, r.group, r.name, &armcompute.VirtualMachinesClientRetrieveBootDiagnosticsDataOptions{SasURIExpirationTimeInMinutes: to.Ptr[int32](5)})
		uri = str(resp.ConsoleScreenshotBlobURI)
		return err
	})
	if err != nil {
		return nil, err
	}
	if uri == "" {
		return nil, providers.Errorf(providers.ErrUnsupported, op, ref.ID, "boot diagnostics gave no screenshot URI")
	}
	return k.readBlob(ctx, op, ref.ID, uri, 16<<20)
}

// readBlob reads a boot diagnostics blob by its SAS URI, at most limit
// bytes. The URI never appears in an error.
func (k *core) readBlob(ctx context.Context, op, id, uri string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, providers.Errorf(providers.ErrPermanent, op, id, "the blob URI does not parse")
	}
	resp, err := k.blobs.Do(req)
	if err != nil {
		return nil, providers.Errorf(providers.ErrUnavailable, op, id, "reading the blob failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, providers.Errorf(providers.ErrUnavailable, op, id, "reading the blob: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, providers.Errorf(providers.ErrUnavailable, op, id, "reading the blob was cut short")
	}
	return b, nil
}

package guest

import (
	"context"

	"github.com/fixfleet/fixfleet/providers"
)

// run runs script n and returns its result as R.
func run[R any](ctx context.Context, c *Client, ep providers.Endpoint, cr Credentials, n Name, params any) (R, error) {
	var r R
	err := c.Run(ctx, ep, cr, n, params, &r)
	return r, err
}

// The typed wrappers below run one catalog script each; see the catalog
// (protocol.go) for what each does and whether it is idempotent, and Run
// for the errors.

// Probe runs the probe script. Read-only.
func (c *Client) Probe(ctx context.Context, ep providers.Endpoint, cr Credentials, p ProbeParams) (ProbeResult, error) {
	return run[ProbeResult](ctx, c, ep, cr, Probe, p)
}

// DeleteFiles runs the delete-files script. Idempotent.
func (c *Client) DeleteFiles(ctx context.Context, ep providers.Endpoint, cr Credentials, p DeleteParams) (DeleteResult, error) {
	return run[DeleteResult](ctx, c, ep, cr, DeleteFiles, p)
}

// ClearSafeBoot runs the clear-safeboot script. Idempotent.
func (c *Client) ClearSafeBoot(ctx context.Context, ep providers.Endpoint, cr Credentials) (SafeBootResult, error) {
	return run[SafeBootResult](ctx, c, ep, cr, ClearSafeBoot, ClearSafeBootParams{})
}

// ReadinessFacts runs the readiness-facts script. Read-only.
func (c *Client) ReadinessFacts(ctx context.Context, ep providers.Endpoint, cr Credentials) (ReadinessFactsResult, error) {
	return run[ReadinessFactsResult](ctx, c, ep, cr, ReadinessFacts, ReadinessFactsParams{})
}

// CheckHives runs the check-hives script. Read-only.
func (c *Client) CheckHives(ctx context.Context, ep providers.Endpoint, cr Credentials, p CheckHivesParams) (CheckHivesResult, error) {
	return run[CheckHivesResult](ctx, c, ep, cr, CheckHives, p)
}

// ListDisks runs the list-disks script. Read-only.
func (c *Client) ListDisks(ctx context.Context, ep providers.Endpoint, cr Credentials) (ListDisksResult, error) {
	return run[ListDisksResult](ctx, c, ep, cr, ListDisks, ListDisksParams{})
}

// OnlineDisk runs the online-disk script. Idempotent. ErrRefused when the
// disk at p.Number does not carry p.Serial.
func (c *Client) OnlineDisk(ctx context.Context, ep providers.Endpoint, cr Credentials, p DiskParams) (DiskResult, error) {
	return run[DiskResult](ctx, c, ep, cr, OnlineDisk, p)
}

// UnlockVolume runs the unlock-volume script. Idempotent. p.RecoveryKey
// travels only on the script's standard input and never appears in an
// error.
func (c *Client) UnlockVolume(ctx context.Context, ep providers.Endpoint, cr Credentials, p UnlockParams) (UnlockResult, error) {
	return run[UnlockResult](ctx, c, ep, cr, UnlockVolume, p)
}

// SetDiskIdentity runs the set-disk-identity script. Idempotent. ErrRefused
// when the disk at p.Number does not carry p.Serial.
func (c *Client) SetDiskIdentity(ctx context.Context, ep providers.Endpoint, cr Credentials, p SetIdentityParams) (DiskResult, error) {
	return run[DiskResult](ctx, c, ep, cr, SetDiskIdentity, p)
}

// OfflineDisk runs the offline-disk script. Idempotent. ErrRefused when the
// disk at p.Number does not carry p.Serial.
func (c *Client) OfflineDisk(ctx context.Context, ep providers.Endpoint, cr Credentials, p DiskParams) (DiskResult, error) {
	return run[DiskResult](ctx, c, ep, cr, OfflineDisk, p)
}

// ClearSafeBootOffline runs the clear-safeboot-offline script on a helper.
// Idempotent. ErrRefused when the disk at p.Number does not carry p.Serial.
func (c *Client) ClearSafeBootOffline(ctx context.Context, ep providers.Endpoint, cr Credentials, p BCDParams) (SafeBootResult, error) {
	return run[SafeBootResult](ctx, c, ep, cr, ClearSafeBootOffline, p)
}

// SetSafeBootOffline runs the set-safeboot-offline script on a helper.
// Idempotent; WasSet says the flag was already set. ErrRefused when the
// disk at p.Number does not carry p.Serial.
func (c *Client) SetSafeBootOffline(ctx context.Context, ep providers.Endpoint, cr Credentials, p BCDParams) (SafeBootResult, error) {
	return run[SafeBootResult](ctx, c, ep, cr, SetSafeBootOffline, p)
}
